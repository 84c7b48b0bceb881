"""Matrix products: matmul (batched, 1-D operands as NumPy treats them) and the fused linear layer."""

from __future__ import annotations

import numpy as np

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
        if a.ndim == 2 and b.ndim == 2:
            return grad_out @ b.T, a.T @ grad_out
        a2 = a[None, :] if a.ndim == 1 else a  # (1, k)
        b2 = b[:, None] if b.ndim == 1 else b  # (k, 1)
        g2 = grad_out
        if b.ndim == 1:
            g2 = g2[..., None]
        if a.ndim == 1:
            g2 = np.expand_dims(g2, -2)
        grad_a = unbroadcast(g2 @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        grad_b = unbroadcast(np.swapaxes(a2, -1, -2) @ g2, b2.shape).reshape(b.shape)
        return grad_a, grad_b


class Linear(Function):
    """out = x @ weight^T + bias, the bias added in place into the GEMM's output.

    dx = grad @ weight;  dweight = grad^T @ x (batch axes flattened);  dbias = grad summed over rows.
    Shape: x (..., in), weight (out, in), bias (out,) -> (..., out).
    """

    def forward(self, x, weight, bias=None):
        self.x, self.weight, self.has_bias = x, weight, bias is not None
        out = x @ weight.T
        if bias is not None:
            out += bias
        return out

    def backward(self, grad_out):
        x, weight = self.x, self.weight
        grad_x = grad_out @ weight
        if grad_out.ndim == 2:
            grad_weight = grad_out.T @ x
            grad_bias = grad_out.sum(axis=0) if self.has_bias else None
        else:
            g2 = grad_out.reshape(-1, grad_out.shape[-1])
            grad_weight = g2.T @ x.reshape(-1, x.shape[-1])
            grad_bias = g2.sum(axis=0) if self.has_bias else None
        if self.has_bias:
            return grad_x, grad_weight, grad_bias
        return grad_x, grad_weight
