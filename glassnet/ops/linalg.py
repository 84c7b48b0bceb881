"""Matrix products: matmul (batched, 1-D operands as NumPy treats them) and the fused linear layer."""

from __future__ import annotations

import numpy as np

from glassnet import _parallel, compiled
from glassnet._parallel import matmul as _gemm
from glassnet.autograd import grad_mode
from glassnet.autograd.function import Function, GlassnetError
from glassnet.ops._util import unbroadcast


class MatMul(Function):
    """out = a @ b;  da = grad @ b^T, db = a^T @ grad (batch axes unbroadcast).

    1-D operands are promoted as NumPy does (a vector on the left is a row, on the right a column)
    and the added axis is removed again from the output and the gradients.
    """

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise GlassnetError(f"matmul: both operands need at least one dimension, got {a.shape} @ {b.shape}")
        inner_a = a.shape[-1]
        inner_b = b.shape[-2] if b.ndim > 1 else b.shape[0]
        if inner_a != inner_b:
            raise GlassnetError(
                f"matmul: inner dimensions differ: {a.shape} @ {b.shape} ({inner_a} columns vs {inner_b} rows)"
            )
        self.a, self.b = a, b
        return np.matmul(a, b)

    def backward(self, grad_out):
        a, b = self.a, self.b
        need_a, need_b = self.needs_grad(0), self.needs_grad(1)
        if a.ndim == 2 and b.ndim == 2:
            return (grad_out @ b.T if need_a else None), (a.T @ grad_out if need_b else None)
        a2 = a[None, :] if a.ndim == 1 else a  # (1, k)
        b2 = b[:, None] if b.ndim == 1 else b  # (k, 1)
        g2 = grad_out
        if b.ndim == 1:
            g2 = g2[..., None]
        if a.ndim == 1:
            g2 = np.expand_dims(g2, -2)
        grad_a = grad_b = None
        if need_a:
            grad_a = unbroadcast(g2 @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        if need_b:
            grad_b = unbroadcast(np.swapaxes(a2, -1, -2) @ g2, b2.shape).reshape(b.shape)
        return grad_a, grad_b


_F32 = np.dtype(np.float32)
_EMPTY = np.empty(0, dtype=_F32)  # "no bias" to the compiled GEMM
_MIN_ROWS = 64  # the packed operand's rows: below one AVX-512 strip (64 rows) the compiled GEMM wastes lanes
_MIN_BATCH = 8  # below this packing the weight costs more than it saves (the MLP's forward at batch 4: 79 us, BLAS 50)
_MIN_SPLIT_FLOPS = 2e6  # below this the compiled GEMM runs on the calling thread (waking a helper costs more)


def _inference_gemm(x, weight, bias):
    """x @ weight.T + bias by the compiled GEMM (glassnet/_gemm.c), or None where it does not apply.

    It applies without autograd (no_grad, inference), to float32 2-D operands, once ``set_num_threads``
    has given glassnet the cores (until then NumPy's BLAS keeps its own threads), and when the packed
    operand has at least _MIN_ROWS rows. Training keeps NumPy's BLAS: its backward's GEMMs run there,
    and two thread pools busy at once slow each other down. The layout follows the BLAS path's: the
    product is taken as out^T = weight @ x^T (column-major out) for a column-major x or a batch of
    at most ``out`` rows, else as out = x @ weight^T; the GEMM packs its second operand. A row-major
    batch below _MIN_ROWS takes the second form, the weight packed: at (32, 784) @ (784, 256) 75 us on
    2 threads, against 85 us for BLAS in its faster layout and 133 us packing the batch into strips
    half empty. Below _MIN_BATCH rows the products stay with BLAS (packing the whole weight for a
    few rows costs more than the product).
    """
    threads = _parallel.gemm_threads()
    if (
        not threads
        or x.ndim != 2
        or x.dtype != _F32
        or weight.dtype != _F32
        or not weight.flags.c_contiguous
        or (bias is not None and (bias.dtype != _F32 or not bias.flags.c_contiguous))
    ):
        return None
    kernels = compiled.kernels(_F32)
    if kernels is None or not hasattr(kernels, "gemm") or kernels.gemm_isa() is None:
        return None
    (N, K), O = x.shape, weight.shape[0]
    if (x.flags.f_contiguous or (x.flags.c_contiguous and N <= O)) and N >= _MIN_ROWS:
        p, q, q_is_kn, per_row = weight, (x.T if x.flags.f_contiguous else x), x.flags.f_contiguous, True
        out_t = np.empty((O, N), dtype=_F32)
        c, out = out_t, out_t.T  # (N, O), column-major
    elif x.flags.c_contiguous and O >= _MIN_ROWS and N >= _MIN_BATCH:
        p, q, q_is_kn, per_row = x, weight, False, False
        c = out = np.empty((N, O), dtype=_F32)
    else:
        return None
    if 2.0 * N * O * K < _MIN_SPLIT_FLOPS:
        threads = 1
    _parallel.claim_cores()
    kernels.gemm(p, q, c, _EMPTY if bias is None else bias, q_is_kn, per_row, threads)
    return out


class Linear(Function):
    """out = x @ weight^T + bias, the bias added in place into the GEMM's output.

    dx = grad @ weight;  dweight = grad^T @ x (batch axes flattened);  dbias = grad summed over rows.
    Gradients of inputs that require none are not computed (the first layer's dx, a frozen weight).
    Shape: x (..., in), weight (out, in), bias (out,) -> (..., out).

    Layout: OpenBLAS is slow on ``x @ weight.T`` when the batch is small next to ``out`` (1.5x at
    (32, 784) @ (784, 256)), while the same product taken as ``out^T = weight @ x^T`` runs at full
    speed; so a 2-D x with batch <= out features, or a column-major x, gets the column-major form and
    a column-major (Fortran-ordered) output. The next layer then sees a column-major x, for which
    that form is never slower, and its backward returns dx in x's layout (mixing the two layouts in
    one elementwise op, e.g. ReLU's mask times the gradient, costs a strided pass). The weight
    gradient stays row-major, like the weight, so that the optimizer's passes stay contiguous.
    """

    def forward(self, x, weight, bias=None):
        self.x, self.weight, self.has_bias = x, weight, bias is not None
        if not grad_mode.enabled:
            out = _inference_gemm(x, weight, bias)
            if out is not None:
                return out
        if x.ndim == 2 and weight.flags.c_contiguous and (x.flags.f_contiguous or weight.shape[0] >= x.shape[0]):
            out = _gemm(weight, x.T).T  # (N, out), column-major
        elif x.ndim == 2:
            out = _gemm(x, weight.T)
        else:
            out = x @ weight.T
        if bias is not None:
            out += bias
        return out

    def backward(self, grad_out):
        x, weight = self.x, self.weight
        grad_x = None
        if self.needs_grad(0):
            if x.ndim == 2 and not x.flags.c_contiguous and grad_out.ndim == 2:
                grad_x = _gemm(weight.T, grad_out.T).T  # x's (column-major) layout
            elif grad_out.ndim == 2:
                grad_x = _gemm(grad_out, weight)
            else:
                grad_x = grad_out @ weight
        g2 = grad_out if grad_out.ndim == 2 else grad_out.reshape(-1, grad_out.shape[-1])
        grad_weight = None
        if self.needs_grad(1):
            grad_weight = _gemm(g2.T, x if x.ndim == 2 else x.reshape(-1, x.shape[-1]))
        if not self.has_bias:
            return grad_x, grad_weight
        grad_bias = None
        if self.needs_grad(2):
            # ones @ g (a BLAS gemv) is 2.5-4x faster than g.sum(axis=0), in either layout
            grad_bias = np.ones(g2.shape[0], dtype=g2.dtype) @ g2
        return grad_x, grad_weight, grad_bias
