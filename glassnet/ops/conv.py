"""2-D convolution primitive: im2col + one GEMM forward, GEMMs + col2im backward (NCHW in and out).

Layout (chosen for speed on a CPU, see benchmarks/bench_kernels.py): the column matrix is
``cols[(c, i, j), (n, ho, wo)]``, shape (C * kh * kw, N * Ho * Wo). Each kernel offset (i, j) fills one
contiguous (C, N * Ho * Wo) block, so im2col is kh * kw block copies (no Python loop over pixels or
images), the forward GEMM is ``weight.reshape(O, K) @ cols`` with no transposed weight copy, and a
group's rows are one contiguous slice (groups cost one GEMM each). The GEMM yields (O, N, Ho, Wo);
one transposing copy, fused with the bias addition, gives NCHW.

The batch goes through in chunks of a few images (about 2 MiB of columns each): a chunk's columns
are still in the cache when its GEMM reads them, no temporary grows with the batch, and the backward
sums the chunks' weight-gradient GEMMs (short inner dimensions run faster than one huge one). The
columns are kept for the weight gradient when they are small (at most 12 MiB), else rebuilt chunk by
chunk in backward from the input, which the graph holds anyway (peak memory before speed there).

Stride 1 with little padding uses a "row-wide" grid: rows are computed over the whole padded width
Wp instead of Wo, so that within an image each kernel offset's block is a shift of one flat
(Ho * Wp) run, and im2col (for wide column matrices) and col2im (always) become kh * kw copies or
additions of long contiguous runs instead of runs of Wo (3-4x faster); the extra Wp - Wo columns
are dropped in forward and get a zero gradient in backward.

With the compiled kernels, a stride-1 convolution without groups that has few taps or few output
channels (see _DIRECT_MAX_TAPS) skips the columns: the kernels compute the output and the weight
gradient straight from the input on the same row-wide grid (glassnet/_kernels.c), and only the
input gradient goes through a GEMM and col2im.
"""

from __future__ import annotations

import numpy as np

from glassnet import compiled
from glassnet._parallel import parallel_for, sum_in_order
from glassnet.autograd import grad_mode
from glassnet.autograd.function import Function, GlassnetError


def _pair(value, name: str, op: str) -> tuple[int, int]:
    """Normalise an int or a pair of ints (PyTorch's ``_pair``) and check it is made of integers."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value), int(value)
    try:
        a, b = value
    except (TypeError, ValueError):
        raise GlassnetError(f"{op}: {name} must be an int or a pair of ints, got {value!r}") from None
    for v in (a, b):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            raise GlassnetError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    return int(a), int(b)


def conv_output_size(size: int, kernel: int, stride: int, pad_total: int, dilation: int = 1) -> int:
    """Output length along one axis: floor((size + pads - dilation * (kernel - 1) - 1) / stride) + 1."""
    return (size + pad_total - dilation * (kernel - 1) - 1) // stride + 1


class Conv2d(Function):
    """out[n, o] = bias[o] + sum_{c, i, j} weight[o, c, i, j] * x_pad[n, c, ho * sh + i * dh, wo * sw + j * dw].

    Gradients (with cols the im2col matrix of x and g the output gradient as (O, N * Ho * Wo)):
    dweight = g @ cols^T, dbias = g summed over (N, Ho, Wo), dx = col2im(weight^T @ g).

    Shape: x (N, C, H, W) or unbatched (C, H, W), weight (O, C / groups, kh, kw), bias (O,)
    -> (N, O, Ho, Wo), Ho = floor((H + 2 ph - dh (kh - 1) - 1) / sh) + 1 (likewise Wo).

    Options: ``stride``, ``padding`` (ints, pairs, or 'valid' / 'same' as PyTorch), ``dilation``,
    ``groups``. Forward and backward stay in the input's dtype (float32 stays float32).

    Example:
        >>> import glassnet as gn
        >>> from glassnet.ops.conv import Conv2d
        >>> x, w = gn.ones(1, 1, 4, 4), gn.ones(2, 1, 3, 3)
        >>> Conv2d.apply(x, w, stride=(1, 1), padding=(1, 1)).shape
        (1, 2, 4, 4)
    """

    def forward(self, x, weight, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
        op = "conv2d"
        if weight.ndim != 4:
            raise GlassnetError(f"{op}: expected a 4-D weight (out_channels, in_channels/groups, kH, kW), "
                                f"got shape {weight.shape}")  # fmt: skip
        self.unbatched = x.ndim == 3
        if self.unbatched:
            x = x[None]
        if x.ndim != 4:
            raise GlassnetError(f"{op}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape {x.shape}")
        if x.dtype != weight.dtype or (bias is not None and bias.dtype != x.dtype):
            raise GlassnetError(
                f"{op}: input ({x.dtype}), weight ({weight.dtype})"
                + (f" and bias ({bias.dtype})" if bias is not None else "")
                + " must have the same dtype"
            )
        if x.dtype.kind != "f":
            raise GlassnetError(f"{op}: expected a floating-point input, got {x.dtype}")
        if not isinstance(groups, (int, np.integer)) or groups < 1:
            raise GlassnetError(f"{op}: groups must be a positive integer, got {groups!r}")
        N, C, H, W = x.shape
        O, Cg, kh, kw = weight.shape
        if O % groups:
            raise GlassnetError(
                f"{op}: out_channels {O} (weight of shape {weight.shape}) must be divisible by groups={groups}"
            )
        if C != Cg * groups:
            raise GlassnetError(
                f"{op}: given groups={groups}, weight of shape {weight.shape}, expected input{x.shape} to "
                f"have {Cg * groups} channels, but got {C} channels instead"
            )
        if bias is not None and bias.shape != (O,):
            raise GlassnetError(f"{op}: expected bias of shape ({O},) for weight {weight.shape}, got {bias.shape}")
        sh, sw = _pair(stride, "stride", op)
        dh, dw = _pair(dilation, "dilation", op)
        if min(sh, sw, dh, dw) < 1:
            raise GlassnetError(f"{op}: stride and dilation must be positive, got stride={stride}, dilation={dilation}")
        if isinstance(padding, str):
            if padding == "valid":
                pads = (0, 0, 0, 0)
            elif padding == "same":
                if (sh, sw) != (1, 1):
                    raise GlassnetError(f"{op}: padding='same' is not supported for strided convolutions")
                # Total padding dilation * (k - 1); PyTorch puts the odd extra element at the end.
                th, tw = dh * (kh - 1), dw * (kw - 1)
                pads = (th // 2, th - th // 2, tw // 2, tw - tw // 2)
            else:
                raise GlassnetError(f"{op}: padding must be 'valid', 'same', an int or a pair, got {padding!r}")
        else:
            ph, pw = _pair(padding, "padding", op)
            if min(ph, pw) < 0:
                raise GlassnetError(f"{op}: padding must be non-negative, got {padding}")
            pads = (ph, ph, pw, pw)
        Ho = conv_output_size(H, kh, sh, pads[0] + pads[1], dh)
        Wo = conv_output_size(W, kw, sw, pads[2] + pads[3], dw)
        if Ho < 1 or Wo < 1:
            raise GlassnetError(
                f"{op}: input{x.shape} padded by {pads} is smaller than the (dilated) kernel "
                f"{(dh * (kh - 1) + 1, dw * (kw - 1) + 1)}: output size would be ({Ho}, {Wo})"
            )

        # The batch is processed in chunks of a few images: each chunk's columns stay in the cache
        # between im2col and the GEMM, and no temporary reaches the size where malloc hands out fresh
        # (page-faulting) memory from the OS on every call.
        Wp = W + pads[2] + pads[3]
        kernels = compiled.kernels(x.dtype)  # one-pass im2col and col2im in C, where the extension was built
        if kernels is not None:
            x = np.ascontiguousarray(x)
        # Few taps or few output channels (LeNet's layers, a first layer on one-channel images): the
        # compiled direct convolution, without columns.
        direct = (
            kernels is not None
            and hasattr(kernels, "conv_direct")  # built by GCC or clang (_kernels.c's vector extension)
            and groups == 1
            and sh == sw == 1
            and (C * kh * kw <= _DIRECT_MAX_TAPS or O <= _DIRECT_MAX_OUT)
        )
        wide = (
            kernels is None
            and sh == sw == 1
            and Wp <= _WIDE_COLS_MAX_RATIO * Wo
            and C // groups * kh * kw >= _WIDE_COLS_MIN_ROWS
        )
        Wg = Wp if wide else Wo  # width of the GEMMs' pixel grid
        nb = _batch_chunk(max(C * kh * kw, O), Ho * Wg, x.itemsize, N)
        # No graph is recorded under no_grad: then the columns are never needed again.
        keep = not direct and grad_mode.enabled and C * kh * kw * N * Ho * Wg * x.itemsize <= _KEEP_COLS_MAX_BYTES
        w2 = weight.reshape(O, C // groups * kh * kw)
        out = np.empty((N, O, Ho, Wo), dtype=x.dtype)
        # Kept columns go to one buffer (chunk i's (C * kh * kw, nb * Ho * Wg) matrix is one contiguous
        # piece of it): thousands of chunk-sized arrays freed after backward would make malloc trim
        # and page-fault them again every step.
        kept = np.empty(C * kh * kw * N * Ho * Wg, dtype=x.dtype) if keep else None
        bias_values = np.empty(0, dtype=x.dtype) if bias is None else bias  # the compiled pass adds none when empty

        if direct:
            weight_c = np.ascontiguousarray(weight)

        def chunk(i):  # images [n0, n0 + nb): the chunks are independent, glassnet's threads share them
            n0 = i * nb
            xc = x[n0 : n0 + nb]
            b = xc.shape[0]
            if direct:
                kernels.conv_direct(xc, weight_c, bias_values, out[n0 : n0 + nb], kh, kw, dh, dw, pads[0], pads[2])
                return
            dst = None if kept is None else _kept_chunk(kept, C * kh * kw, n0, b, Ho * Wg)
            cols = _columns(xc, kernels, wide, kh, kw, sh, sw, dh, dw, pads, Ho, Wo, out=dst)
            res = _forward_gemm(w2, cols, groups)
            if kernels is not None:  # (O, b, Ho * Wo) -> NCHW, plus the bias, in one compiled pass
                dst = out[n0 : n0 + nb].reshape(b, O, Ho * Wo)
                kernels.gemm_to_nchw(res.reshape(O, b, Ho * Wo), bias_values, dst)
                return
            res = res.reshape(O, -1, Ho, Wg)[..., :Wo].transpose(1, 0, 2, 3)
            if bias is not None:
                np.add(res, bias[:, None, None], out=out[n0 : n0 + nb])
            else:
                out[n0 : n0 + nb] = res

        parallel_for(-(-N // nb), chunk)
        self.cols, self.weight, self.chunk, self.kernels, self.direct = kept, weight, nb, kernels, direct
        # backward reads it: the direct kernels, or the columns rebuilt from it
        self.x = x if kept is None and grad_mode.enabled else None
        self.geometry = (x.shape, kh, kw, sh, sw, dh, dw, pads, Ho, Wo, groups, bias is not None, wide)
        return out[0] if self.unbatched else out

    def backward(self, grad_out):
        x_shape, kh, kw, sh, sw, dh, dw, pads, Ho, Wo, groups, has_bias, wide = self.geometry
        weight, nb, kernels = self.weight, self.chunk, self.kernels
        N, C, H, W = x_shape
        O = weight.shape[0]
        Wg = W + pads[2] + pads[3] if wide else Wo
        if self.unbatched:
            grad_out = grad_out[None]
        if kernels is not None:
            grad_out = np.ascontiguousarray(grad_out)
        need_weight, need_x = self.needs_grad(1), self.needs_grad(0)
        x = None if self.cols is not None or not (need_weight or self.direct) else self.x.reshape(x_shape)
        if x is not None and kernels is not None:
            x = np.ascontiguousarray(x)
        grad_x = np.empty(x_shape, dtype=grad_out.dtype) if need_x else None
        count = -(-N // nb)
        # Each chunk's bias and weight gradients, added up in chunk order afterwards (the same sums
        # whichever thread computed them).
        bias_parts, weight_parts = [None] * count, [None] * count

        def chunk(i):
            # (nb, O, Ho, Wo) -> (O, nb * Ho * Wg): the GEMMs' layout, zeros in the wide grid's extra columns.
            n0 = i * nb
            go = grad_out[n0 : n0 + nb]
            b = go.shape[0]
            if self.direct:
                bias_parts[i] = sums = np.zeros(O)
                grad_weight = np.empty(weight.shape if need_weight else 0, dtype=grad_out.dtype)
                kernels.conv_direct_grad(x[n0 : n0 + nb], go, grad_weight, sums, kh, kw, dh, dw, pads[0], pads[2])
                # A gradient that is not finite is redone through the columns below (_kernels.c: the direct
                # sum may multiply an infinity the exact one never reads by zero).
                if need_weight and np.isfinite(grad_weight).all():
                    weight_parts[i] = grad_weight.reshape(O, -1)
                if not need_x and (weight_parts[i] is not None or not need_weight):
                    return
            if kernels is not None:  # the transposition and the bias gradient's float64 sums in one pass
                g = np.empty((O, b * Ho * Wo), dtype=grad_out.dtype)
                sums = np.zeros(O)
                kernels.nchw_to_gemm(go.reshape(b, O, Ho * Wo), g, sums)
                if not self.direct:
                    bias_parts[i] = sums
            else:
                g = (np.zeros if wide else np.empty)((O, b, Ho, Wg), dtype=grad_out.dtype)
                g[..., :Wo] = go.transpose(1, 0, 2, 3)
                g = g.reshape(O, b * Ho * Wg)
                if has_bias:
                    bias_parts[i] = g.sum(axis=1)
            if need_weight and weight_parts[i] is None:
                if self.cols is not None:
                    cols = _kept_chunk(self.cols, C * kh * kw, n0, b, Ho * Wg)
                else:  # rebuilt chunk by chunk rather than kept (see _KEEP_COLS_MAX_BYTES)
                    cols = _columns(x[n0 : n0 + nb], kernels, wide, kh, kw, sh, sw, dh, dw, pads, Ho, Wo)
                weight_parts[i] = _weight_grad(g, cols, groups)
            if need_x:
                shape, dst = (b, C, H, W), grad_x[n0 : n0 + nb]
                if kernels is not None:
                    gcols = _input_cols(g, weight, groups)
                    kernels.col2im(gcols, dst, kh, kw, sh, sw, dh, dw, pads[0], pads[2], Ho, Wo)
                elif wide:
                    _input_grad_wide(g, weight, shape, kh, kw, dh, dw, pads, Ho, groups, dst)
                else:
                    _input_grad(g, weight, shape, kh, kw, sh, sw, dh, dw, pads, Ho, Wo, groups, out=dst)

        parallel_for(count, chunk)
        if count == 0:  # an empty batch: no chunk, zero gradients
            bias_parts, weight_parts = [np.zeros(O, grad_out.dtype)], [np.zeros((O, weight[0].size), grad_out.dtype)]
        grad_bias = sum_in_order(bias_parts).astype(grad_out.dtype, copy=False) if has_bias else None
        grad_weight = sum_in_order(weight_parts) if need_weight else None
        if grad_weight is not None:
            grad_weight = grad_weight.reshape(weight.shape)
        if grad_x is not None and self.unbatched:
            grad_x = grad_x[0]
        if has_bias:
            return grad_x, grad_weight, grad_bias
        return grad_x, grad_weight


_CHUNK_BYTES = 2 << 20
_MIN_CHUNKS = 8
_WIDE_MAX_RATIO = 1.5
_WIDE_COLS_MAX_RATIO = 1.2
_WIDE_COLS_MIN_ROWS = 64
_KEEP_COLS_MAX_BYTES = 12 << 20
# A stride-1 convolution with at most this many taps (C * kh * kw) or output channels runs the direct
# kernels (_kernels.c): its im2col writes C * kh * kw values per output pixel for a GEMM that does only
# 2 * O flops on each, so the copy costs more than the product. Measured in one process, alternating
# (2 threads, batch 128): LeNet-5's two convolutions (25 taps, 6 channels; 150 taps, 16 channels) 1.35x
# faster training steps; the BatchNorm CNN's first (9 taps) 1.01x, its second and third (288 and 576
# taps, 64 and 128 channels) 0.92x, so they keep the columns.
_DIRECT_MAX_TAPS = 32
_DIRECT_MAX_OUT = 16


def _batch_chunk(rows: int, pixels: int, itemsize: int, N: int) -> int:
    """Images per chunk: about _CHUNK_BYTES of columns or GEMM output (rows x pixels per image), at least one.

    At least _MIN_CHUNKS chunks, so that glassnet's threads have pieces to share; the count does not
    depend on the number of threads, so neither do the sums over chunks.
    """
    return max(1, min(-(-N // _MIN_CHUNKS), _CHUNK_BYTES // (rows * pixels * itemsize)))


def _columns(x, kernels, wide, kh, kw, sh, sw, dh, dw, pads, Ho, Wo, out=None):
    """A chunk's column matrix (C * kh * kw, N * Ho * Wg), by the compiled kernel, the row-wide or the narrow im2col."""
    if kernels is not None:
        N, C = x.shape[:2]
        cols = np.empty((C * kh * kw, N * Ho * Wo), dtype=x.dtype) if out is None else out
        kernels.im2col(x, cols, kh, kw, sh, sw, dh, dw, pads[0], pads[2], Ho, Wo)
        return cols
    if wide:
        return _im2col_wide(x, kh, kw, dh, dw, pads, Ho, out=out)
    return _im2col(x, kh, kw, sh, sw, dh, dw, pads, Ho, Wo, out=out)


def _kept_chunk(kept, rows, n0, b, pixels):
    """Chunk [n0, n0 + b)'s (rows, b * pixels) column matrix: one contiguous piece of the kept buffer."""
    return kept[rows * n0 * pixels : rows * (n0 + b) * pixels].reshape(rows, b * pixels)


def _forward_gemm(w2, cols, groups):
    """res (O, P) = w2 (O, K) @ cols (groups * K, P), one GEMM per group."""
    if groups == 1:
        return w2 @ cols
    O, K = w2.shape
    Og = O // groups
    res = np.empty((O, cols.shape[1]), dtype=cols.dtype)
    for g in range(groups):
        np.matmul(w2[g * Og : (g + 1) * Og], cols[g * K : (g + 1) * K], out=res[g * Og : (g + 1) * Og])
    return res


def _padded(x, pads):
    """x (N, C, H, W) in a fresh zero-bordered (N, C, H + top + bottom, W + left + right) array."""
    top, bottom, left, right = pads
    if not any(pads):
        return x
    N, C, H, W = x.shape
    xp = np.empty((N, C, H + top + bottom, W + left + right), dtype=x.dtype)
    xp[:, :, :top] = 0
    xp[:, :, top + H :] = 0
    xp[:, :, top : top + H, :left] = 0
    xp[:, :, top : top + H, left + W :] = 0
    xp[:, :, top : top + H, left : left + W] = x
    return xp


def _im2col(x, kh, kw, sh, sw, dh, dw, pads, Ho, Wo, out=None):
    """cols[(c, i, j), (n, ho, wo)] = x_pad[n, c, ho * sh + i * dh, wo * sw + j * dw], in ``out`` when given.

    One copy from a strided (C, kh, kw, N, Ho, Wo) view of the padded input: one NumPy call rather
    than kh * kw, which matters when glassnet's threads share the chunks (each call is a point where
    the threads hand the GIL to each other).
    """
    N, C = x.shape[:2]
    xp = _padded(x, pads)
    sN, sC, sH, sW = xp.strides
    view = np.lib.stride_tricks.as_strided(
        xp, (C, kh, kw, N, Ho, Wo), (sC, dh * sH, dw * sW, sN, sh * sH, sw * sW), writeable=False
    )
    if out is None:
        out = np.empty((C * kh * kw, N * Ho * Wo), dtype=x.dtype)
    out.reshape(C, kh, kw, N, Ho, Wo)[...] = view
    return out


def _weight_chunk(K: int, O: int) -> int:
    """Length of the pieces of the weight-gradient GEMM's inner axis (N * Ho * Wo); 0: no split.

    Thin GEMMs (few output channels and a small C * kh * kw) are memory-bound: split along their
    long inner axis into panels of about 512 KB, they stay in the L2 cache and run 2-3x faster
    (measured with benchmarks/bench_kernels.py). Wider ones are compute-bound and gain nothing.
    """
    if K + O > 64:
        return 0
    return 1 << int(np.log2(131072 / (K + O)))


def _weight_grad(g, cols, groups):
    """dweight (O, C/groups * kh * kw) = g (O, P) @ cols^T (P, K), per group, chunked along P.

    When K >= O the GEMM runs as (cols @ g^T)^T: OpenBLAS is up to 1.8x faster with the longer of
    the two output dimensions as its rows (LeNet's second conv, (16, 1600) x (1600, 150): 109 vs
    193 us; measured with the shapes of benchmarks/bench_train.py).
    """
    O, P = g.shape
    K = cols.shape[0] // groups
    Og = O // groups
    chunk = _weight_chunk(K, Og)
    step = P if not chunk or P <= 2 * chunk else chunk
    grad_weight = np.zeros((O, K), dtype=g.dtype)
    for grp in range(groups):
        gg = g[grp * Og : (grp + 1) * Og]
        cg = cols[grp * K : (grp + 1) * K]
        dst = grad_weight[grp * Og : (grp + 1) * Og]
        for s in range(0, P, step):
            if K >= Og:
                dst += (cg[:, s : s + step] @ gg[:, s : s + step].T).T
            else:
                dst += gg[:, s : s + step] @ cg[:, s : s + step].T
    return grad_weight


def _padded_flat(x, pads, extra):
    """x (N, C, H, W) as a zero-bordered (C, N, Hp * Wp + extra) array: each image's padded plane flat."""
    top, bottom, left, right = pads
    N, C, H, W = x.shape
    Hp, Wp = H + top + bottom, W + left + right
    xp = np.zeros((C, N, Hp * Wp + extra), dtype=x.dtype)
    xp[:, :, : Hp * Wp].reshape(C, N, Hp, Wp)[:, :, top : top + H, left : left + W] = x.transpose(1, 0, 2, 3)
    return xp


def _im2col_wide(x, kh, kw, dh, dw, pads, Ho, out=None):
    """Stride-1 columns on the row-wide grid: cols[(c, i, j), (n, ho, w)] = x_pad[n, c, ho + i * dh, w + j * dw].

    w runs over the whole padded width Wp, not only the Wo output columns: within an image, offset
    (i, j)'s block is then the flat padded plane shifted by i * dh * Wp + j * dw, one contiguous
    run of Ho * Wp values per channel and image (runs of Wo values make the narrow im2col several
    times slower). The columns w >= Wo hold values that belong to no output; the forward drops
    their products and the backward gives them a zero gradient. Written into ``out`` when given.
    """
    N, C, H, W = x.shape
    top, bottom, left, right = pads
    Wp = W + left + right
    L = Ho * Wp
    xp = _padded_flat(x, pads, dw * (kw - 1))
    if out is None:
        out = np.empty((C * kh * kw, N * L), dtype=x.dtype)
    sC, sN, s1 = xp.strides
    view = np.lib.stride_tricks.as_strided(xp, (C, kh, kw, N, L), (sC, dh * Wp * s1, dw * s1, sN, s1), writeable=False)
    out.reshape(C, kh, kw, N, L)[...] = view  # one copy (see _im2col)
    return out


def _input_grad(g, weight, x_shape, kh, kw, sh, sw, dh, dw, pads, Ho, Wo, groups, wide=None, out=None):
    """dx = col2im(weight^T @ g): each kernel offset's (C, N, Ho, Wo) block added back where it was read.

    ``g`` is the output gradient as (O, N * Ho * Wo). ``wide`` picks the row-wide path (stride 1
    only); by default it is used when the padded width is at most ``_WIDE_MAX_RATIO`` times the
    output width, since its GEMM also runs over the padding columns. The result goes to ``out`` (an
    (N, C, H, W) array or view) when given.
    """
    N, C, H, W = x_shape
    O = weight.shape[0]
    top, bottom, left, right = pads
    Hp, Wp = H + top + bottom, W + left + right
    dtype = g.dtype
    grad_x = np.empty(x_shape, dtype=dtype) if out is None else out
    if wide is None:
        wide = sh == 1 and sw == 1 and Wp <= _WIDE_MAX_RATIO * Wo
    if wide:
        gw = np.zeros((O, N, Ho, Wp), dtype=dtype)  # g at columns [0, Wo) of the row-wide grid
        gw[:, :, :, :Wo] = g.reshape(O, N, Ho, Wo)
        return _input_grad_wide(gw.reshape(O, -1), weight, x_shape, kh, kw, dh, dw, pads, Ho, groups, grad_x)
    gxp = np.zeros((C, N, Hp, Wp), dtype=dtype)
    cols = _input_cols(g, weight, groups).reshape(C, kh, kw, N, Ho, Wo)
    for i in range(kh):
        r = i * dh
        for j in range(kw):
            s = j * dw
            view = gxp[:, :, r : r + sh * (Ho - 1) + 1 : sh, s : s + sw * (Wo - 1) + 1 : sw]
            view += cols[:, i, j]
    grad_x[...] = gxp[:, :, top : top + H, left : left + W].transpose(1, 0, 2, 3)
    return grad_x


def _input_cols(g, weight, groups):
    """The columns' gradient (C * kh * kw, P) = weight^T @ g (O, P), one GEMM per group."""
    O = weight.shape[0]
    w2 = weight.reshape(O, -1)
    if groups == 1:
        return w2.T @ g
    Og, K = O // groups, w2.shape[1]
    gcols = np.empty((groups * K, g.shape[1]), dtype=g.dtype)
    for grp in range(groups):
        np.matmul(w2[grp * Og : (grp + 1) * Og].T, g[grp * Og : (grp + 1) * Og], out=gcols[grp * K : (grp + 1) * K])
    return gcols


def _input_grad_wide(gw, weight, x_shape, kh, kw, dh, dw, pads, Ho, groups, out):
    """Stride-1 col2im on the row-wide grid; ``gw`` is the output gradient (O, N * Ho * Wp), zero at w >= Wo.

    Within an image the contribution of offset (i, j) is the flat (Ho * Wp) block shifted by
    i * dh * Wp + j * dw: one long contiguous addition per channel and image (3-4x faster than runs
    of Wo). Each image's plane of the gradient buffer has dw * (kw - 1) spare elements for the last
    shifts. Writes dx into ``out``.
    """
    N, C, H, W = x_shape
    top, bottom, left, right = pads
    Hp, Wp = H + top + bottom, W + left + right
    L = Ho * Wp
    gxp = np.zeros((C, N, Hp * Wp + dw * (kw - 1)), dtype=gw.dtype)
    cols = _input_cols(gw, weight, groups).reshape(C, kh * kw, N, L)
    for i in range(kh):
        for j in range(kw):
            shift = i * dh * Wp + j * dw
            view = gxp[:, :, shift : shift + L]
            view += cols[:, i * kw + j]
    planes = gxp[:, :, : Hp * Wp].reshape(C, N, Hp, Wp)
    out[...] = planes[:, :, top : top + H, left : left + W].transpose(1, 0, 2, 3)
    return out
