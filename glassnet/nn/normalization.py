"""Batch normalisation: learnable scale gamma (weight) and shift beta (bias), running statistics as buffers."""

from __future__ import annotations

import numpy as np

from glassnet import _backend
from glassnet.autograd.function import GlassnetError
from glassnet.nn import functional as F
from glassnet.nn import init
from glassnet.nn.module import Module, Parameter
from glassnet.tensor import Tensor


class _BatchNorm(Module):
    expected_ndims: tuple = ()
    layout = ""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        dtype=None,
    ) -> None:
        super().__init__()
        dtype = dtype or _backend.get_default_dtype()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype=dtype))
            self.bias = Parameter(np.zeros(num_features, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.data.fill(0)
            self.running_var.data.fill(1)
            self.num_batches_tracked.data.fill(0)

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            init.zeros_(self.bias)

    def forward(self, input: Tensor) -> Tensor:
        shape = input.data.shape
        if len(shape) not in self.expected_ndims or shape[1] != self.num_features:
            raise GlassnetError(
                f"{type(self).__name__}({self.num_features}): expected input {self.layout} with "
                f"C = {self.num_features}, got {tuple(shape)}"
            )
        momentum = self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
            if momentum is None:  # cumulative moving average
                momentum = 1.0 / float(self.num_batches_tracked.data)
        # Batch statistics in training, and always when no running statistics are kept.
        return F.batch_norm(
            input,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            training=self.training or not self.track_running_stats,
            momentum=0.0 if momentum is None else momentum,  # unused without running statistics
            eps=self.eps,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) input, per feature C.

    y = (x - mean) / sqrt(var + eps) * weight + bias, with batch statistics in training (the running
    ones updated with ``momentum``, variance unbiased) and the running statistics in eval.

    Example:
        >>> import glassnet as gn
        >>> bn = gn.nn.BatchNorm1d(3)
        >>> y = bn(gn.randn(16, 3))
        >>> bool(abs(y.mean(0)).max() < 1e-5)
        True
    """

    expected_ndims = (2, 3)
    layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) input, per channel C (statistics over N, H, W)."""

    expected_ndims = (4,)
    layout = "(N, C, H, W)"
