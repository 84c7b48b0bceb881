"""Matrix products: matmul (2-D, batched with broadcasting, 1-D operands as NumPy treats them) and linear."""

from __future__ import annotations

import numpy as np
import pytest

import glassnet as gn
from glassnet.ops import Linear
from tests.helpers import OpSpec, enroll

SPECS = [
    OpSpec("matmul_2d", lambda lib, a, b: a @ b, [(3, 4), (4, 5)]),
    OpSpec("matmul_method", lambda lib, a, b: a.matmul(b), [(2, 3), (3, 2)]),
    OpSpec("matmul_free", lambda lib, a, b: lib.matmul(a, b), [(2, 3), (3, 2)]),
    OpSpec("matmul_batched", lambda lib, a, b: a @ b, [(2, 3, 4), (2, 4, 5)]),
    OpSpec("matmul_batched_by_2d", lambda lib, a, b: a @ b, [(2, 3, 4), (4, 5)]),
    OpSpec("matmul_2d_by_batched", lambda lib, a, b: a @ b, [(3, 4), (2, 4, 5)]),
    OpSpec("matmul_broadcast_batch", lambda lib, a, b: a @ b, [(2, 1, 3, 4), (3, 4, 2)]),
    OpSpec("matmul_vector_matrix", lambda lib, a, b: a @ b, [(4,), (4, 5)]),
    OpSpec("matmul_matrix_vector", lambda lib, a, b: a @ b, [(3, 4), (4,)]),
    OpSpec("matmul_vector_vector", lambda lib, a, b: a @ b, [(4,), (4,)]),
    OpSpec("matmul_batched_vector", lambda lib, a, b: a @ b, [(2, 3, 4), (4,)]),
    OpSpec("matmul_vector_batched", lambda lib, a, b: a @ b, [(3,), (2, 3, 4)]),
    OpSpec(
        "linear",
        lambda lib, x, w, b: Linear.apply(x, w, b),
        [(5, 3), (4, 3), (4,)],
        torch_op=lambda torch, x, w, b: torch.nn.functional.linear(x, w, b),
    ),
    OpSpec(
        "linear_no_bias_batched",
        lambda lib, x, w: Linear.apply(x, w),
        [(2, 5, 3), (4, 3)],
        torch_op=lambda torch, x, w: torch.nn.functional.linear(x, w),
    ),
    OpSpec(
        "linear_batched",
        lambda lib, x, w, b: Linear.apply(x, w, b),
        [(2, 5, 3), (4, 3), (4,)],
        torch_op=lambda torch, x, w, b: torch.nn.functional.linear(x, w, b),
    ),
]


test_finite_differences, test_matches_torch, test_backward_is_linear = enroll(SPECS)


def test_matmul_inner_dimension_mismatch_names_op_and_shapes():
    with pytest.raises(gn.GlassnetError, match=r"matmul: inner dimensions differ: \(2, 3\) @ \(4, 5\)"):
        gn.ones(2, 3) @ gn.ones(4, 5)
    with pytest.raises(gn.GlassnetError, match=r"matmul: inner dimensions differ: \(3,\) @ \(2,\)"):
        gn.ones(3) @ gn.ones(2)


def test_matmul_of_a_scalar_is_an_error():
    with pytest.raises(gn.GlassnetError, match=r"matmul: both operands need at least one dimension"):
        gn.tensor(2.0) @ gn.ones(3)


def test_matmul_batch_mismatch_names_op():
    with pytest.raises(gn.GlassnetError, match=r"MatMul.*\(2, 3, 4\), \(3, 4, 5\)"):
        gn.ones(2, 3, 4) @ gn.ones(3, 4, 5)


def test_matmul_float32_with_float64_is_an_error():
    with pytest.raises(TypeError, match=r"matmul: dtype mismatch: float32 \(2, 3\) and float64 \(3, 2\)"):
        gn.ones(2, 3) @ gn.ones(3, 2, dtype=gn.float64)


def test_ndarray_matmul_tensor():
    w = gn.randn(3, 2, requires_grad=True)
    out = np.ones((4, 3), dtype=np.float32) @ w
    assert isinstance(out, gn.Tensor) and out.shape == (4, 2)
    out.sum().backward()
    np.testing.assert_allclose(w.grad.data, np.full((3, 2), 4.0))
