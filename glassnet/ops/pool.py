"""2-D pooling primitives: max pooling and average pooling over strided window views (NCHW).

Both ops loop over the kh * kw kernel offsets, never over pixels: each offset is one strided view of
the (padded) input holding that offset's element of every window. Max pooling chains
``np.maximum`` over the views (several times faster than ``reshape(...).max(axis=...)``); its
backward rebuilds which element won from the saved input and output, routing each window's
gradient to its first maximum in row-major window order, as PyTorch does on ties. When the windows
do not overlap (kernel == stride, no padding, no dilation: the usual ``MaxPool2d(2)``) every input
element belongs to at most one window, so the input gradient is written view by view with no
accumulation: the first-maximum masks come from one comparison per offset and bool logic on
contiguous arrays, and each offset's share is a contiguous product copied once into its strided
view (3-5x faster than masked selects; see benchmarks/bench_kernels.py).
"""

from __future__ import annotations

import numpy as np

from glassnet import _parallel as parallel
from glassnet import compiled
from glassnet.autograd.function import Function, GlassnetError
from glassnet.ops.conv import _pair, conv_output_size


def _pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode, op):
    """Validate the options and return (kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, x as 4-D)."""
    if ceil_mode:
        raise NotImplementedError(f"{op}: ceil_mode=True is not implemented (only ceil_mode=False)")
    if x.ndim not in (3, 4):
        raise GlassnetError(f"{op}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape {x.shape}")
    if x.dtype.kind != "f":
        raise GlassnetError(f"{op}: expected a floating-point input, got {x.dtype}")
    kh, kw = _pair(kernel_size, "kernel_size", op)
    sh, sw = _pair(kernel_size if stride is None or stride == () else stride, "stride", op)
    ph, pw = _pair(padding, "padding", op)
    dh, dw = _pair(dilation, "dilation", op)
    if min(kh, kw, sh, sw, dh, dw) < 1 or min(ph, pw) < 0:
        raise GlassnetError(
            f"{op}: kernel_size, stride and dilation must be positive and padding non-negative, got "
            f"kernel_size={kernel_size}, stride={stride}, padding={padding}, dilation={dilation}"
        )
    if 2 * ph > dh * (kh - 1) + 1 or 2 * pw > dw * (kw - 1) + 1:
        raise GlassnetError(
            f"{op}: padding should be at most half of the effective kernel size, got padding={padding} "
            f"for kernel_size={kernel_size}"
        )
    x4 = x[None] if x.ndim == 3 else x
    H, W = x4.shape[2:]
    Ho = conv_output_size(H, kh, sh, 2 * ph, dh)
    Wo = conv_output_size(W, kw, sw, 2 * pw, dw)
    if Ho < 1 or Wo < 1:
        raise GlassnetError(
            f"{op}: input of shape {x.shape} is too small for kernel_size={kernel_size}, padding={padding}: "
            f"output size would be ({Ho}, {Wo})"
        )
    return kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, x4


def _window_views(a, kh, kw, sh, sw, dh, dw, Ho, Wo):
    """The kh * kw strided views a[:, :, i * dh + ho * sh, j * dw + wo * sw], in row-major window order."""
    return [
        a[:, :, i * dh : i * dh + sh * (Ho - 1) + 1 : sh, j * dw : j * dw + sw * (Wo - 1) + 1 : sw]
        for i in range(kh)
        for j in range(kw)
    ]


def _padded(x, ph, pw, value):
    """x (N, C, H, W) in a fresh (N, C, H + 2 ph, W + 2 pw) array bordered with ``value``."""
    if ph == 0 and pw == 0:
        return x
    N, C, H, W = x.shape
    xp = np.full((N, C, H + 2 * ph, W + 2 * pw), value, dtype=x.dtype)
    xp[:, :, ph : ph + H, pw : pw + W] = x
    return xp


def _tiles(geometry, shape) -> bool:
    """True when the windows cover every input element exactly once (kernel == stride, no padding)."""
    kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo = geometry
    return (kh, kw) == (sh, sw) and ph == pw == 0 and Ho * sh == shape[2] and Wo * sw == shape[3]


class MaxPool2d(Function):
    """out[n, c, ho, wo] = max over the window of x padded with -inf.

    d/dx: each window's gradient goes to one maximum (the first in row-major window order, as
    PyTorch on ties); overlapping windows add up.

    Shape: x (N, C, H, W) or (C, H, W) -> (N, C, Ho, Wo), Ho = floor((H + 2 ph - dh (kh - 1) - 1) / sh) + 1.

    Example:
        >>> import glassnet as gn
        >>> from glassnet.ops.pool import MaxPool2d
        >>> MaxPool2d.apply(gn.arange(16.0).reshape(1, 1, 4, 4), kernel_size=(2, 2), stride=(2, 2)).tolist()
        [[[[5.0, 7.0], [13.0, 15.0]]]]
    """

    saves_output = True

    def forward(self, x, kernel_size, stride=None, padding=(0, 0), dilation=(1, 1), ceil_mode=False):
        *geometry, x4 = _pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d")
        kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo = geometry
        out = np.empty(x4.shape[:2] + (Ho, Wo), dtype=x.dtype)
        # MaxPool2d(2) has a compiled kernel (the C extension): one pass, no GIL, per block of images.
        pool2x2 = (kh, kw, sh, sw) == (2, 2, 2, 2) and _disjoint(geometry)
        self.kernels = compiled.kernels(x.dtype) if pool2x2 else None
        if self.kernels is not None:
            xp = x4 = np.ascontiguousarray(x4)
        else:
            xp = _padded(x4, ph, pw, -np.inf)
        blocks = _batch_blocks(xp)

        def block(i):  # each block's views are read while it is in the cache; threads share the blocks
            blk = blocks[i]
            if self.kernels is not None:
                self.kernels.max_pool2x2(xp[blk], out[blk])
                return
            views = _window_views(xp[blk], kh, kw, sh, sw, dh, dw, Ho, Wo)
            dst = out[blk]
            if len(views) == 1:
                dst[...] = views[0]
            else:
                np.maximum(views[0], views[1], out=dst)
            for v in views[2:]:
                np.maximum(dst, v, out=dst)

        parallel.parallel_for(len(blocks), block)
        self.x, self.out, self.geometry, self.unbatched = x4, out, geometry, x.ndim == 3
        return out[0] if self.unbatched else out

    def backward(self, grad_out):
        x, out, geometry = self.x, self.out, self.geometry
        kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo = geometry
        if self.unbatched:
            grad_out = grad_out[None]
        if self.kernels is not None:
            kernel, grad_out = self.kernels.max_pool2x2_backward, np.ascontiguousarray(grad_out)
            grad_x = np.empty(x.shape, dtype=grad_out.dtype)
            blocks = _batch_blocks(x)
            parallel.parallel_for(
                len(blocks), lambda i: kernel(x[blocks[i]], out[blocks[i]], grad_out[blocks[i]], grad_x[blocks[i]])
            )
            return grad_x[0] if self.unbatched else grad_x
        nan = np.isnan(out).any()
        if _disjoint(geometry) and np.isfinite(grad_out).all():
            grad_x = np.empty(x.shape, dtype=grad_out.dtype)
            blocks = _batch_blocks(x)
            parallel.parallel_for(
                len(blocks),
                lambda i: _disjoint_max_backward(
                    x[blocks[i]], out[blocks[i]], grad_out[blocks[i]], geometry, nan, grad_x[blocks[i]]
                ),
            )
            return grad_x[0] if self.unbatched else grad_x
        N, C, H, W = x.shape
        tiles = _tiles(geometry, x.shape)
        if tiles:
            grad_x = np.empty(x.shape, dtype=grad_out.dtype)
            grad_pad = grad_x
        else:
            grad_pad = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=grad_out.dtype)
        x_views = _window_views(_padded(x, ph, pw, -np.inf), kh, kw, sh, sw, dh, dw, Ho, Wo)
        g_views = _window_views(grad_pad, kh, kw, sh, sw, dh, dw, Ho, Wo)
        # ``remaining`` holds each window's gradient until its first maximum has taken it.
        remaining = np.array(grad_out, dtype=grad_out.dtype)
        zero = grad_out.dtype.type(0)
        last = len(x_views) - 1
        for k, (xv, gv) in enumerate(zip(x_views, g_views)):
            if k == last:
                hit = remaining  # a window with gradient left has its first maximum here
            else:
                is_max = _is_max(xv, out, nan)
                hit = np.where(is_max, remaining, zero)  # not a product: 0 * inf would be nan
                np.copyto(remaining, zero, where=is_max)
            if tiles:
                gv[...] = hit
            else:
                gv += hit
        if not tiles:
            grad_x = np.ascontiguousarray(grad_pad[:, :, ph : ph + H, pw : pw + W])
        return grad_x[0] if self.unbatched else grad_x


def _disjoint(geometry) -> bool:
    """True when the windows do not overlap and read no padding (kernel == stride, dilation 1)."""
    kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo = geometry
    return (kh, kw) == (sh, sw) and ph == pw == 0 and dh == dw == 1


_BLOCK_BYTES = 1 << 23


def _batch_blocks(x) -> list:
    """Slices of the batch axis covering at most about _BLOCK_BYTES of ``x`` each (at least one image).

    The kh * kw strided views of a window each touch most of the input's cache lines; done block by
    block, a block is read from memory once instead of once per view (1.5-2x faster on 28x28 maps).
    With several threads there are also enough blocks for each to take a few.
    """
    N = x.shape[0]
    count = max(-(-x.nbytes // _BLOCK_BYTES), parallel.parts(x.nbytes))
    return [slice(a, b) for a, b in parallel.pieces(N, count)]


def _disjoint_max_backward(x, out, grad_out, geometry, nan, grad_x):
    """Max-pooling input gradient for non-overlapping windows and a finite ``grad_out``, into ``grad_x``.

    ``taken`` marks the windows whose first maximum was met at an earlier offset; offset k's winners
    are ``is_max & ~taken`` (``np.greater`` on bools), and the last offset takes what is left. The
    product ``grad_out * hit`` is built contiguous and then copied into the strided view: NumPy's
    strided-output multiply is 2x slower than the two steps. A non-finite ``grad_out`` would turn
    0 * inf into NaN, so the caller sends it to the masked-select path instead.
    """
    kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo = geometry
    N, C, H, W = x.shape
    if Ho * sh < H:  # rows past the last window get no gradient
        grad_x[:, :, Ho * sh :] = 0
    if Wo * sw < W:
        grad_x[:, :, :, Wo * sw :] = 0
    x_views = _window_views(x, kh, kw, sh, sw, dh, dw, Ho, Wo)
    g_views = _window_views(grad_x, kh, kw, sh, sw, dh, dw, Ho, Wo)
    share = np.empty(out.shape, dtype=grad_out.dtype)
    taken = hit = None
    last = len(x_views) - 1
    for k, (xv, gv) in enumerate(zip(x_views, g_views)):
        if k == last:
            hit = np.logical_not(taken, out=taken) if taken is not None else None
        else:
            is_max = _is_max(xv, out, nan)
            if taken is None:
                hit, taken = is_max, is_max.copy() if last > 1 else is_max
            else:
                hit = np.greater(is_max, taken, out=hit)  # is_max and not taken
                np.logical_or(taken, is_max, out=taken)
        if hit is None:  # a 1x1 window: every element is its window's maximum
            gv[...] = grad_out
            continue
        np.multiply(grad_out, hit, out=share)
        gv[...] = share
    return grad_x


def _is_max(xv, out, nan):
    """Mask of the windows whose element in view ``xv`` is the maximum (a NaN counts as one)."""
    if nan:
        return (xv == out) | np.isnan(xv)
    return xv == out


class AvgPool2d(Function):
    """out[n, c, ho, wo] = sum over the window of x padded with zeros / divisor.

    The divisor is kh * kw (``count_include_pad=True``, PyTorch's default), the number of
    non-padding elements in the window (``count_include_pad=False``), or ``divisor_override``.
    d/dx: each window spreads grad / divisor over its elements; overlapping windows add up.

    Shape: x (N, C, H, W) or (C, H, W) -> (N, C, Ho, Wo).

    Example:
        >>> import glassnet as gn
        >>> from glassnet.ops.pool import AvgPool2d
        >>> AvgPool2d.apply(gn.ones(1, 1, 4, 4), kernel_size=(2, 2), stride=(2, 2)).shape
        (1, 1, 2, 2)
    """

    saves_inputs = False

    def forward(
        self,
        x,
        kernel_size,
        stride=None,
        padding=(0, 0),
        ceil_mode=False,
        count_include_pad=True,
        divisor_override=None,
    ):
        *geometry, x4 = _pool_geometry(x, kernel_size, stride, padding, (1, 1), ceil_mode, "avg_pool2d")
        kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo = geometry
        views = _window_views(_padded(x4, ph, pw, 0), kh, kw, sh, sw, dh, dw, Ho, Wo)
        out = np.array(views[0]) if len(views) == 1 else np.add(views[0], views[1])
        for v in views[2:]:
            out += v
        if divisor_override is not None:
            if divisor_override == 0:
                raise GlassnetError("avg_pool2d: divisor_override must be non-zero")
            scale = np.asarray(1 / divisor_override, dtype=x.dtype)
        elif count_include_pad or (ph == 0 and pw == 0):
            scale = np.asarray(1 / (kh * kw), dtype=x.dtype)
        else:
            # Number of real (non-padding) elements in each window, from a (1, 1, Hp, Wp) mask.
            mask = _padded(np.ones((1, 1) + x4.shape[2:], dtype=x.dtype), ph, pw, 0)
            counts = sum(_window_views(mask, kh, kw, sh, sw, dh, dw, Ho, Wo))
            scale = (1 / counts).astype(x.dtype)
        out *= scale
        self.scale, self.geometry, self.x_shape, self.unbatched = scale, geometry, x4.shape, x.ndim == 3
        return out[0] if self.unbatched else out

    def backward(self, grad_out):
        kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo = self.geometry
        if self.unbatched:
            grad_out = grad_out[None]
        N, C, H, W = self.x_shape
        share = grad_out * self.scale
        if _tiles(self.geometry, self.x_shape):
            grad_x = np.empty(self.x_shape, dtype=grad_out.dtype)
            for gv in _window_views(grad_x, kh, kw, sh, sw, dh, dw, Ho, Wo):
                gv[...] = share
        else:
            grad_pad = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=grad_out.dtype)
            for gv in _window_views(grad_pad, kh, kw, sh, sw, dh, dw, Ho, Wo):
                gv += share
            grad_x = np.ascontiguousarray(grad_pad[:, :, ph : ph + H, pw : pw + W])
        return grad_x[0] if self.unbatched else grad_x
