"""Test helpers: float64 central differences and array comparison."""

from __future__ import annotations

import numpy as np

import glassnet as gn


def numerical_grad(fn, arrays, index, eps=1e-6):
    """Central-difference gradient of sum(fn(*arrays) * weights) wrt arrays[index] (float64)."""
    arrays = [np.array(a, dtype=np.float64) for a in arrays]
    rng = np.random.default_rng(123)
    out = np.asarray(fn(*arrays))
    weights = rng.standard_normal(out.shape)
    x = arrays[index]
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        plus = np.sum(np.asarray(fn(*arrays)) * weights)
        x[i] = old - eps
        minus = np.sum(np.asarray(fn(*arrays)) * weights)
        x[i] = old
        grad[i] = (plus - minus) / (2 * eps)
    return grad, weights


def check_grad(fn, *arrays, atol=1e-6, rtol=1e-5):
    """Compare glassnet's backward of ``fn`` (on float64 Tensors) with central differences.

    ``fn`` takes Tensors and returns a Tensor; it is also called on Tensors for the numeric side.
    """

    def numeric_fn(*arrs):
        with gn.no_grad():
            return fn(*[gn.tensor(a) for a in arrs]).data

    for i in range(len(arrays)):
        expected, weights = numerical_grad(numeric_fn, arrays, i)
        tensors = [gn.tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
        out = fn(*tensors)
        out.backward(gn.tensor(weights))
        np.testing.assert_allclose(tensors[i].grad.data, expected, atol=atol, rtol=rtol, err_msg=f"input {i}")
