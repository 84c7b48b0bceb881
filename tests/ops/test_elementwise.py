"""Elementwise ops: arithmetic (tensor and scalar operands), exp/log/sqrt/abs, maximum/minimum/clamp/where."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import glassnet as gn
from tests.helpers import OpSpec, enroll

COND = np.random.default_rng(7).random((3, 4)) > 0.5

SPECS = [
    OpSpec("add", lambda lib, a, b: a + b, [(3, 4), (3, 4)]),
    OpSpec("add_broadcast_rank", lambda lib, a, b: a + b, [(2, 3, 4), (4,)]),
    OpSpec("add_broadcast_both", lambda lib, a, b: a + b, [(3, 1), (1, 4)]),
    OpSpec("add_0d_tensor", lambda lib, a, b: a + b, [(), (2, 3)]),
    OpSpec("mul_0d_tensors", lambda lib, a, b: a * b, [(), ()]),
    OpSpec("add_scalar", lambda lib, a: a + 2.5, [(3, 4)]),
    OpSpec("radd_scalar", lambda lib, a: 2.5 + a, [(3, 4)]),
    OpSpec("sub_broadcast", lambda lib, a, b: a - b, [(2, 3), (3,)]),
    OpSpec("sub_scalar", lambda lib, a: a - 1.5, [(5,)]),
    OpSpec("rsub_scalar", lambda lib, a: 1.5 - a, [(5,)]),
    OpSpec("mul_broadcast", lambda lib, a, b: a * b, [(4, 1, 3), (2, 3)]),
    OpSpec("mul_same_tensor", lambda lib, a: a * a, [(3, 4)]),
    OpSpec("mul_scalar", lambda lib, a: a * -3.0, [(3, 4)]),
    OpSpec("rmul_scalar", lambda lib, a: 0.5 * a, [(3, 4)]),
    OpSpec("div_broadcast", lambda lib, a, b: a / b, [(3, 4), (4,)], domain=("real", "away_from_zero")),
    OpSpec("div_scalar", lambda lib, a: a / 4.0, [(3, 4)]),
    OpSpec("rdiv_scalar", lambda lib, a: 2.0 / a, [(3, 4)], domain="away_from_zero"),
    OpSpec("neg", lambda lib, a: -a, [(3, 4)]),
    OpSpec("neg_method", lambda lib, a: a.neg(), [(2, 2)]),
    OpSpec("pow_scalar_2", lambda lib, a: a**2, [(3, 4)]),
    OpSpec("pow_scalar_3", lambda lib, a: a**3, [(3, 4)]),
    OpSpec("pow_scalar_half", lambda lib, a: a**0.5, [(3, 4)], domain="positive"),
    OpSpec("pow_scalar_negative", lambda lib, a: a**-1.5, [(3, 4)], domain="positive"),
    OpSpec("pow_tensor", lambda lib, a, b: a**b, [(3, 4), (4,)], domain=("positive", "real")),
    OpSpec("pow_method", lambda lib, a, b: a.pow(b), [(2, 3), (2, 3)], domain=("positive", "real")),
    OpSpec("rpow_scalar", lambda lib, a: 2.0**a, [(3, 4)]),
    OpSpec("exp", lambda lib, a: a.exp(), [(3, 4)]),
    OpSpec("exp_free", lambda lib, a: lib.exp(a), [(4,)]),
    OpSpec("log", lambda lib, a: a.log(), [(3, 4)], domain="positive"),
    OpSpec("sqrt", lambda lib, a: a.sqrt(), [(3, 4)], domain="positive"),
    OpSpec("abs", lambda lib, a: a.abs(), [(3, 4)], domain="away_from_zero"),
    OpSpec("abs_operator", lambda lib, a: abs(a), [(5,)], domain="away_from_zero"),
    OpSpec("maximum", lambda lib, a, b: lib.maximum(a, b), [(3, 4), (4,)]),
    OpSpec("minimum", lambda lib, a, b: lib.minimum(a, b), [(3, 4), (3, 1)]),
    OpSpec("max_of_two_tensors", lambda lib, a, b: a.max(b), [(3, 4), (3, 4)]),
    OpSpec("clamp_both", lambda lib, a: a.clamp(-0.5, 0.5), [(4, 5)]),
    OpSpec("clamp_min", lambda lib, a: a.clamp(min=0.1), [(4, 5)]),
    OpSpec("clamp_max", lambda lib, a: lib.clamp(a, max=-0.2), [(4, 5)]),
    OpSpec("where", lambda lib, a, b: lib.where(lib.tensor(COND), a, b), [(3, 4), (4,)]),
    OpSpec("where_scalar_other", lambda lib, a: lib.where(lib.tensor(COND), a, 0.0), [(3, 4)]),
    OpSpec("clone", lambda lib, a: a.clone() * 2, [(3, 4)]),
    OpSpec("composite_expression", lambda lib, a, b: (a * a * b * b + a.exp() / (b * b + 1)).sqrt(), [(3,), (2, 3)]),
]


test_finite_differences, test_matches_torch, test_backward_is_linear = enroll(SPECS)


@settings(max_examples=40, deadline=None)
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, max_dims=4, max_side=3), op=st.sampled_from("+-*/"))
def test_binary_broadcasting_gradients_have_input_shapes(shapes, op):
    """Any pair of broadcastable shapes: each gradient of sum(a op b) has its input's shape and value."""
    a_shape, b_shape = shapes.input_shapes
    rng = np.random.default_rng(0)
    a_array = rng.uniform(1, 2, a_shape)
    b_array = rng.uniform(1, 2, b_shape)
    a = gn.tensor(a_array, requires_grad=True)
    b = gn.tensor(b_array, requires_grad=True)
    out = {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b}[op]()
    assert out.shape == shapes.result_shape
    out.sum().backward()
    assert a.grad.shape == a_shape and b.grad.shape == b_shape
    ones = np.ones(shapes.result_shape)
    # d sum(a + b) / da = how many output elements each element of a reached.
    reach_a = np.broadcast_to(ones, shapes.result_shape).sum() / max(a_array.size, 1)
    if op == "+":
        np.testing.assert_allclose(a.grad.data, np.full(a_shape, reach_a))


def test_maximum_and_minimum_split_ties_like_torch(torch):
    a_array = np.array([1.0, 2.0, 3.0])
    b_array = np.array([1.0, 5.0, 3.0])
    for name in ("maximum", "minimum"):
        a, b = gn.tensor(a_array, requires_grad=True), gn.tensor(b_array, requires_grad=True)
        getattr(gn, name)(a, b).sum().backward()
        ta, tb = torch.tensor(a_array, requires_grad=True), torch.tensor(b_array, requires_grad=True)
        getattr(torch, name)(ta, tb).sum().backward()
        np.testing.assert_array_equal(a.grad.data, ta.grad.numpy())
        np.testing.assert_array_equal(b.grad.data, tb.grad.numpy())


def test_kinks_take_torch_subgradients(torch):
    """abs at 0, clamp at its bounds, pow at a zero base: the gradients PyTorch picks."""
    values = np.array([-1.0, 0.0, 0.5, 1.0])
    cases = [
        lambda lib, x: x.abs(),
        lambda lib, x: x.clamp(0.0, 0.5),
        lambda lib, x: x**2,
        lambda lib, x: x.relu(),
    ]
    for fn in cases:
        x = gn.tensor(values, requires_grad=True)
        fn(gn, x).sum().backward()
        tx = torch.tensor(values, requires_grad=True)
        fn(torch, tx).sum().backward()
        np.testing.assert_array_equal(x.grad.data, tx.grad.numpy())
    base, exponent = np.array([0.0, 0.0, 2.0]), np.array([2.0, 0.0, 3.0])
    a, b = gn.tensor(base, requires_grad=True), gn.tensor(exponent, requires_grad=True)
    (a**b).sum().backward()
    ta, tb = torch.tensor(base, requires_grad=True), torch.tensor(exponent, requires_grad=True)
    (ta**tb).sum().backward()
    np.testing.assert_allclose(a.grad.data, ta.grad.numpy())
    np.testing.assert_allclose(b.grad.data, tb.grad.numpy())


def test_comparisons_return_tensors_without_grad():
    a = gn.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = gn.tensor([3.0, 2.0, 1.0], requires_grad=True)
    for result, expected in [
        (a < b, [True, False, False]),
        (a <= b, [True, True, False]),
        (a > b, [False, False, True]),
        (a >= b, [False, True, True]),
        (a == b, [False, True, False]),
        (a != b, [True, False, True]),
        (a > 1.5, [False, True, True]),
    ]:
        assert isinstance(result, gn.Tensor)
        assert not result.requires_grad and result.grad_fn is None
        assert result.dtype == np.bool_
        np.testing.assert_array_equal(result.data, expected)


def test_shape_mismatch_names_op_and_shapes():
    a, b = gn.ones(2, 3), gn.ones(4)
    with pytest.raises(gn.GlassnetError, match=r"Add.*\(2, 3\).*\(4,\)"):
        a + b
    with pytest.raises(gn.GlassnetError, match=r"Mul.*\(2, 3\).*\(4,\)"):
        a * b
    with pytest.raises(gn.GlassnetError, match=r"Maximum.*\(2, 3\).*\(4,\)"):
        gn.maximum(a, b)


def test_float32_with_float64_is_an_error_naming_op_and_shapes():
    a = gn.ones(2, 3)
    b = gn.ones(3, dtype=gn.float64)
    with pytest.raises(TypeError, match=r"add: dtype mismatch: float32 \(2, 3\) and float64 \(3,\)"):
        a + b
    with pytest.raises(TypeError, match=r"mul: dtype mismatch"):
        b * a
    with pytest.raises(TypeError, match=r"where: dtype mismatch"):
        gn.where(gn.tensor([True, False, True]), b, a)


def test_python_and_numpy_scalars_keep_float32():
    a = gn.ones(3)
    for result in (a + 1.5, a * np.float64(2.0), 2**a, a / 3, 1 - a, a**2, a + np.ones(3)):
        assert result.dtype == np.float32
