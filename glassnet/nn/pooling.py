"""Pooling layers: MaxPool2d and AvgPool2d (nothing to learn: they only summarise windows)."""

from __future__ import annotations

from glassnet.autograd.function import GlassnetError
from glassnet.nn import functional as F
from glassnet.nn.module import Module
from glassnet.tensor import Tensor


class _Pool2d(Module):
    op = ""

    def __init__(self, kernel_size, stride=None, padding=0) -> None:
        super().__init__()
        self.kernel_size = F._pair(kernel_size, "kernel_size", type(self).__name__)
        self.stride = self.kernel_size if stride is None else F._pair(stride, "stride", type(self).__name__)
        self.padding = F._pair(padding, "padding", type(self).__name__)
        if self.padding[0] > self.kernel_size[0] // 2 or self.padding[1] > self.kernel_size[1] // 2:
            raise ValueError(
                f"{type(self).__name__}: padding {self.padding} must be at most half of {self.kernel_size}"
            )

    def _check(self, input: Tensor) -> None:
        shape = input.data.shape
        if len(shape) not in (3, 4):
            raise GlassnetError(f"{self!r}: expected input (N, C, H, W) or (C, H, W), got {tuple(shape)}")
        if (
            shape[-2] + 2 * self.padding[0] < self.kernel_size[0]
            or shape[-1] + 2 * self.padding[1] < self.kernel_size[1]
        ):
            raise GlassnetError(f"{self!r}: input {tuple(shape)} is smaller than the window {self.kernel_size}")

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """Max over kh x kw windows; the gradient goes to the (first) maximum of each window.

    Example:
        >>> import glassnet as gn
        >>> gn.nn.MaxPool2d(2)(gn.zeros(1, 3, 8, 8)).shape
        (1, 3, 4, 4)
    """

    def forward(self, input: Tensor) -> Tensor:
        self._check(input)
        if input.ndim == 3:
            return self.forward(input.unsqueeze(0)).squeeze(0)
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding)


class AvgPool2d(_Pool2d):
    """Mean over kh x kw windows (zero padding counted, as PyTorch's default)."""

    def forward(self, input: Tensor) -> Tensor:
        self._check(input)
        if input.ndim == 3:
            return self.forward(input.unsqueeze(0)).squeeze(0)
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding)
