"""BatchNorm primitive: finite differences, PyTorch oracle, running statistics over several steps, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import glassnet as gn
from glassnet.ops.norm import BatchNorm
from tests.helpers import check_grad

SHAPES = [(5, 3), (4, 3, 6), (3, 2, 4, 5)]

pytestmark = pytest.mark.usefixtures("kernel_path")  # the NumPy path and the compiled kernels (the C extension)


def bn(training, affine=True, momentum=0.1, eps=1e-5):
    """fn(x, weight, bias) or fn(x) running BatchNorm with fixed running statistics (eval) or none."""

    def fn(x, *params):
        C = x.shape[1]
        running = {}
        if not training:
            rng = np.random.default_rng(7)
            running = dict(running_mean=rng.standard_normal(C), running_var=rng.uniform(0.5, 2.0, C))
            running = {k: v.astype(x.dtype) for k, v in running.items()}
        return BatchNorm.apply(x, *params, training=training, momentum=momentum, eps=eps, **running)

    return fn


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_finite_differences(shape, training, affine):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape) * 2 + 0.5
    params = [rng.standard_normal(shape[1]), rng.standard_normal(shape[1])] if affine else []
    check_grad(bn(training, affine), x, *params, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-4)])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("affine", [True, False])
def test_training_steps_then_eval_match_torch(shape, affine, dtype, tol, torch):
    """Outputs, all gradients and the running statistics after 3 training steps, then eval, as PyTorch."""
    rng = np.random.default_rng(1)
    C = shape[1]
    weight, bias = rng.standard_normal(C).astype(dtype), rng.standard_normal(C).astype(dtype)
    running_mean, running_var = np.zeros(C, dtype), np.ones(C, dtype)
    t_mean = torch.zeros(C, dtype=torch.float64 if dtype == np.float64 else torch.float32)
    t_var = torch.ones_like(t_mean)
    for step in range(4):
        training = step < 3
        x = (rng.standard_normal(shape) * (step + 1) + step).astype(dtype)
        grad_out = rng.standard_normal(shape).astype(dtype)
        leaves = [gn.tensor(a, requires_grad=True) for a in ([x, weight, bias] if affine else [x])]
        out = BatchNorm.apply(
            *leaves, running_mean=running_mean, running_var=running_var, training=training, momentum=0.3
        )
        out.backward(gn.tensor(grad_out))
        t_leaves = [torch.tensor(a, requires_grad=True) for a in ([x, weight, bias] if affine else [x])]
        t_params = t_leaves[1:] if affine else [None, None]
        t_out = torch.nn.functional.batch_norm(t_leaves[0], t_mean, t_var, *t_params, training=training, momentum=0.3)
        t_out.backward(torch.tensor(grad_out))
        assert out.dtype == dtype and all(leaf.grad.dtype == dtype for leaf in leaves)
        np.testing.assert_allclose(out.data, t_out.detach().numpy(), atol=tol, rtol=tol, err_msg=f"step {step}")
        for i, (leaf, t_leaf) in enumerate(zip(leaves, t_leaves)):
            np.testing.assert_allclose(leaf.grad.data, t_leaf.grad.numpy(), atol=tol, rtol=tol, err_msg=f"grad {i}")
        np.testing.assert_allclose(running_mean, t_mean.numpy(), atol=tol, rtol=tol)
        np.testing.assert_allclose(running_var, t_var.numpy(), atol=tol, rtol=tol)
    assert running_mean.dtype == running_var.dtype == dtype


@pytest.mark.parametrize("shape", [(64, 8, 14, 14), (64, 16, 5, 5)])  # long rows (batched dot) and short (einsum)
def test_float32_large_offset_input_matches_torch(shape, torch):
    """Sums over 12,544 or 1,600 float32 values per channel, mean far from 0: the statistics stay accurate."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(shape) * 2 + 30).astype(np.float32)
    grad_out = rng.standard_normal(shape).astype(np.float32)
    C = shape[1]
    weight, bias = rng.standard_normal(C).astype(np.float32), rng.standard_normal(C).astype(np.float32)
    running_mean, running_var = np.zeros(C, np.float32), np.ones(C, np.float32)
    leaves = [gn.tensor(a, requires_grad=True) for a in (x, weight, bias)]
    out = BatchNorm.apply(*leaves, running_mean=running_mean, running_var=running_var, training=True)
    out.backward(gn.tensor(grad_out))
    t_leaves = [torch.tensor(a, requires_grad=True) for a in (x, weight, bias)]
    t_mean, t_var = torch.zeros(C), torch.ones(C)
    t_out = torch.nn.functional.batch_norm(t_leaves[0], t_mean, t_var, *t_leaves[1:], training=True)
    t_out.backward(torch.tensor(grad_out))
    np.testing.assert_allclose(out.data, t_out.detach().numpy(), atol=1e-4, rtol=1e-4)
    for leaf, t_leaf in zip(leaves, t_leaves):
        assert leaf.grad.dtype == np.float32
        np.testing.assert_allclose(leaf.grad.data, t_leaf.grad.numpy(), atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(running_mean, t_mean.numpy(), rtol=1e-5)
    np.testing.assert_allclose(running_var, t_var.numpy(), rtol=1e-4)


def test_input_changed_in_place_before_backward_is_an_error():
    """Backward recomputes the normalised input from the input, so an in-place change must be caught."""
    x = gn.randn(4, 3, 5, requires_grad=True)
    h = x * 1.0
    out = BatchNorm.apply(h, training=True)
    with gn.no_grad():
        h.add_(1.0)
    with pytest.raises(RuntimeError, match=r"BatchNorm.backward: input 0 of shape \(4, 3, 5\) was modified in place"):
        out.sum().backward()


def test_no_running_statistics_in_training_uses_batch_statistics():
    x = gn.tensor(np.array([[1.0, 10.0], [3.0, 30.0]]), requires_grad=True)
    out = BatchNorm.apply(x, training=True, eps=0.0)
    np.testing.assert_allclose(out.data, [[-1.0, -1.0], [1.0, 1.0]])


def test_eval_does_not_change_running_statistics():
    mean, var = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    BatchNorm.apply(gn.randn(4, 2, dtype=gn.float64), running_mean=mean, running_var=var, training=False)
    np.testing.assert_array_equal(mean, [1.0, 2.0])
    np.testing.assert_array_equal(var, [3.0, 4.0])


def test_output_does_not_alias_saved_state_without_affine():
    x = gn.randn(4, 3, requires_grad=True)
    out = BatchNorm.apply(x, training=True)
    expected = out.data.copy()
    out.backward(gn.ones(4, 3))
    grad_before = x.grad.data.copy()
    out.data += 100.0  # changing the output afterwards leaves the saved normalised input alone
    x.grad = None
    out2 = BatchNorm.apply(x, training=True)
    out2.backward(gn.ones(4, 3))
    np.testing.assert_allclose(out2.data, expected)
    np.testing.assert_allclose(x.grad.data, grad_before, atol=1e-6)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31), alpha=st.floats(-2, 2), beta=st.floats(-2, 2), training=st.booleans())
def test_backward_is_linear(seed, alpha, beta, training):
    """Gradients have their inputs' shapes and are linear in grad_out."""
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((4, 3, 5)), rng.standard_normal(3), rng.standard_normal(3)]
    g1, g2 = rng.standard_normal((4, 3, 5)), rng.standard_normal((4, 3, 5))

    def grads(grad_out):
        leaves = [gn.tensor(a, requires_grad=True) for a in arrays]
        bn(training)(*leaves).backward(gn.tensor(grad_out))
        return [leaf.grad.data for leaf in leaves]

    for a, d1, d2, mix in zip(arrays, grads(g1), grads(g2), grads(alpha * g1 + beta * g2)):
        assert mix.shape == a.shape
        np.testing.assert_allclose(mix, alpha * d1 + beta * d2, atol=1e-9, rtol=1e-7)


@pytest.mark.parametrize("shape", [(1, 3), (1, 3, 1)])
def test_single_value_per_channel_in_training_is_an_error(shape):
    with pytest.raises(gn.GlassnetError, match=r"batch_norm: expected more than 1 value per channel when training"):
        BatchNorm.apply(gn.zeros(*shape), training=True)
    BatchNorm.apply(gn.zeros(*shape), running_mean=np.zeros(3, np.float32), running_var=np.ones(3, np.float32))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: BatchNorm.apply(gn.zeros(4, 3), gn.ones(3), training=True), r"pass both weight and bias"),
        (lambda: BatchNorm.apply(gn.zeros(4, 3), gn.ones(2), gn.zeros(2)), r"weight of shape \(3,\).*got \(2,\)"),
        (
            lambda: BatchNorm.apply(gn.zeros(4, 3), running_mean=np.zeros(4), running_var=np.ones(3), training=True),
            r"running_mean of shape \(3,\) for input \(4, 3\), got \(4,\)",
        ),
        (lambda: BatchNorm.apply(gn.zeros(4, 3), training=False), r"running_mean and running_var are required"),
        (lambda: BatchNorm.apply(gn.zeros(4, 3), training=True, momentum=None), r"momentum must be a float"),
        (lambda: BatchNorm.apply(gn.zeros(4), training=True), r"at least 2 dimensions, got \(4,\)"),
    ],
)
def test_bad_input_is_named(make, match):
    with pytest.raises(gn.GlassnetError, match=r"batch_norm: .*" + match):
        make()


@pytest.mark.parametrize("shape", [(0, 3, 4, 4), (4, 3, 0)])
def test_eval_on_an_empty_input_gives_zero_gradients(shape):
    bn = gn.nn.BatchNorm2d(3) if len(shape) == 4 else gn.nn.BatchNorm1d(3)
    bn.eval()
    x = gn.tensor(np.zeros(shape, np.float32), requires_grad=True)
    out = bn(x)
    out.sum().backward()
    assert out.shape == shape and x.grad.shape == shape
    np.testing.assert_array_equal(bn.weight.grad.numpy(), np.zeros(3, np.float32))
