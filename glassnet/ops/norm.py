"""Batch normalisation primitive: per-channel statistics over every axis but 1, running-statistics update.

One fused Function rather than a composite of mean/var/sub/div: its backward is three passes over
the input instead of a dozen, and it updates the running statistics in place exactly as PyTorch
(momentum, unbiased variance for ``running_var``).
"""

from __future__ import annotations

import numpy as np

from glassnet.autograd.function import Function, GlassnetError


class BatchNorm(Function):
    """out = (x - mean) / sqrt(var + eps) * weight + bias, statistics per channel (axis 1).

    In training, mean and (biased) var come from the batch over every axis but 1, and the running
    arrays, when given, are updated in place:
    ``running = (1 - momentum) * running + momentum * batch_stat`` (unbiased batch variance for
    ``running_var``). In eval, the running statistics are used. With xhat the normalised input,
    M the number of values per channel and g the output gradient:
    dbias = sum g, dweight = sum g * xhat, and in training
    dx = weight / sqrt(var + eps) * (g - mean(g) - xhat * mean(g * xhat)); in eval
    dx = g * weight / sqrt(running_var + eps).

    Shape: x (N, C), (N, C, L) or (N, C, H, W); weight, bias, running_mean, running_var (C,).
    weight and bias are tensor inputs (both or neither: ``affine=False``); the running statistics
    are plain arrays (buffers), never differentiated. ``momentum`` must be a float: PyTorch's
    ``momentum=None`` (cumulative average) is the caller's business (pass 1 / num_batches_tracked).

    Example:
        >>> import glassnet as gn
        >>> from glassnet.ops.norm import BatchNorm
        >>> out = BatchNorm.apply(gn.randn(8, 3), gn.ones(3), gn.zeros(3), training=True)
        >>> out.shape
        (8, 3)
    """

    saves_inputs = False

    def forward(
        self,
        x,
        weight=None,
        bias=None,
        running_mean=None,
        running_var=None,
        training=False,
        momentum=0.1,
        eps=1e-5,
    ):
        op = "batch_norm"
        if x.ndim < 2:
            raise GlassnetError(
                f"{op}: expected an input of shape (N, C, ...) with at least 2 dimensions, got {x.shape}"
            )
        if x.dtype.kind != "f":
            raise GlassnetError(f"{op}: expected a floating-point input, got {x.dtype}")
        if (weight is None) != (bias is None):
            raise GlassnetError(f"{op}: pass both weight and bias (affine) or neither, got only one")
        C = x.shape[1]
        for name, a in (
            ("weight", weight),
            ("bias", bias),
            ("running_mean", running_mean),
            ("running_var", running_var),
        ):
            if a is not None and a.shape != (C,):
                raise GlassnetError(f"{op}: expected {name} of shape ({C},) for input {x.shape}, got {a.shape}")
        if not training and (running_mean is None or running_var is None):
            raise GlassnetError(f"{op}: running_mean and running_var are required when training=False")
        if momentum is None or not isinstance(momentum, (float, int)):
            raise GlassnetError(
                f"{op}: momentum must be a float, got {momentum!r} (for a cumulative average pass "
                "1 / num_batches_tracked, as BatchNorm's momentum=None does)"
            )
        dtype = x.dtype
        N = x.shape[0]
        x3 = x.reshape(N, C, -1)  # (N, C, L): channel statistics reduce over axes 0 and 2
        M = N * x3.shape[2]
        shape = (1, C, 1)
        if training:
            if M <= 1:
                raise GlassnetError(
                    f"{op}: expected more than 1 value per channel when training, got input size {x.shape}"
                )
            mean = x3.sum(axis=2).sum(axis=0) / dtype.type(M)
            xhat = x3 - mean.reshape(shape)
            var = _channel_sum(xhat * xhat) / dtype.type(M)
            if running_mean is not None:
                running_mean *= 1 - momentum
                running_mean += (momentum * mean).astype(running_mean.dtype, copy=False)
            if running_var is not None:
                running_var *= 1 - momentum
                running_var += (momentum * M / (M - 1) * var).astype(running_var.dtype, copy=False)
        else:
            mean = running_mean.astype(dtype, copy=False)
            var = running_var.astype(dtype, copy=False)
            xhat = x3 - mean.reshape(shape)
        invstd = (1 / np.sqrt(var + dtype.type(eps))).astype(dtype, copy=False)
        xhat *= invstd.reshape(shape)
        if weight is not None:
            out = xhat * weight.reshape(shape)
            out += bias.reshape(shape)
        else:
            out = xhat.copy()  # xhat is saved for backward: the output must not alias it
        self.xhat, self.invstd, self.weight, self.training = xhat, invstd, weight, training
        self.x_shape = x.shape
        return out.reshape(x.shape)

    def backward(self, grad_out):
        xhat, invstd, weight = self.xhat, self.invstd, self.weight
        N, C = self.x_shape[:2]
        g = grad_out.reshape(N, C, -1)
        shape = (1, C, 1)
        scale = invstd if weight is None else invstd * weight  # (C,)
        grad_bias = _channel_sum(g)
        grad_weight = _channel_sum(g * xhat)
        if self.parents[0].requires_grad:
            if self.training:
                M = g.shape[0] * g.shape[2]
                # dx = scale * (g - mean(g) - xhat * mean(g * xhat)), as two fused passes over g.
                grad_x = g * scale.reshape(shape)
                grad_x -= xhat * (scale * grad_weight / M).reshape(shape)
                grad_x -= (scale * grad_bias / M).reshape(shape)
            else:
                grad_x = g * scale.reshape(shape)
            grad_x = grad_x.reshape(self.x_shape)
        else:
            grad_x = None
        if weight is None:
            return grad_x
        return grad_x, grad_weight, grad_bias


def _channel_sum(a):
    """Sum of a (N, C, L) array over axes 0 and 2 -> (C,), reducing the contiguous axis first."""
    return a.sum(axis=2).sum(axis=0)
