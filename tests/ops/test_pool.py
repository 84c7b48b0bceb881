"""MaxPool2d and AvgPool2d primitives: finite differences, PyTorch oracle, ties, NaN, errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import glassnet as gn
from glassnet.ops.pool import AvgPool2d, MaxPool2d
from tests.helpers import OpSpec, check_against_torch, check_backward_linear, check_finite_differences

# Every test here runs on the pure NumPy kernels and on the compiled ones (the C extension).
pytestmark = pytest.mark.usefixtures("kernel_path")


def max_spec(name, shape, kernel_size, stride=None, padding=(0, 0), dilation=(1, 1)):
    options = dict(kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation)
    return OpSpec(
        name,
        lambda lib, x: MaxPool2d.apply(x, **options),
        [shape],
        torch_op=lambda torch, x: torch.nn.functional.max_pool2d(x, **options),
    )


def avg_spec(name, shape, kernel_size, stride=None, padding=(0, 0), **extra):
    options = dict(kernel_size=kernel_size, stride=stride, padding=padding, **extra)
    return OpSpec(
        name,
        lambda lib, x: AvgPool2d.apply(x, **options),
        [shape],
        torch_op=lambda torch, x: torch.nn.functional.avg_pool2d(x, **options),
    )


SPECS = [
    max_spec("max_2x2_tiling", (2, 3, 4, 6), (2, 2), (2, 2)),
    max_spec("max_2x2_odd_size", (2, 2, 5, 7), (2, 2), (2, 2)),
    max_spec("max_3x3_stride2_overlap", (1, 2, 7, 7), (3, 3), (2, 2)),
    max_spec("max_non_square_pad", (2, 2, 6, 7), (3, 2), (2, 1), padding=(1, 1)),
    max_spec("max_stride_defaults_to_kernel", (1, 2, 6, 6), (3, 3)),
    max_spec("max_dilation", (1, 2, 8, 8), (2, 3), (1, 2), padding=(1, 1), dilation=(2, 1)),
    max_spec("max_unbatched", (2, 6, 6), (2, 2), (2, 2)),
    avg_spec("avg_2x2_tiling", (2, 3, 4, 6), (2, 2), (2, 2)),
    avg_spec("avg_overlap_pad", (2, 2, 6, 7), (3, 2), (2, 1), padding=(1, 1)),
    avg_spec("avg_exclude_pad", (1, 2, 5, 5), (3, 3), (2, 2), padding=(1, 1), count_include_pad=False),
    avg_spec("avg_divisor_override", (1, 2, 4, 4), (2, 2), (1, 1), divisor_override=3),
    avg_spec("avg_unbatched", (2, 5, 6), (2, 3), (2, 3)),
]


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_finite_differences(spec):
    # Random inputs: no ties within a window, so max pooling is differentiable there.
    check_finite_differences(spec)


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_matches_torch_float64_tightly(spec, torch):
    check_against_torch(dataclasses.replace(spec, atol=1e-12, rtol=1e-12), torch, np.float64)


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_matches_torch_float32(spec, torch):
    check_against_torch(spec, torch, np.float32)


@pytest.mark.parametrize("spec", [SPECS[0], SPECS[3], SPECS[7], SPECS[8]], ids=str)
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31), alpha=st.floats(-2, 2), beta=st.floats(-2, 2))
def test_backward_is_linear(spec, seed, alpha, beta):
    check_backward_linear(spec, seed, alpha, beta)


@pytest.mark.parametrize(
    "kernel_size, stride, padding",
    [((2, 2), (2, 2), (0, 0)), ((3, 3), (1, 1), (1, 1)), ((2, 3), (2, 1), (0, 1))],
)
def test_max_pool_ties_send_the_gradient_to_one_maximum_as_torch(kernel_size, stride, padding, torch):
    """Many equal values: each window's gradient goes to its first maximum, exactly as PyTorch."""
    x = np.random.default_rng(0).integers(0, 3, (2, 2, 6, 7)).astype(np.float64)
    grad_out_shape = torch.nn.functional.max_pool2d(torch.tensor(x), kernel_size, stride, padding).shape
    grad_out = np.random.default_rng(1).standard_normal(grad_out_shape)
    gx = gn.tensor(x, requires_grad=True)
    MaxPool2d.apply(gx, kernel_size=kernel_size, stride=stride, padding=padding).backward(gn.tensor(grad_out))
    tx = torch.tensor(x, requires_grad=True)
    torch.nn.functional.max_pool2d(tx, kernel_size, stride, padding).backward(torch.tensor(grad_out))
    np.testing.assert_allclose(gx.grad.data, tx.grad.numpy(), atol=1e-12)  # overlaps add in another order
    # The gradient is not split among the ties: its total is conserved window by window.
    np.testing.assert_allclose(gx.grad.data.sum(), grad_out.sum())


@pytest.mark.parametrize("kernel_size", [(1, 1), (1, 2), (2, 2), (3, 3), (2, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_disjoint_windows_match_torch_with_ties(kernel_size, dtype, torch):
    """Non-overlapping windows (kernel == stride) on ReLU-like data with many ties and a ragged border."""
    rng = np.random.default_rng(2)
    x = np.maximum(rng.integers(-2, 3, (3, 4, 8, 11)), 0).astype(dtype)  # 8 and 11: leftover rows / columns
    tx = torch.tensor(x, requires_grad=True)
    t_out = torch.nn.functional.max_pool2d(tx, kernel_size)
    grad_out = rng.standard_normal(t_out.shape).astype(dtype)
    t_out.backward(torch.tensor(grad_out))
    gx = gn.tensor(x, requires_grad=True)
    out = MaxPool2d.apply(gx, kernel_size=kernel_size, stride=kernel_size)
    out.backward(gn.tensor(grad_out))
    np.testing.assert_array_equal(out.data, t_out.detach().numpy())
    np.testing.assert_array_equal(gx.grad.data, tx.grad.numpy())
    assert gx.grad.dtype == dtype


def test_max_pool_all_equal_window_gives_all_to_the_first_element():
    x = gn.zeros(1, 1, 2, 2, requires_grad=True)
    MaxPool2d.apply(x, kernel_size=(2, 2), stride=(2, 2)).sum().backward()
    np.testing.assert_array_equal(x.grad.data[0, 0], [[1.0, 0.0], [0.0, 0.0]])


def test_max_pool_propagates_nan_and_routes_its_gradient_to_it(torch):
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    x[0, 0, 1, 0] = np.nan
    gx = gn.tensor(x, requires_grad=True)
    out = MaxPool2d.apply(gx, kernel_size=(2, 2), stride=(2, 2))
    out.sum().backward()
    tx = torch.tensor(x, requires_grad=True)
    torch.nn.functional.max_pool2d(tx, 2).sum().backward()
    assert np.isnan(out.data[0, 0, 0, 0])
    np.testing.assert_array_equal(gx.grad.data, tx.grad.numpy())


def test_infinite_grad_out_stays_in_its_window():
    """A non-finite upstream gradient must not leak NaN (0 * inf) into the other elements."""
    x = gn.tensor(np.arange(16.0).reshape(1, 1, 4, 4), requires_grad=True)
    grad_out = np.array([[[[np.inf, 1.0], [1.0, 1.0]]]])
    MaxPool2d.apply(x, kernel_size=(2, 2), stride=(2, 2)).backward(gn.tensor(grad_out))
    assert np.isinf(x.grad.data[0, 0, 1, 1])
    assert not np.isnan(x.grad.data).any()


def test_padding_is_minus_infinity_for_max_and_zero_for_avg():
    x = gn.full((1, 1, 2, 2), -5.0)
    out = MaxPool2d.apply(x, kernel_size=(2, 2), stride=(1, 1), padding=(1, 1))
    np.testing.assert_array_equal(out.data, np.full((1, 1, 3, 3), -5.0))
    avg = AvgPool2d.apply(x, kernel_size=(2, 2), stride=(1, 1), padding=(1, 1))
    np.testing.assert_allclose(avg.data[0, 0, 0, 0], -5.0 / 4)


def test_float32_end_to_end():
    x = gn.randn(2, 3, 6, 6, requires_grad=True)
    for op in (MaxPool2d, AvgPool2d):
        x.grad = None
        out = op.apply(x, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))
        out.sum().backward()
        assert out.dtype == x.grad.dtype == np.float32


@pytest.mark.parametrize("op, name", [(MaxPool2d, "max_pool2d"), (AvgPool2d, "avg_pool2d")])
@pytest.mark.parametrize(
    "shape, options, match",
    [
        ((1, 1, 4, 4), {"kernel_size": (2, 2), "padding": (2, 0)}, r"padding should be at most half"),
        ((1, 1, 2, 2), {"kernel_size": (3, 3)}, r"too small for kernel_size=\(3, 3\).*\(0, 0\)"),
        ((4, 4), {"kernel_size": (2, 2)}, r"expected a 3-D \(C, H, W\) or 4-D .*got shape \(4, 4\)"),
        ((1, 1, 4, 4), {"kernel_size": (0, 2)}, r"kernel_size, stride and dilation must be positive"),
        ((1, 1, 4, 4), {"kernel_size": "2"}, r"kernel_size must be an int or a pair of ints"),
    ],
)
def test_bad_input_is_named(op, name, shape, options, match):
    with pytest.raises(gn.GlassnetError, match=name + r": .*" + match):
        op.apply(gn.zeros(*shape), **options)


def test_ceil_mode_is_not_implemented():
    with pytest.raises(NotImplementedError, match=r"max_pool2d: ceil_mode=True"):
        MaxPool2d.apply(gn.zeros(1, 1, 5, 5), kernel_size=(2, 2), ceil_mode=True)
