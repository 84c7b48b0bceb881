"""The compiled kernels of ``glassnet[fast]``, in numba: the memory-bound passes of CNN training.

Convolution's im2col and col2im and its layout passes (the GEMM's (O, N, P) to NCHW with the bias,
and back with the bias gradient's sums), 2x2 max pooling, ReLU with its mask, BatchNorm's moments
and affine maps. The only file that imports numba; ``glassnet.compiled`` loads it on first use and
the ops call it through ``compiled.kernels()``. Each kernel does the arithmetic of the NumPy path it
replaces (``glassnet/ops/conv.py``, ``pool.py``, ``activation.py``, ``norm.py``), which stays the
reference; the tests compare the two, bit for bit where the arithmetic is the same (sums in float64
are compared with a tolerance). What the compiled kernels gain:

- one call per batch chunk that releases the GIL for all of it (``nogil=True``), so glassnet's
  threads run their pieces side by side without handing the GIL over at every NumPy call; there
  is no numba thread pool (no ``parallel=True``): glassnet's pool is the only one;
- no padded copy of the input (bounds are worked out per row), and col2im as one pass that adds
  each column into its pixel, where NumPy makes kh * kw read-modify-write passes;
- one pass where NumPy needs two or more (ReLU's output and mask; BatchNorm's statistics; a
  transposition and a sum), and transposing copies of contiguous runs (3x NumPy's strided ones).

Arrays are C-contiguous (the callers make sure) and indexed through their flat views with unsigned
offsets: numba checks every signed index for Python's negative wrap-around, which keeps LLVM from
vectorising the inner loops (measured: 3-4x slower). Compiled code is cached on disk (``cache=True``,
in ``__pycache__`` beside this file), so only the first process on a machine pays the compile time.
"""

from __future__ import annotations

import numba
import numpy as np

_jit = numba.njit(nogil=True, cache=True)


@numba.njit(nogil=True, cache=True, inline="always")
def _span(offset, stride, size, count):
    """[lo, hi): the outputs k in range(count) whose input index k * stride + offset lies in [0, size)."""
    lo = 0
    if offset < 0:
        lo = (-offset + stride - 1) // stride
    last = size - 1 - offset
    hi = 0 if last < 0 else min(count, last // stride + 1)
    return lo, max(lo, hi)


@_jit
def im2col(x, cols, kh, kw, sh, sw, dh, dw, top, left, Ho, Wo):
    """cols[(c, i, j), (n, ho, wo)] = x[n, c, ho * sh + i * dh - top, wo * sw + j * dw - left], 0 outside x."""
    N, C, H, W = x.shape
    xf, cf = x.ravel(), cols.ravel()
    P = Ho * Wo
    zero = cols.dtype.type(0)
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                row = ((c * kh + i) * kw + j) * N * P
                offset = j * dw - left
                lo, hi = _span(offset, sw, W, Wo)
                for n in range(N):
                    plane = (n * C + c) * H * W
                    for ho in range(Ho):
                        h = ho * sh + i * dh - top
                        dst = row + n * P + ho * Wo
                        if h < 0 or h >= H:
                            for wo in range(Wo):
                                cf[np.uint64(dst + wo)] = zero
                            continue
                        src = plane + h * W + offset
                        for wo in range(lo):
                            cf[np.uint64(dst + wo)] = zero
                        if sw == 1:
                            for wo in range(lo, hi):
                                cf[np.uint64(dst + wo)] = xf[np.uint64(src + wo)]
                        else:
                            for wo in range(lo, hi):
                                cf[np.uint64(dst + wo)] = xf[np.uint64(src + wo * sw)]
                        for wo in range(hi, Wo):
                            cf[np.uint64(dst + wo)] = zero


@_jit
def col2im(cols, grad_x, kh, kw, sh, sw, dh, dw, top, left, Ho, Wo):
    """grad_x[n, c, h, w] = the sum of cols[(c, i, j), (n, ho, wo)] over the (i, j, ho, wo) that read x[n, c, h, w].

    The contributions to a pixel are added in (i, j) order from zero, as the NumPy path's kh * kw
    passes add them: the same bits.
    """
    N, C, H, W = grad_x.shape
    gf, cf = grad_x.ravel(), cols.ravel()
    P = Ho * Wo
    gf[:] = 0
    for n in range(N):
        for c in range(C):
            plane = (n * C + c) * H * W
            for i in range(kh):
                for j in range(kw):
                    row = ((c * kh + i) * kw + j) * N * P + n * P
                    offset = j * dw - left
                    lo, hi = _span(offset, sw, W, Wo)
                    for ho in range(Ho):
                        h = ho * sh + i * dh - top
                        if h < 0 or h >= H:
                            continue
                        src = row + ho * Wo
                        dst = plane + h * W + offset
                        if sw == 1:
                            for wo in range(lo, hi):
                                gf[np.uint64(dst + wo)] += cf[np.uint64(src + wo)]
                        else:
                            for wo in range(lo, hi):
                                gf[np.uint64(dst + wo * sw)] += cf[np.uint64(src + wo)]


@_jit
def gemm_to_nchw(res, bias, out):
    """out[n, o, p] = res[o, n, p] (+ bias[o] when bias has O values): the forward GEMM's (O, N, P) to NCHW.

    One pass of contiguous runs of P; NumPy's transposing np.add is the same arithmetic.
    """
    O, N, P = res.shape
    rf, of = res.ravel(), out.ravel()
    with_bias = bias.size == O
    for n in range(N):
        for o in range(O):
            src = (o * N + n) * P
            dst = (n * O + o) * P
            if with_bias:
                b = bias[o]
                for p in range(P):
                    of[np.uint64(dst + p)] = rf[np.uint64(src + p)] + b
            else:
                for p in range(P):
                    of[np.uint64(dst + p)] = rf[np.uint64(src + p)]


@numba.njit(nogil=True, cache=True, fastmath={"reassoc", "contract"})
def nchw_to_gemm(grad_out, g, sums):
    """g[o, n, p] = grad_out[n, o, p] (the backward GEMMs' layout) and sums[o] += its sum over n and p (float64)."""
    N, O, P = grad_out.shape
    gf, of = grad_out.ravel(), g.ravel()
    for n in range(N):
        for o in range(O):
            src = (n * O + o) * P
            dst = (o * N + n) * P
            s = 0.0
            for p in range(P):
                v = gf[np.uint64(src + p)]
                of[np.uint64(dst + p)] = v
                s += np.float64(v)
            sums[o] += s


@numba.njit(nogil=True, cache=True, inline="always")
def _maximum(a, b):
    """np.maximum for two scalars: the larger, or NaN when either is NaN (a select, no branch)."""
    return a if (a > b) | (a != a) else b


@numba.njit(nogil=True, cache=True, inline="always")
def _window2x2(xf, r0, r1, wo):
    """The window (2 wo, 2 wo + 1) of the flat rows starting at r0 and r1, in row-major order."""
    a = xf[np.uint64(r0 + 2 * wo)]
    b = xf[np.uint64(r0 + 2 * wo + 1)]
    c = xf[np.uint64(r1 + 2 * wo)]
    d = xf[np.uint64(r1 + 2 * wo + 1)]
    return a, b, c, d


@_jit
def max_pool2x2(x, out):
    """MaxPool2d(2): out[n, c, ho, wo] = the maximum of x[n, c, 2ho:2ho+2, 2wo:2wo+2] (NaN wins).

    Only the usual 2x2 windows with stride 2 are compiled: a general window loop compares with
    branches that random data mispredicts (measured 3-6x slower than NumPy's chained maximum),
    where this one is four loads and three selects per output (3x faster than NumPy).
    """
    N, C, H, W = x.shape
    Ho, Wo = out.shape[2], out.shape[3]
    xf, of = x.ravel(), out.ravel()
    for p in range(N * C):
        plane = p * H * W
        for ho in range(Ho):
            r0 = plane + 2 * ho * W
            r1 = r0 + W
            o = (p * Ho + ho) * Wo
            for wo in range(Wo):
                a, b, c, d = _window2x2(xf, r0, r1, wo)
                of[np.uint64(o + wo)] = _maximum(_maximum(_maximum(a, b), c), d)


@_jit
def max_pool2x2_backward(x, out, grad_out, grad_x):
    """MaxPool2d(2)'s input gradient: each window's gradient to its first maximum in row-major order.

    A NaN counts as a maximum (as the NumPy path's ``_is_max``); every element of grad_x is written,
    those past the last window row or column with zero.
    """
    N, C, H, W = x.shape
    Ho, Wo = out.shape[2], out.shape[3]
    xf, of, gof, gxf = x.ravel(), out.ravel(), grad_out.ravel(), grad_x.ravel()
    zero = grad_x.dtype.type(0)
    for p in range(N * C):
        plane = p * H * W
        for ho in range(Ho):
            r0 = plane + 2 * ho * W
            r1 = r0 + W
            o = (p * Ho + ho) * Wo
            for wo in range(Wo):
                m = of[np.uint64(o + wo)]
                g = gof[np.uint64(o + wo)]
                a, b, c, _ = _window2x2(xf, r0, r1, wo)  # the last element takes what is left
                hit_a = (a == m) | (a != a)
                hit_b = ((b == m) | (b != b)) & ~hit_a
                hit_c = ((c == m) | (c != c)) & ~(hit_a | hit_b)
                hit_d = ~(hit_a | hit_b | hit_c)
                gxf[np.uint64(r0 + 2 * wo)] = g if hit_a else zero
                gxf[np.uint64(r0 + 2 * wo + 1)] = g if hit_b else zero
                gxf[np.uint64(r1 + 2 * wo)] = g if hit_c else zero
                gxf[np.uint64(r1 + 2 * wo + 1)] = g if hit_d else zero
            for w in range(2 * Wo, W):  # an odd width: the last column is in no window
                gxf[np.uint64(r0 + w)] = zero
                gxf[np.uint64(r1 + w)] = zero
        for h in range(2 * Ho, H):  # an odd height: the last row is in no window
            for w in range(W):
                gxf[np.uint64(plane + h * W + w)] = zero


@_jit
def relu(x, out):
    """out = np.maximum(x, 0) over flat arrays (NaN stays NaN, -0.0 gives +0.0); 1.5x NumPy's pass."""
    xf, of = x.ravel(), out.ravel()
    zero = xf.dtype.type(0)
    for i in range(xf.size):
        v = xf[np.uint64(i)]
        of[np.uint64(i)] = v if (v > zero) | (v != v) else zero


@_jit
def relu_backward(grad_out, out, grad_x):
    """grad_x = grad_out * (out > 0) over flat arrays, as NumPy's product (inf * False is NaN), in one pass.

    NumPy needs two (the mask, then the product); this one is about 2x faster.
    """
    gf, of, dxf = grad_out.ravel(), out.ravel(), grad_x.ravel()
    zero, one = gf.dtype.type(0), gf.dtype.type(1)
    for i in range(gf.size):
        dxf[np.uint64(i)] = gf[np.uint64(i)] * (one if of[np.uint64(i)] > zero else zero)


# Per-channel sums add float64 terms; 'reassoc' lets LLVM keep several partial sums in vector lanes
# (a single running sum is bound by the latency of one addition per element: 4-5x slower). No
# 'nnan' or 'ninf': a NaN or an infinity in the input still reaches the statistics.
_jit_sums = numba.njit(nogil=True, cache=True, fastmath={"reassoc", "contract"})


@_jit_sums
def channel_moments(x, shift, out):
    """out[0, c] += sum of (x[n, c, l] - shift[c]), out[1, c] += sum of its squares, over n and l (float64).

    x is (N, C, L). Shifting by a value near the channel's mean (the caller passes one of its
    elements) keeps the variance sum - square of the mean / M free of cancellation.
    """
    N, C, L = x.shape
    xf = x.ravel()
    for n in range(N):
        for c in range(C):
            k = shift[c]
            base = (n * C + c) * L
            s = 0.0
            q = 0.0
            for i in range(L):
                d = np.float64(xf[np.uint64(base + i)]) - k
                s += d
                q += d * d
            out[0, c] += s
            out[1, c] += q


@_jit_sums
def channel_grad_sums(g, x, mean, out):
    """out[0, c] += sum of g, out[1, c] += sum of g * (x - mean[c]), over n and l (float64), for (N, C, L) g and x."""
    N, C, L = g.shape
    gf, xf = g.ravel(), x.ravel()
    for n in range(N):
        for c in range(C):
            m = mean[c]
            base = (n * C + c) * L
            s = 0.0
            d = 0.0
            for i in range(L):
                gv = np.float64(gf[np.uint64(base + i)])
                s += gv
                d += gv * (np.float64(xf[np.uint64(base + i)]) - m)
            out[0, c] += s
            out[1, c] += d


@_jit
def channel_affine(x, mean, scale, shift, out):
    """out[n, c, l] = (x[n, c, l] - mean[c]) * scale[c] + shift[c] for (N, C, L) arrays, in x's dtype."""
    N, C, L = x.shape
    xf, of = x.ravel(), out.ravel()
    for n in range(N):
        for c in range(C):
            m, a, b = mean[c], scale[c], shift[c]
            base = (n * C + c) * L
            for i in range(L):
                of[np.uint64(base + i)] = (xf[np.uint64(base + i)] - m) * a + b


@_jit
def channel_affine2(g, a, x, b, c, out):
    """out[n, ch, l] = g * a[ch] + (x * b[ch] + c[ch]) for (N, C, L) arrays: BatchNorm's input gradient."""
    N, C, L = g.shape
    gf, xf, of = g.ravel(), x.ravel(), out.ravel()
    for n in range(N):
        for ch in range(C):
            av, bv, cv = a[ch], b[ch], c[ch]
            base = (n * C + ch) * L
            for i in range(L):
                j = np.uint64(base + i)
                of[j] = gf[j] * av + (xf[j] * bv + cv)
