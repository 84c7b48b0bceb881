"""The speed paths of the core ops and engine give the same results as the general paths they skip.

Each fast path (an input gradient that is not computed, a specialised loss, an array adopted without
a copy) is checked against the general computation on the same values.
"""

from __future__ import annotations

import weakref

import numpy as np
import pytest

import glassnet as gn
from glassnet.ops.elementwise import Div, Mul
from glassnet.ops.linalg import Linear, MatMul


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("x_shape", [(5, 4), (2, 3, 4)])
def test_linear_skips_the_input_gradient_only_when_the_input_needs_none(x_shape):
    x_data, w_data, b_data, g = _rand(*x_shape), _rand(3, 4, seed=1), _rand(3, seed=2), _rand(*x_shape[:-1], 3, seed=3)
    grads = {}
    for x_requires in (True, False):
        x = gn.tensor(x_data, requires_grad=x_requires)
        w = gn.tensor(w_data, requires_grad=True)
        b = gn.tensor(b_data, requires_grad=True)
        out = Linear.apply(x, w, b)
        grad_x, grad_w, grad_b = out._ctx.backward(g)
        assert (grad_x is None) == (not x_requires)
        grads[x_requires] = grad_w, grad_b
    np.testing.assert_array_equal(grads[True][0], grads[False][0])
    np.testing.assert_array_equal(grads[True][1], grads[False][1])
    np.testing.assert_allclose(grads[True][0], g.reshape(-1, 3).T @ x_data.reshape(-1, 4))


def test_linear_with_a_frozen_weight_and_bias_gives_only_the_input_gradient():
    x = gn.tensor(_rand(5, 4), requires_grad=True)
    w, b = gn.tensor(_rand(3, 4, seed=1)), gn.tensor(_rand(3, seed=2))
    out = Linear.apply(x, w, b)
    grad_x, grad_w, grad_b = out._ctx.backward(np.ones((5, 3)))
    assert grad_w is None and grad_b is None
    np.testing.assert_allclose(grad_x, np.ones((5, 3)) @ w.data)


@pytest.mark.parametrize("op", [MatMul, Mul, Div])
@pytest.mark.parametrize("which", [0, 1])
def test_binary_ops_skip_the_gradient_of_a_constant_operand(op, which):
    shapes = ((3, 4), (4, 2)) if op is MatMul else ((3, 4), (3, 4))
    arrays = [_rand(*shapes[0]), np.abs(_rand(*shapes[1], seed=1)) + 0.5]
    g = _rand(3, 2 if op is MatMul else 4, seed=2)
    full = op.apply(*(gn.tensor(a, requires_grad=True) for a in arrays))._ctx.backward(g)
    inputs = [gn.tensor(a, requires_grad=(i != which)) for i, a in enumerate(arrays)]
    partial = op.apply(*inputs)._ctx.backward(g)
    assert partial[which] is None
    np.testing.assert_array_equal(partial[1 - which], full[1 - which])


def test_leaf_gradients_adopt_the_arrays_backward_returns(monkeypatch):
    """No defensive copy: each Linear's weight and bias gradient is the array its backward made."""
    returned = []
    original = Linear.backward

    def recording_backward(self, grad_out):
        grads = original(self, grad_out)
        returned.append([None if g is None else weakref.ref(g) for g in grads])  # weak: no refcount
        return grads

    monkeypatch.setattr(Linear, "backward", recording_backward)
    model = gn.nn.Sequential(gn.nn.Linear(6, 5), gn.nn.ReLU(), gn.nn.Linear(5, 3))
    x = gn.tensor(_rand(4, 6).astype(np.float32))
    gn.nn.functional.cross_entropy(model(x), np.array([0, 1, 2, 0])).backward()
    (last_x, last_w, last_b), (first_x, first_w, first_b) = returned
    assert first_x is None
    assert model[2].weight.grad.data is last_w() and model[2].bias.grad.data is last_b()
    assert model[0].weight.grad.data is first_w() and model[0].bias.grad.data is first_b()


def test_a_gradient_kept_by_a_hook_is_not_adopted_by_the_leaf():
    w = gn.tensor(_rand(3, 4), requires_grad=True)
    kept = []
    w.register_hook(lambda grad: kept.append(grad.data))
    (gn.tensor(_rand(2, 3)) @ w).sum().backward()
    before = kept[0].copy()
    with gn.no_grad():
        w.grad.mul_(0)
    np.testing.assert_array_equal(kept[0], before)
    assert not np.shares_memory(kept[0], w.grad.data)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_plain_cross_entropy_equals_the_general_path(reduction, dtype):
    """Unit class weights take the general path and must give bit-identical values and gradients."""
    logits_data = (_rand(16, 10) * 3).astype(dtype)
    labels = np.random.default_rng(1).integers(0, 10, size=16)
    results = []
    for weight in (None, np.ones(10, dtype=dtype)):
        logits = gn.tensor(logits_data, requires_grad=True)
        loss = gn.nn.functional.cross_entropy(logits, labels, weight=weight, reduction=reduction)
        assert loss._ctx.plain == (weight is None)
        (loss * 3.0).backward()
        results.append((loss.data, logits.grad.data))
    assert results[0][0].dtype == results[1][0].dtype == dtype
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


@pytest.mark.parametrize(
    "labels, ignore_index",
    [([0, 1, 2, 3], 2), ([0, 1, -100, 3], -100), ([0, 1, 2, 7], -100)],
    ids=["ignore_index_in_range", "ignored_label", "out_of_range"],
)
def test_cross_entropy_labels_the_plain_path_cannot_take_go_the_general_way(labels, ignore_index):
    logits = gn.tensor(_rand(4, 5), requires_grad=True)
    labels = np.array(labels)
    if labels.max() >= 5:
        with pytest.raises(gn.autograd.GlassnetError, match="out of range"):
            gn.nn.functional.cross_entropy(logits, labels, ignore_index=ignore_index)
        return
    loss = gn.nn.functional.cross_entropy(logits, labels, ignore_index=ignore_index)
    assert not loss._ctx.plain
    keep = labels != ignore_index
    logp = logits.data - np.log(np.exp(logits.data).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(loss.item(), -logp[keep.nonzero()[0], labels[keep]].mean())


@pytest.mark.parametrize(
    "batch, x_order", [(3, "C"), (3, "F"), (40, "C"), (40, "F")], ids=["rows_C", "rows_F", "many_C", "many_F"]
)
def test_linear_column_major_route_equals_the_row_major_product(batch, x_order):
    """Small batches and column-major inputs take out^T = W x^T (a BLAS-friendlier GEMM); same values."""
    x_data = np.asarray(_rand(batch, 7), order=x_order)
    w_data, b_data, g = _rand(5, 7, seed=1), _rand(5, seed=2), _rand(batch, 5, seed=3)
    x, w, b = (gn.Tensor(a, requires_grad=True) for a in (x_data, w_data, b_data))  # no copy: layout kept
    out = Linear.apply(x, w, b)
    np.testing.assert_allclose(out.data, x_data @ w_data.T + b_data, rtol=1e-12)
    assert out.data.flags.f_contiguous == (x_order == "F" or batch <= 5)
    out.backward(gn.tensor(g))
    np.testing.assert_allclose(x.grad.data, g @ w_data, rtol=1e-12)
    np.testing.assert_allclose(w.grad.data, g.T @ x_data, rtol=1e-12)
    np.testing.assert_allclose(b.grad.data, g.sum(axis=0), rtol=1e-12)
    assert x.grad.data.flags.f_contiguous == (x_order == "F")  # the gradient keeps the input's layout
    assert w.grad.data.flags.c_contiguous  # the optimizer's passes stay in the parameter's layout


def test_mlp_with_column_major_activations_matches_float64_finite_differences():
    model = gn.nn.Sequential(gn.nn.Linear(6, 8), gn.nn.ReLU(), gn.nn.Linear(8, 9), gn.nn.Tanh(), gn.nn.Linear(9, 3))
    model.double()
    x, labels = gn.tensor(_rand(4, 6)), np.array([0, 2, 1, 2])
    gn.nn.functional.cross_entropy(model(x), labels).backward()
    for layer in (model[0], model[2], model[4]):
        w = layer.weight.data
        numerical = np.zeros_like(w)
        for index in np.ndindex(w.shape):
            old = w[index]
            values = []
            for value in (old + 1e-6, old - 1e-6):
                w[index] = value
                with gn.no_grad():
                    values.append(gn.nn.functional.cross_entropy(model(x), labels).item())
            w[index] = old
            numerical[index] = (values[0] - values[1]) / 2e-6
        np.testing.assert_allclose(layer.weight.grad.data, numerical, rtol=1e-5, atol=1e-8)


def test_amax_and_amin_split_ties_like_torch(torch):
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]])
    for dim, keepdim in [(0, False), (1, True), ((0, 1), False), (None, False)]:
        for name in ("amax", "amin"):
            a, t = gn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
            out = getattr(a, name)(dim, keepdim=keepdim)
            expected = getattr(t, name)(() if dim is None else dim, keepdim=keepdim)
            weights = np.arange(1.0, expected.numel() + 1).reshape(tuple(expected.shape))
            out.backward(gn.tensor(weights))
            expected.backward(torch.tensor(weights))
            np.testing.assert_allclose(out.data, expected.detach().numpy())
            np.testing.assert_allclose(a.grad.data, t.grad.numpy(), err_msg=f"{name}({dim}, keepdim={keepdim})")


def test_mean_of_an_integer_tensor_is_an_error():
    with pytest.raises(TypeError, match="floating point"):
        gn.tensor([1, 2]).mean()


def test_bce_of_saturated_probabilities_has_finite_gradients_like_torch(torch):
    logits = np.array([20.0, -20.0, 0.5], dtype=np.float32)
    target = np.array([1.0, 0.0, 1.0], dtype=np.float32)
    z, tz = gn.tensor(logits, requires_grad=True), torch.tensor(logits, requires_grad=True)
    gn.nn.BCELoss()(z.sigmoid(), gn.tensor(target)).backward()
    torch.nn.BCELoss()(tz.sigmoid(), torch.tensor(target)).backward()
    np.testing.assert_allclose(z.grad.data, tz.grad.numpy(), rtol=1e-5, atol=1e-12)
    p, tp = gn.tensor([0.0, 1.0, 0.3], requires_grad=True), torch.tensor([0.0, 1.0, 0.3], requires_grad=True)
    y = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    loss = gn.nn.functional.binary_cross_entropy(p, gn.tensor(y), reduction="sum")
    expected = torch.nn.functional.binary_cross_entropy(tp, torch.tensor(y), reduction="sum")
    loss.backward()
    expected.backward()
    np.testing.assert_allclose(loss.item(), expected.item(), rtol=1e-6)
    np.testing.assert_allclose(p.grad.data, tp.grad.numpy(), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("shape", [(3, 5), (40, 70), (2, 3, 20, 20)])
@pytest.mark.parametrize("order", ["C", "F", "strided"])
def test_relu_fast_paths_equal_the_general_maximum_and_never_modify_the_input(dtype, shape, order):
    from glassnet.ops.activation import _zero_buffers

    data = (_rand(*shape) * 10).astype(dtype)
    data.flat[:3] = [0, -1, 2]
    if dtype != np.int64:
        data.flat[3:5] = [np.nan, -0.0]
    data = np.asfortranarray(data) if order == "F" else data[..., ::2] if order == "strided" else data
    before = data.copy()
    expected = np.maximum(data, 0)
    for grad in (False, True):
        x = gn.tensor(data, requires_grad=grad and dtype != np.int64)
        with gn.set_grad_enabled(grad):
            out = gn.nn.functional.relu(x)
        np.testing.assert_array_equal(out.data, expected)
        assert out.dtype == x.dtype and out.data is not x.data
        np.testing.assert_array_equal(x.data, before)  # the input is never modified
        if x.requires_grad:
            out.sum().backward()
            np.testing.assert_array_equal(x.grad.data, (before > 0).astype(dtype))
    for zeros in _zero_buffers.values():  # the shared zeros stay zero and read-only
        assert not zeros.flags.writeable and not zeros.any()
