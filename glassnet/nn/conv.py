"""Conv2d: a learned bank of 2-D convolution kernels (cross-correlation, as PyTorch), via im2col + GEMM."""

from __future__ import annotations

import math

import numpy as np

from glassnet import _backend
from glassnet.autograd.function import GlassnetError
from glassnet.nn import init
from glassnet.nn.functional import _pair
from glassnet.nn.module import Module, Parameter
from glassnet.ops.conv import Conv2d as _Conv2dOp
from glassnet.tensor import Tensor


class Conv2d(Module):
    """2-D convolution over (N, C, H, W) input: each output channel is a learned kernel slid over the input.

    Args:
        in_channels: C of the input.
        out_channels: number of kernels (output channels).
        kernel_size: kh x kw (an int for square kernels).
        stride: step between windows.
        padding: zeros added on each side of H and W.
        bias: learn one bias per output channel.

    Shape:
        input (N, C_in, H, W) or (C_in, H, W) -> (N, C_out, Ho, Wo) with
        Ho = (H + 2 * padding - kh) // stride + 1; weight (C_out, C_in, kh, kw).

    Example:
        >>> import glassnet as gn
        >>> gn.nn.Conv2d(1, 6, 5, padding=2)(gn.zeros(4, 1, 28, 28)).shape
        (4, 6, 28, 28)
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, bias: bool = True, dtype=None
    ) -> None:
        super().__init__()
        if in_channels <= 0 or out_channels <= 0:
            raise ValueError(f"Conv2d: channels must be positive, got {in_channels} -> {out_channels}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size", "Conv2d")
        self.stride = _pair(stride, "stride", "Conv2d")
        self.padding = _pair(padding, "padding", "Conv2d")
        if min(self.kernel_size) <= 0 or min(self.stride) <= 0 or min(self.padding) < 0:
            raise ValueError(
                f"Conv2d: invalid kernel_size {self.kernel_size}, stride {self.stride} or padding {self.padding}"
            )
        dtype = dtype or _backend.get_default_dtype()
        self.weight = Parameter(np.empty((out_channels, in_channels, *self.kernel_size), dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty(out_channels, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
            bound = 1 / math.sqrt(fan_in)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:
        shape = input.data.shape
        if len(shape) == 3:
            return self.forward(input.unsqueeze(0)).squeeze(0)
        if len(shape) != 4 or shape[1] != self.in_channels:
            raise GlassnetError(f"{self._name()}: expected input (N, {self.in_channels}, H, W), got {tuple(shape)}")
        kh, kw = self.kernel_size
        if shape[2] + 2 * self.padding[0] < kh or shape[3] + 2 * self.padding[1] < kw:
            raise GlassnetError(
                f"{self._name()}: input {tuple(shape)} (padded by {self.padding}) is smaller than the kernel {(kh, kw)}"
            )
        params = (self.weight,) if self.bias is None else (self.weight, self.bias)
        return _Conv2dOp.apply(input, *params, stride=self.stride, padding=self.padding)

    def _name(self) -> str:
        return f"Conv2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size})"

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.bias is None:
            s += ", bias=False"
        return s
