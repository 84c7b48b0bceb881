"""Fused losses: cross-entropy, NLL and BCE-with-logits against PyTorch, finite differences, extremes, errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import glassnet as gn
from glassnet.ops.loss import BCE, NLL, BCEWithLogits, CrossEntropy
from tests.helpers import check_grad

# (logits shape, target shape): batched, spatial (N, C, d1, d2), unbatched.
LAYOUTS = [((6, 4), (6,)), ((3, 4, 2, 3), (3, 2, 3)), ((5,), ())]
REDUCTIONS = ["mean", "sum", "none"]


def _targets(rng, shape, C, ignore_index):
    t = rng.integers(0, C, shape)
    if ignore_index is not None and t.ndim:
        t.flat[::3] = ignore_index  # some ignored entries
    return t


def _compare(gn_fn, torch_fn, x, grad_rng, torch, dtype, tol):
    gx = gn.tensor(x.astype(dtype), requires_grad=True)
    out = gn_fn(gx)
    grad_out = grad_rng.standard_normal(out.shape).astype(dtype)
    out.backward(gn.tensor(grad_out))
    tx = torch.tensor(x.astype(dtype), requires_grad=True)
    t_out = torch_fn(tx)
    t_out.backward(torch.tensor(grad_out))
    assert out.dtype == gx.grad.dtype == dtype
    np.testing.assert_allclose(out.data, t_out.detach().numpy(), atol=tol, rtol=tol)
    np.testing.assert_allclose(gx.grad.data, tx.grad.numpy(), atol=tol, rtol=tol)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("layout", LAYOUTS, ids=["2d", "spatial", "unbatched"])
def test_cross_entropy_matches_torch(layout, dtype, tol, torch):
    """Every combination of reduction, class weights, ignore_index and label smoothing."""
    shape, t_shape = layout
    C = shape[1] if len(shape) > 1 else shape[0]
    rng = np.random.default_rng(0)
    for reduction, weighted, ignore, smoothing in itertools.product(REDUCTIONS, [False, True], [None, 1], [0.0, 0.2]):
        ignore_index = -100 if ignore is None else ignore
        x = rng.standard_normal(shape) * 3
        target = _targets(rng, t_shape, C, ignore)
        weight = rng.uniform(0.2, 2.0, C) if weighted else None
        options = dict(ignore_index=ignore_index, reduction=reduction, label_smoothing=smoothing)
        _compare(
            lambda gx, target=target, weight=weight, options=options: CrossEntropy.apply(
                gx, target=target, weight=weight, **options
            ),
            lambda tx, target=target, weight=weight, options=options: torch.nn.functional.cross_entropy(
                tx, torch.tensor(target), weight=None if weight is None else torch.tensor(weight, dtype=tx.dtype),
                **options,
            ),
            x, rng, torch, dtype, tol,
        )  # fmt: skip


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-6)])
@pytest.mark.parametrize("layout", LAYOUTS, ids=["2d", "spatial", "unbatched"])
def test_nll_matches_torch(layout, dtype, tol, torch):
    shape, t_shape = layout
    C = shape[1] if len(shape) > 1 else shape[0]
    rng = np.random.default_rng(1)
    for reduction, weighted, ignore in itertools.product(REDUCTIONS, [False, True], [None, 2]):
        x = rng.standard_normal(shape)
        target = _targets(rng, t_shape, C, ignore)
        weight = rng.uniform(0.2, 2.0, C) if weighted else None
        options = dict(ignore_index=-100 if ignore is None else ignore, reduction=reduction)
        _compare(
            lambda gx, target=target, weight=weight, options=options: NLL.apply(
                gx, target=target, weight=weight, **options
            ),
            lambda tx, target=target, weight=weight, options=options: torch.nn.functional.nll_loss(
                tx, torch.tensor(target), weight=None if weight is None else torch.tensor(weight, dtype=tx.dtype),
                **options,
            ),
            x, rng, torch, dtype, tol,
        )  # fmt: skip


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_bce_with_logits_matches_torch_including_target_gradient(dtype, tol, torch):
    rng = np.random.default_rng(2)
    for reduction, weighted, pos in itertools.product(REDUCTIONS, [False, True], [False, True]):
        x, y = (rng.standard_normal((4, 3)) * 3).astype(dtype), rng.random((4, 3)).astype(dtype)
        weight = rng.random((1, 3)) if weighted else None
        pos_weight = rng.uniform(0.5, 3.0, 3) if pos else None
        gx, gy = gn.tensor(x, requires_grad=True), gn.tensor(y, requires_grad=True)
        out = BCEWithLogits.apply(gx, gy, weight=weight, pos_weight=pos_weight, reduction=reduction)
        grad_out = rng.standard_normal(out.shape).astype(dtype)
        out.backward(gn.tensor(grad_out))
        tx, ty = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
        t_out = torch.nn.functional.binary_cross_entropy_with_logits(
            tx,
            ty,
            weight=None if weight is None else torch.tensor(weight, dtype=tx.dtype),
            pos_weight=None if pos_weight is None else torch.tensor(pos_weight, dtype=tx.dtype),
            reduction=reduction,
        )
        t_out.backward(torch.tensor(grad_out))
        assert out.dtype == gx.grad.dtype == gy.grad.dtype == dtype
        np.testing.assert_allclose(out.data, t_out.detach().numpy(), atol=tol, rtol=tol)
        np.testing.assert_allclose(gx.grad.data, tx.grad.numpy(), atol=tol, rtol=tol)
        np.testing.assert_allclose(gy.grad.data, ty.grad.numpy(), atol=tol, rtol=tol)


def test_bce_target_without_grad_gets_none():
    x, y = gn.randn(3, 2, requires_grad=True), gn.rand(3, 2)
    BCEWithLogits.apply(x, y).backward()
    assert y.grad is None and x.grad.shape == (3, 2)


@pytest.mark.parametrize(
    "name, fn, shapes",
    [
        (
            "cross_entropy_smoothed_weighted",
            lambda x: CrossEntropy.apply(
                x, target=np.array([0, 2, 1, 2]), weight=np.array([0.5, 2.0, 1.0]), label_smoothing=0.1
            ),
            [(4, 3)],
        ),
        (
            "cross_entropy_spatial_none",
            lambda x: CrossEntropy.apply(x, target=np.array([[1, 0]]), reduction="none"),
            [(1, 3, 2)],
        ),
        ("nll_ignore", lambda x: NLL.apply(x, target=np.array([1, 0, 2]), ignore_index=0), [(3, 3)]),
        ("bce_pos_weight", lambda x, y: BCEWithLogits.apply(x, y, pos_weight=np.array([2.0, 0.5])), [(3, 2), (3, 2)]),
    ],
)
def test_finite_differences(name, fn, shapes):
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(s) if i == 0 else rng.random(s) for i, s in enumerate(shapes)]
    check_grad(fn, *arrays)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_logits_are_finite_and_match_torch(dtype, torch):
    """Logits of +-1e4: no overflow, no NaN, in values or gradients, for both fused losses."""
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4, -1e4]], dtype=dtype)
    target = np.array([1, 0, 2])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        _compare(
            lambda gx: CrossEntropy.apply(gx, target=target, label_smoothing=0.1),
            lambda tx: torch.nn.functional.cross_entropy(tx, torch.tensor(target), label_smoothing=0.1),
            x, np.random.default_rng(0), torch, dtype, 1e-6,
        )  # fmt: skip
        y = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.5], [0.0, 0.0, 1.0]], dtype=dtype)
        gx = gn.tensor(x, requires_grad=True)
        out = BCEWithLogits.apply(gx, gn.tensor(y), pos_weight=np.array([1.0, 2.0, 3.0]))
        out.backward()
        tx = torch.tensor(x, requires_grad=True)
        t_out = torch.nn.functional.binary_cross_entropy_with_logits(
            tx, torch.tensor(y), pos_weight=torch.tensor([1.0, 2.0, 3.0], dtype=tx.dtype)
        )
        t_out.backward()
    assert np.isfinite(out.data) and np.isfinite(gx.grad.data).all()
    np.testing.assert_allclose(out.data, t_out.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(gx.grad.data, tx.grad.numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_mean_with_every_target_ignored_is_nan_with_zero_gradient_as_torch(smoothing, torch):
    x = gn.zeros(2, 3, requires_grad=True)
    out = CrossEntropy.apply(x, target=np.array([-100, -100]), label_smoothing=smoothing)
    out.backward()
    tx = torch.zeros(2, 3, requires_grad=True)
    torch.nn.functional.cross_entropy(tx, torch.tensor([-100, -100]), label_smoothing=smoothing).backward()
    assert np.isnan(out.item())
    np.testing.assert_array_equal(x.grad.data, tx.grad.numpy())


@settings(max_examples=8, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    alpha=st.floats(-2, 2),
    beta=st.floats(-2, 2),
    reduction=st.sampled_from(REDUCTIONS),
    smoothing=st.sampled_from([0.0, 0.3]),
)
def test_cross_entropy_backward_is_linear(seed, alpha, beta, reduction, smoothing):
    rng = np.random.default_rng(seed)
    x, target = rng.standard_normal((4, 2, 3)), rng.integers(0, 2, (4, 3))
    weight = rng.uniform(0.5, 2.0, 2)

    def grad(grad_out):
        gx = gn.tensor(x, requires_grad=True)
        out = CrossEntropy.apply(gx, target=target, weight=weight, reduction=reduction, label_smoothing=smoothing)
        out.backward(gn.tensor(grad_out))
        return gx.grad.data

    shape = (4, 3) if reduction == "none" else ()
    g1, g2 = rng.standard_normal(shape), rng.standard_normal(shape)
    mix = grad(alpha * g1 + beta * g2)
    assert mix.shape == x.shape
    np.testing.assert_allclose(mix, alpha * grad(g1) + beta * grad(g2), atol=1e-9, rtol=1e-7)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31), alpha=st.floats(-2, 2), beta=st.floats(-2, 2), reduction=st.sampled_from(REDUCTIONS))
def test_bce_and_nll_backward_are_linear(seed, alpha, beta, reduction):
    rng = np.random.default_rng(seed)
    x, y, target = rng.standard_normal((5, 3)), rng.random((5, 3)), rng.integers(0, 3, 5)
    shape = (5, 3) if reduction == "none" else ()
    nll_shape = (5,) if reduction == "none" else ()
    for make, out_shape in (
        (lambda gx: BCEWithLogits.apply(gx, gn.tensor(y), reduction=reduction), shape),
        (lambda gx: NLL.apply(gx, target=target, reduction=reduction), nll_shape),
    ):

        def grad(grad_out, make=make):
            gx = gn.tensor(x, requires_grad=True)
            make(gx).backward(gn.tensor(grad_out))
            return gx.grad.data

        g1, g2 = rng.standard_normal(out_shape), rng.standard_normal(out_shape)
        mix = grad(alpha * g1 + beta * g2)
        assert mix.shape == x.shape
        np.testing.assert_allclose(mix, alpha * grad(g1) + beta * grad(g2), atol=1e-9, rtol=1e-7)


@pytest.mark.parametrize(
    "make, match",
    [
        (
            lambda: CrossEntropy.apply(gn.zeros(2, 3), target=np.array([0.0, 1.0], np.float32)),
            r"cross_entropy: expected integer class labels, got float32",
        ),
        (
            lambda: NLL.apply(gn.zeros(2, 3), target=np.array([0.0, 1.0])),
            r"nll_loss: expected integer class labels, got float64",
        ),
        (
            lambda: CrossEntropy.apply(gn.zeros(2, 3), target=np.array([0, 7])),
            r"cross_entropy: target label 7 is out of range for 3 classes",
        ),
        (
            lambda: NLL.apply(gn.zeros(2, 3), target=np.array([-1, 0])),
            r"nll_loss: target label -1 is out of range for 3 classes",
        ),
        (
            lambda: CrossEntropy.apply(gn.zeros(2, 3), target=np.array([0, 1, 2])),
            r"cross_entropy: expected target of shape \(2,\) for input of shape \(2, 3\), got target shape \(3,\)",
        ),
        (
            lambda: CrossEntropy.apply(gn.zeros(2, 3), target=np.array([0, 1]), weight=np.ones(4)),
            r"cross_entropy: expected a weight of shape \(3,\) for 3 classes, got \(4,\)",
        ),
        (
            lambda: CrossEntropy.apply(gn.zeros(2, 3), target=np.array([0, 1]), reduction="avg"),
            r"cross_entropy: reduction must be 'mean', 'sum' or 'none', got 'avg'",
        ),
        (
            lambda: CrossEntropy.apply(gn.zeros(2, 3), target=np.array([0, 1]), label_smoothing=1.5),
            r"cross_entropy: label_smoothing must be between 0.0 and 1.0, got 1.5",
        ),
        (
            lambda: BCEWithLogits.apply(gn.zeros(2, 3), gn.zeros(3, 2)),
            r"binary_cross_entropy_with_logits: target size \(3, 2\) must be the same as input size \(2, 3\)",
        ),
        (
            lambda: BCEWithLogits.apply(gn.zeros(2, 3), gn.zeros(2, 3), pos_weight=np.ones(2)),
            r"pos_weight of shape \(2,\) does not broadcast to input size \(2, 3\)",
        ),
        (
            lambda: BCE.apply(gn.full((2, 3), 0.5), gn.zeros(2, 3), weight=np.ones(2)),
            r"binary_cross_entropy: weight of shape \(2,\) does not broadcast to input size \(2, 3\)",
        ),
        (
            lambda: BCE.apply(gn.full((2, 3), 0.5), gn.zeros(3, 2)),
            r"binary_cross_entropy: target size \(3, 2\) must be the same as input size \(2, 3\)",
        ),
    ],
)
def test_bad_input_is_named(make, match):
    with pytest.raises(gn.GlassnetError, match=match):
        make()
