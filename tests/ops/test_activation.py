"""Activations: relu, leaky_relu, sigmoid, tanh, gelu, softmax, log_softmax, and their numerical stability."""

from __future__ import annotations

import math

import numpy as np
import pytest

import glassnet as gn
from glassnet.ops import GELU, LogSoftmax, Softmax
from glassnet.ops.activation import erf_array, normal_cdf_array
from tests.helpers import OpSpec, enroll

SPECS = [
    OpSpec("relu", lambda lib, x: x.relu(), [(3, 4)], domain="away_from_zero"),
    OpSpec("relu_large", lambda lib, x: x.relu(), [(300,)], domain="away_from_zero"),  # the np.maximum path
    OpSpec(
        "leaky_relu",
        lambda lib, x: x.leaky_relu(0.2),
        [(3, 4)],
        domain="away_from_zero",
        torch_op=lambda torch, x: torch.nn.functional.leaky_relu(x, 0.2),
    ),
    OpSpec(
        "leaky_relu_default_slope",
        lambda lib, x: x.leaky_relu(),
        [(6,)],
        domain="away_from_zero",
        torch_op=lambda torch, x: torch.nn.functional.leaky_relu(x),
    ),
    OpSpec("sigmoid", lambda lib, x: x.sigmoid(), [(3, 4)]),
    OpSpec("tanh", lambda lib, x: x.tanh(), [(3, 4)]),
    OpSpec(
        "gelu",
        lambda lib, x: GELU.apply(x),
        [(3, 4)],
        torch_op=lambda torch, x: torch.nn.functional.gelu(x),
    ),
    OpSpec(
        "gelu_tanh",
        lambda lib, x: GELU.apply(x, approximate="tanh"),
        [(3, 4)],
        torch_op=lambda torch, x: torch.nn.functional.gelu(x, approximate="tanh"),
    ),
    OpSpec(
        "gelu_0d",
        lambda lib, x: GELU.apply(x),
        [()],
        torch_op=lambda torch, x: torch.nn.functional.gelu(x),
    ),
    OpSpec("sigmoid_0d", lambda lib, x: x.sigmoid(), [()]),
    OpSpec("softmax_last", lambda lib, x: x.softmax(dim=-1), [(3, 5)]),
    OpSpec("softmax_dim0", lambda lib, x: x.softmax(0), [(3, 5)]),
    OpSpec("softmax_3d", lambda lib, x: x.softmax(dim=1), [(2, 3, 4)]),
    OpSpec("log_softmax_last", lambda lib, x: x.log_softmax(dim=-1), [(3, 5)]),
    OpSpec("log_softmax_3d", lambda lib, x: x.log_softmax(dim=1), [(2, 3, 4)]),
    OpSpec("softmax_of_scaled_logits", lambda lib, x: (x * 30).softmax(dim=1), [(2, 4)], atol=1e-5),
]


test_finite_differences, test_matches_torch, test_backward_is_linear = enroll(SPECS)


EXTREME = np.array([[1e4, -1e4, 0.0, 3.0], [-1e4, -1e4, -1e4, -1e4], [1e4, 1e4, -2.0, 1e4]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "name, fn",
    [
        ("sigmoid", lambda lib, x: x.sigmoid()),
        ("tanh", lambda lib, x: x.tanh()),
        ("softmax", lambda lib, x: x.softmax(dim=1)),
        ("log_softmax", lambda lib, x: x.log_softmax(dim=1)),
        ("softmax_dim0", lambda lib, x: x.softmax(dim=0)),
        ("log_softmax_dim0", lambda lib, x: x.log_softmax(dim=0)),
    ],
)
def test_extreme_logits_are_finite_and_match_torch(name, fn, dtype, torch):
    """Logits of +-1e4 neither overflow nor give NaN, in values or gradients; PyTorch agrees."""
    array = EXTREME.astype(dtype)
    grad_out = np.random.default_rng(0).standard_normal(array.shape).astype(dtype)
    x = gn.tensor(array, requires_grad=True)
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # underflow to 0 is fine
        out = fn(gn, x)
        out.backward(gn.tensor(grad_out))
    tx = torch.tensor(array, requires_grad=True)
    torch_out = fn(torch, tx)
    torch_out.backward(torch.tensor(grad_out))
    assert np.isfinite(out.data).all() and np.isfinite(x.grad.data).all()
    np.testing.assert_allclose(out.data, torch_out.detach().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_softmax_rows_sum_to_one_and_log_softmax_is_its_log():
    x = gn.randn(4, 7, dtype=gn.float64) * 10
    probabilities = x.softmax(dim=1)
    np.testing.assert_allclose(probabilities.sum(dim=1).data, np.ones(4))
    np.testing.assert_allclose(x.log_softmax(dim=1).data, np.log(probabilities.data))


def test_softmax_dim_out_of_range_names_op():
    with pytest.raises(IndexError, match=r"softmax: dim 2 is out of range for a tensor with 2 dimensions"):
        gn.ones(2, 3).softmax(dim=2)
    with pytest.raises(IndexError, match=r"log_softmax: dim -3"):
        gn.ones(2, 3).log_softmax(dim=-3)


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(gn.GlassnetError, match=r"GELU.*approximate must be 'none' or 'tanh', got 'fast'"):
        GELU.apply(gn.ones(3), approximate="fast")


def test_softmax_and_log_softmax_are_primitives():
    """Both are single fused nodes (numerical stability), not a composition of exp/sum/div."""
    x = gn.randn(2, 3, requires_grad=True)
    assert isinstance(x.softmax(1).grad_fn, Softmax)
    assert isinstance(x.log_softmax(1).grad_fn, LogSoftmax)


@pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-15), (np.float32, 3e-7)])
def test_erf_matches_math_erf(dtype, tolerance):
    grid = np.concatenate([np.linspace(-9, 9, 20_001), [0.0, 1.0, -1.0, 1e-30, 40.0, -40.0]]).astype(dtype)
    expected = np.array([math.erf(v) for v in grid.astype(np.float64)])
    result = erf_array(grid)
    assert result.dtype == dtype
    np.testing.assert_allclose(result, expected, rtol=0, atol=tolerance)
    np.testing.assert_array_equal(erf_array(np.array([np.inf, -np.inf], dtype=dtype)), [1.0, -1.0])


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_of_extreme_inputs_matches_torch(approximate, torch):
    array = np.array([-1e4, -30.0, -5.0, 5.0, 30.0, 1e4], dtype=np.float32)
    x = gn.tensor(array, requires_grad=True)
    GELU.apply(x, approximate=approximate).sum().backward()
    tx = torch.tensor(array, requires_grad=True)
    torch_out = torch.nn.functional.gelu(tx, approximate=approximate)
    torch_out.sum().backward()
    # atol: in float32 torch's 0.5 * (1 + erf(x / sqrt 2)) cancels for x = -5 (glassnet's tail does not)
    np.testing.assert_allclose(
        GELU.apply(gn.tensor(array), approximate=approximate).data, torch_out.detach().numpy(), atol=5e-7
    )
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), atol=1e-6)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 5e-14), (np.float32, 1e-5)])
def test_normal_cdf_keeps_relative_precision_in_the_left_tail(dtype, rtol):
    grid = np.linspace(-11, 8, 4001).astype(dtype)
    expected = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in grid.astype(np.float64)])
    result = normal_cdf_array(grid)
    assert result.dtype == dtype
    np.testing.assert_allclose(result, expected, rtol=rtol, atol=0)
    assert normal_cdf_array(np.array(-1e4, dtype=dtype)) == 0 and normal_cdf_array(np.array(1e4, dtype=dtype)) == 1
