"""Batch normalisation primitive: per-channel statistics over every axis but 1, running-statistics update.

One fused Function rather than a composite of mean/var/sub/div: it updates the running statistics in
place exactly as PyTorch (momentum, unbiased variance for ``running_var``), and makes few passes over
the data. The output is one per-channel affine map of the centred input, computed in place in the
centred array. The normalised input is not kept for backward: the graph holds the input anyway, and
backward needs only per-channel sums of g and g * x (combined in float64) and then one blocked
pass dx = g * a + x * b + c, so it allocates nothing of the input's size but dx.
Per-channel sums and dot products reduce each (n, c) row with BLAS (a matrix-vector product, or a
batched dot for long rows), then add the N partial results in float64: fast and accurate.

With the compiled kernels (the C extension; contiguous inputs of 1 MiB or more), training makes
two passes each way: forward, the per-channel sum and sum of squares in float64 (shifted by a sample
mean of the channel, so that the variance does not cancel), then the affine map; backward, the sums
of g and g * (x - mean), then dx. The NumPy path makes five and three.
"""

from __future__ import annotations

import math

import numpy as np

from glassnet import _parallel as parallel
from glassnet import compiled
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
        x3 = x.reshape(N, C, math.prod(x.shape[2:]))  # (N, C, L): channel statistics reduce over axes 0 and 2
        M = N * x3.shape[2]
        shape = (1, C, 1)
        kernels = compiled.pass_kernels(x3)  # contiguous float32 / float64 of 1 MiB or more
        if training:
            if M <= 1:
                raise GlassnetError(
                    f"{op}: expected more than 1 value per channel when training, got input size {x.shape}"
                )
            if kernels is not None:
                shift = _moment_shift(x3)
                sums = _compiled_sums(kernels.channel_moments, (x3,), shift) / M
                mean = (shift + sums[0]).astype(dtype)
                var = np.maximum(sums[1] - sums[0] ** 2, 0).astype(dtype)
                centred = None
            else:
                mean = (_channel_sum(x3) / M).astype(dtype)
                centred = _blockwise(np.subtract, x3, mean.reshape(shape))
                var = (_channel_dot(centred, centred) / M).astype(dtype)
            if running_mean is not None:
                running_mean *= 1 - momentum
                running_mean += (momentum * mean).astype(running_mean.dtype, copy=False)
            if running_var is not None:
                running_var *= 1 - momentum
                running_var += (momentum * M / (M - 1) * var).astype(running_var.dtype, copy=False)
        else:
            mean = running_mean.astype(dtype, copy=False)
            var = running_var.astype(dtype, copy=False)
            centred = None if kernels is not None else _blockwise(np.subtract, x3, mean.reshape(shape))
        invstd = (1 / np.sqrt(var + dtype.type(eps))).astype(dtype, copy=False)
        scale = invstd if weight is None else invstd * weight  # (C,)
        if kernels is not None:  # out = (x - mean) * scale + bias in one pass
            offset = np.zeros(C, dtype=dtype) if bias is None else bias.astype(dtype, copy=False)
            a = scale.astype(dtype, copy=False)  # the kernels take per-channel values in the data's dtype
            out = _map_blocks(x3, lambda blk, dst: kernels.channel_affine(x3[blk], mean, a, offset, dst))
        else:
            out = centred  # out = (x - mean) * scale + bias, in place in the fresh centred array
            _blockwise(np.multiply, out, scale.reshape(shape), out=out)
            if bias is not None:
                _blockwise(np.add, out, bias.reshape(shape), out=out)
        self.x, self.mean, self.invstd, self.scale, self.training = x, mean, invstd, scale, training
        self.has_weight = weight is not None
        return out.reshape(x.shape)

    def backward(self, grad_out):
        mean, invstd, scale = self.mean, self.invstd, self.scale
        x = self.x
        N, C = x.shape[:2]
        L = math.prod(x.shape[2:])
        x3 = x.reshape(N, C, L)
        g = grad_out.reshape(N, C, L)
        dtype = g.dtype
        M = N * L
        compiled_ok = self.training and x.dtype == dtype and x3.flags.c_contiguous
        kernels = compiled.pass_kernels(g) if compiled_ok else None
        if kernels is not None:
            sum_g, sum_g_centred = _compiled_sums(kernels.channel_grad_sums, (g, x3), mean.astype(np.float64))
        else:
            sum_g = _channel_sum(g)
            sum_g_centred = _centred_dot(g, x3, mean)  # sum g * (x - mean), float64
        grad_weight = (sum_g_centred * invstd).astype(dtype)  # sum g * xhat
        grad_x = None
        if self.needs_grad(0):
            if self.training:
                # dx = scale * (g - mean(g) - xhat * mean(g * xhat)) = g * a + x * b + c, per channel.
                b = -scale.astype(np.float64) * invstd.astype(np.float64) ** 2 * sum_g_centred / M
                c = -scale.astype(np.float64) * sum_g / M - mean * b
                b, c = b.astype(dtype), c.astype(dtype)
                if kernels is not None:
                    a = scale.astype(dtype, copy=False)

                    def dx(blk, dst):
                        kernels.channel_affine2(g[blk], a, x3[blk], b, c, dst)

                    grad_x = _map_blocks(g, dx)
                else:
                    grad_x = _affine2(g, scale, x3, b, c)
            else:
                grad_x = g * scale.reshape(1, C, 1)
            grad_x = grad_x.reshape(x.shape)
        if not self.has_weight:
            return grad_x
        return grad_x, grad_weight, sum_g.astype(dtype)


_BLOCK_BYTES = 1 << 20


def _blocks(shape, itemsize):
    """Slices over axis 0 of an (N, C, L) array in blocks of about _BLOCK_BYTES (at least one row)."""
    N, C, L = shape
    step = max(1, _BLOCK_BYTES // max(1, C * L * itemsize))
    return [slice(n0, n0 + step) for n0 in range(0, max(N, 1), step)]  # one empty block for N = 0


def _map_blocks(like, fn, out=None):
    """fn(blk, out[blk]) for blocks of axis 0 of an (N, C, L) array, on glassnet's threads; ``out`` fresh by default."""
    if out is None:
        out = np.empty(like.shape, dtype=like.dtype)
    blocks = _blocks(out.shape, out.itemsize)
    parallel.parallel_for(len(blocks), lambda i: fn(blocks[i], out[blocks[i]]))
    return out


def _sum_blocks(like, fn):
    """fn(blk) summed over blocks of axis 0 of an (N, C, L) array, computed on glassnet's threads.

    The blocks' results are added in block order, so the sum does not depend on the number of threads.
    """
    blocks = _blocks(like.shape, like.itemsize)
    parts = [None] * len(blocks)

    def block(i):
        parts[i] = fn(blocks[i])

    parallel.parallel_for(len(blocks), block)
    return parallel.sum_in_order(parts)


def _blockwise(ufunc, x, per_channel, out=None):
    """ufunc(x, per_channel) for an (N, C, L) x and a (1, C, 1) array, block by block over N on glassnet's threads."""
    return _map_blocks(x, lambda blk, dst: ufunc(x[blk], per_channel, out=dst), out)


def _moment_shift(x3):
    """Each channel's mean over a sample of about 1024 of its values, float64 (0 where not finite).

    The compiled moments sum (x - shift) and (x - shift)^2; the variance's rounding error grows with
    ((shift - mean) / std)^2, so the shift is a sample mean rather than one value, which an outlier
    could be.
    """
    N, C, L = x3.shape
    sample = x3[: max(1, min(N, 1024 // max(L, 1)))]
    with np.errstate(invalid="ignore", over="ignore"):
        shift = sample.mean(axis=(0, 2), dtype=np.float64)
    return np.where(np.isfinite(shift), shift, 0.0)


def _compiled_sums(kernel, arrays, per_channel):
    """A compiled kernel's (2, C) float64 sums over contiguous (N, C, L) arrays, block by block over N."""

    def block(blk):
        sums = np.zeros((2, arrays[0].shape[1]))
        kernel(*(a[blk] for a in arrays), per_channel, sums)
        return sums

    return _sum_blocks(arrays[0], block)


def _centred_dot(g, x, mean):
    """sum over axes 0 and 2 of g * (x - mean) -> float64 (C,), centring one block of x at a time.

    Not ``sum(g * x) - mean * sum(g)``: with |mean| >> std that cancels and loses the float32 sums'
    precision (seen: 1.4e-4 off PyTorch for mean 30, std 2); a block-sized centred copy costs little.
    """
    m = mean.reshape(1, -1, 1)
    return _sum_blocks(g, lambda blk: _channel_dot(g[blk], np.subtract(x[blk], m, dtype=g.dtype)))


def _affine2(g, a, x, b, c):
    """g * a + x * b + c for (N, C, L) arrays and per-channel (C,) a, b, c, block by block over N.

    Blocks of about _BLOCK_BYTES stay in the cache between the passes, and the x * b temporary is
    one block, not a third array of the input's size (it was the peak of a BN-CNN training step).
    """
    N, C, L = g.shape
    a, b, c = a.reshape(1, C, 1), b.reshape(1, C, 1), c.reshape(1, C, 1)

    def block(blk, dst):
        np.multiply(g[blk], a, out=dst)
        t = np.multiply(x[blk], b)
        t += c
        dst += t

    return _map_blocks(g, block)


_DOT_BATCHED_MIN_LENGTH = 128


def _channel_sum(a):
    """Sum of a (N, C, L) array over axes 0 and 2 -> float64 (C,): a BLAS row sum, then N terms in float64."""
    ones = np.ones(a.shape[2], dtype=a.dtype)
    return np.matmul(a, ones).sum(axis=0, dtype=np.float64)


def _channel_dot(a, b):
    """sum over axes 0 and 2 of a * b for two (N, C, L) arrays -> float64 (C,), with no (N, C, L) temporary.

    Long rows go through a batched BLAS dot (one (1, L) @ (L, 1) product per (n, c)); short ones
    through einsum, where the per-product call overhead would dominate.
    """
    if a.shape[2] >= _DOT_BATCHED_MIN_LENGTH:
        rows = np.matmul(a[:, :, None, :], b[:, :, :, None])[:, :, 0, 0]
    else:
        rows = np.einsum("ncl,ncl->nc", a, b)
    return rows.sum(axis=0, dtype=np.float64)
