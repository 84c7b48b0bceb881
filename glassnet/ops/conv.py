"""2-D convolution primitive: im2col + one GEMM forward, GEMMs + col2im backward (NCHW in and out).

Layout (chosen for speed on a CPU, see benchmarks/bench_kernels.py): the column matrix is
``cols[(c, i, j), (n, ho, wo)]``, shape (C * kh * kw, N * Ho * Wo). Each kernel offset (i, j) fills one
contiguous (C, N * Ho * Wo) block, so im2col is kh * kw block copies (no Python loop over pixels or
images), the forward GEMM is ``weight.reshape(O, K) @ cols`` with no transposed weight copy, and a
group's rows are one contiguous slice (groups cost one GEMM each). The GEMM yields (O, N, Ho, Wo);
one transposing copy, fused with the bias addition, gives NCHW.

Backward, for stride 1 the input gradient is computed on a "row-wide" grid: the output gradient's
rows are padded with zeros to the padded input width Wp, so that within an image each kernel offset's
contribution is a shift of a flat (Ho * Wp) block, and col2im becomes kh * kw additions over runs of
Ho * Wp elements instead of runs of Wo (3-4x faster).
"""

from __future__ import annotations

import numpy as np

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

        cols = _im2col(x, kh, kw, sh, sw, dh, dw, pads, Ho, Wo)  # (C * kh * kw, N * Ho * Wo)
        K = Cg * kh * kw
        w2 = weight.reshape(O, C // groups * kh * kw)
        if groups == 1:
            res = w2 @ cols  # (O, N * Ho * Wo)
        else:
            res = np.empty((O, N * Ho * Wo), dtype=x.dtype)
            Og = O // groups
            for g in range(groups):
                np.matmul(w2[g * Og : (g + 1) * Og], cols[g * K : (g + 1) * K], out=res[g * Og : (g + 1) * Og])
        out = np.empty((N, O, Ho * Wo), dtype=x.dtype)
        res = res.reshape(O, N, Ho * Wo).transpose(1, 0, 2)
        if bias is not None:
            np.add(res, bias[:, None], out=out)
        else:
            out[...] = res
        self.cols, self.weight = cols, weight
        self.geometry = (x.shape, kh, kw, sh, sw, dh, dw, pads, Ho, Wo, groups, bias is not None)
        out = out.reshape(N, O, Ho, Wo)
        return out[0] if self.unbatched else out

    def backward(self, grad_out):
        x_shape, kh, kw, sh, sw, dh, dw, pads, Ho, Wo, groups, has_bias = self.geometry
        cols, weight = self.cols, self.weight
        N, C, H, W = x_shape
        O = weight.shape[0]
        if self.unbatched:
            grad_out = grad_out[None]
        # (N, O, Ho, Wo) -> (O, N * Ho * Wo): the GEMMs' layout.
        g = np.empty((O, N, Ho * Wo), dtype=grad_out.dtype)
        g[...] = grad_out.reshape(N, O, Ho * Wo).transpose(1, 0, 2)
        g = g.reshape(O, N * Ho * Wo)
        grad_bias = g.sum(axis=1) if has_bias else None
        parents = self.parents
        grad_weight = grad_x = None
        if parents[1].requires_grad:
            grad_weight = _weight_grad(g, cols, groups).reshape(weight.shape)
        if parents[0].requires_grad:
            grad_x = _input_grad(g, weight, x_shape, kh, kw, sh, sw, dh, dw, pads, Ho, Wo, groups)
            if self.unbatched:
                grad_x = grad_x[0]
        if has_bias:
            return grad_x, grad_weight, grad_bias
        return grad_x, grad_weight


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


def _im2col(x, kh, kw, sh, sw, dh, dw, pads, Ho, Wo):
    """cols[(c, i, j), (n, ho, wo)] = x_pad[n, c, ho * sh + i * dh, wo * sw + j * dw]."""
    N, C = x.shape[:2]
    xt = _padded(x, pads).transpose(1, 0, 2, 3)  # (C, N, Hp, Wp) view
    cols = np.empty((C, kh, kw, N, Ho, Wo), dtype=x.dtype)
    for i in range(kh):
        r = i * dh
        for j in range(kw):
            s = j * dw
            cols[:, i, j] = xt[:, :, r : r + sh * (Ho - 1) + 1 : sh, s : s + sw * (Wo - 1) + 1 : sw]
    return cols.reshape(C * kh * kw, N * Ho * Wo)


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
    """dweight (O, C/groups * kh * kw) = g (O, P) @ cols^T (P, K), per group, chunked along P."""
    O, P = g.shape
    K = cols.shape[0] // groups
    Og = O // groups
    chunk = _weight_chunk(K, Og)
    grad_weight = np.empty((O, K), dtype=g.dtype)
    for grp in range(groups):
        gg = g[grp * Og : (grp + 1) * Og]
        cg = cols[grp * K : (grp + 1) * K]
        if not chunk or P <= 2 * chunk:
            np.matmul(gg, cg.T, out=grad_weight[grp * Og : (grp + 1) * Og])
            continue
        acc = gg[:, :chunk] @ cg[:, :chunk].T
        for s in range(chunk, P, chunk):
            acc += gg[:, s : s + chunk] @ cg[:, s : s + chunk].T
        grad_weight[grp * Og : (grp + 1) * Og] = acc
    return grad_weight


_WIDE_MAX_RATIO = 1.5


def _input_grad(g, weight, x_shape, kh, kw, sh, sw, dh, dw, pads, Ho, Wo, groups, wide=None):
    """dx = col2im(weight^T @ g): each kernel offset's (C, N, Ho, Wo) block added back where it was read.

    ``wide`` picks the row-wide path (stride 1 only); by default it is used when the padded width
    is at most ``_WIDE_MAX_RATIO`` times the output width, since its GEMM also runs over the padding
    columns.
    """
    N, C, H, W = x_shape
    O = weight.shape[0]
    top, bottom, left, right = pads
    Hp, Wp = H + top + bottom, W + left + right
    Og, K, Cg = O // groups, C // groups * kh * kw, C // groups
    w2 = weight.reshape(O, K)
    dtype = g.dtype
    if wide is None:
        wide = sh == 1 and sw == 1 and Wp <= _WIDE_MAX_RATIO * Wo
    if wide:
        # Row-wide grid: g placed at columns [0, Wo) of zero rows of length Wp, so that within an
        # image the contribution of offset (i, j) is the flat (Ho * Wp) block shifted by
        # i * dh * Wp + j * dw: one long contiguous addition per channel and image. Each image's
        # row of the gradient buffer has dw * (kw - 1) spare elements for the last shifts.
        L = Ho * Wp
        gw = np.zeros((O, N, Ho, Wp), dtype=dtype)
        gw[:, :, :, :Wo] = g.reshape(O, N, Ho, Wo)
        gw = gw.reshape(O, N * L)
        gxp = np.zeros((C, N, Hp * Wp + dw * (kw - 1)), dtype=dtype)
        for grp in range(groups):
            gcols = w2[grp * Og : (grp + 1) * Og].T @ gw[grp * Og : (grp + 1) * Og]  # (K, N * L)
            gcols = gcols.reshape(Cg, kh * kw, N, L)
            dst = gxp[grp * Cg : (grp + 1) * Cg]
            for i in range(kh):
                for j in range(kw):
                    shift = i * dh * Wp + j * dw
                    view = dst[:, :, shift : shift + L]
                    view += gcols[:, i * kw + j]
        gxp = gxp[:, :, : Hp * Wp].reshape(C, N, Hp, Wp)
    else:
        gxp = np.zeros((C, N, Hp, Wp), dtype=dtype)
        for grp in range(groups):
            gcols = w2[grp * Og : (grp + 1) * Og].T @ g[grp * Og : (grp + 1) * Og]  # (K, P)
            gcols = gcols.reshape(C // groups, kh, kw, N, Ho, Wo)
            dst = gxp[grp * (C // groups) : (grp + 1) * (C // groups)]
            for i in range(kh):
                r = i * dh
                for j in range(kw):
                    s = j * dw
                    view = dst[:, :, r : r + sh * (Ho - 1) + 1 : sh, s : s + sw * (Wo - 1) + 1 : sw]
                    view += gcols[:, i, j]
    grad_x = np.empty(x_shape, dtype=dtype)
    grad_x[...] = gxp[:, :, top : top + H, left : left + W].transpose(1, 0, 2, 3)
    return grad_x
