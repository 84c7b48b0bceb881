"""The autograd core: the backward engine, gradient accumulation, hooks, grad mode, version counters."""

from __future__ import annotations

import weakref

import numpy as np
import pytest

import glassnet as gn
from glassnet.autograd import engine


def test_grad_accumulates_across_backward_calls():
    x = gn.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, [2.0, 4.0, 6.0])
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.data, [5.0, 7.0, 9.0])


def test_a_tensor_used_twice_gets_the_sum_of_both_gradients():
    x = gn.tensor([1.0, -2.0], requires_grad=True)
    (x + x).sum().backward()
    np.testing.assert_allclose(x.grad.data, [2.0, 2.0])


def test_diamond_graph_is_processed_in_topological_order():
    """z = y*y + y with y = 2x: y's node runs once, after both of its consumers sent their gradients."""
    x = gn.tensor([1.0, 3.0], dtype=gn.float64, requires_grad=True)
    y = x * 2
    z = y * y + y
    z.sum().backward()
    np.testing.assert_allclose(x.grad.data, 2 * (2 * y.data + 1))


def test_two_leaves_of_one_add_do_not_share_a_grad_array():
    a = gn.ones(3, requires_grad=True)
    b = gn.ones(3, requires_grad=True)
    c = a + b
    c.backward(gn.ones(3))
    assert not np.shares_memory(a.grad.data, b.grad.data)
    with gn.no_grad():
        a.grad.mul_(5)
    np.testing.assert_array_equal(a.grad.data, [5.0, 5.0, 5.0])
    np.testing.assert_array_equal(b.grad.data, [1.0, 1.0, 1.0])


@pytest.mark.parametrize(
    "make",
    [
        lambda a, b: a + b,
        lambda a, b: (a - b).sum(),
        lambda a, b: a.reshape(3, 1) + b.reshape(3, 1),
        lambda a, b: a.clone() + b.clone(),
        lambda a, b: gn.cat([a, b]),
        lambda a, b: gn.stack([a, b]),
    ],
    ids=["add", "sub_sum", "reshape_add", "clone_add", "cat", "stack"],
)
def test_no_grad_array_is_shared_between_leaves_or_with_the_gradient_passed_in(make):
    a = gn.ones(3, requires_grad=True)
    b = gn.ones(3, requires_grad=True)
    out = make(a, b)
    grad_out = np.ones(out.shape, dtype=np.float32)
    out.backward(grad_out)
    arrays = [a.grad.data, b.grad.data, grad_out]
    for i in range(3):
        for j in range(i + 1, 3):
            assert not np.shares_memory(arrays[i], arrays[j]), (i, j)
    assert a.grad.data.flags.writeable and b.grad.data.flags.writeable


def test_retained_grad_of_a_non_leaf_is_not_shared_with_its_leaf():
    x = gn.ones(3, requires_grad=True)
    y = x.clone()
    y.retain_grad()
    y.backward(gn.ones(3))
    assert not np.shares_memory(x.grad.data, y.grad.data)


def test_retain_graph_allows_a_second_backward():
    x = gn.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.data.copy()
    y.backward()
    np.testing.assert_allclose(x.grad.data, 2 * first)


def test_a_second_backward_without_retain_graph_is_a_clear_error():
    x = gn.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"second time.*retain_graph=True"):
        y.backward()


def test_saved_arrays_are_released_after_backward():
    x = gn.randn(5, requires_grad=True)
    h = x * 3.0
    y = h * h  # Mul saves both inputs' arrays
    saved = weakref.ref(y.grad_fn.a)
    del h  # now only the node holds h's array
    y.sum().backward()
    assert saved() is None
    assert y.grad_fn.released


def test_saved_arrays_are_kept_with_retain_graph():
    x = gn.randn(5, requires_grad=True)
    y = x * x
    y.sum().backward(retain_graph=True)
    assert not y.grad_fn.released
    assert y.grad_fn.a is not None


def test_backward_of_a_non_scalar_without_gradient_is_an_error_naming_the_shape():
    x = gn.ones(2, 3, requires_grad=True)
    with pytest.raises(
        RuntimeError, match=r"gradient can be omitted only for a one-element output, got shape \(2, 3\)"
    ):
        (x * 2).backward()


def test_backward_of_a_one_element_tensor_needs_no_gradient():
    x = gn.ones(1, 1, requires_grad=True)
    (x * 4).backward()
    np.testing.assert_allclose(x.grad.data, [[4.0]])


def test_backward_through_a_tensor_that_needs_no_gradient_is_an_error():
    x = gn.ones(2, 3)
    with pytest.raises(RuntimeError, match=r"this tensor \(shape \(\)\) does not require grad"):
        (x * 2).sum().backward()
    w = gn.ones(2, 3, requires_grad=True)
    with gn.no_grad():
        y = (w * 2).sum()
    with pytest.raises(RuntimeError, match=r"does not require grad.*no_grad"):
        y.backward()


def test_gradient_of_the_wrong_shape_is_an_error():
    x = gn.ones(2, 3, requires_grad=True)
    with pytest.raises(ValueError, match=r"gradient has shape \(3, 2\), but the tensor has shape \(2, 3\)"):
        (x * 2).backward(gn.ones(3, 2))


def test_only_inputs_that_require_grad_get_one():
    x = gn.ones(3, requires_grad=True)
    c = gn.ones(3)
    (x * c).sum().backward()
    assert x.grad is not None and c.grad is None


def test_non_leaf_grad_is_none_unless_retained():
    x = gn.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    z = x * 4
    z.retain_grad()
    (y * z).sum().backward()
    assert y.grad is None
    np.testing.assert_allclose(z.grad.data, y.data)
    np.testing.assert_allclose(x.grad.data, 2 * 12 * x.data)


def test_register_hook_can_replace_the_gradient_and_be_removed():
    x = gn.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    seen = []
    observe = y.register_hook(lambda grad: seen.append(grad.data.copy()))
    double = y.register_hook(lambda grad: grad * 2)
    y.sum().backward()
    np.testing.assert_allclose(seen[0], [1.0, 1.0])
    np.testing.assert_allclose(x.grad.data, [6.0, 6.0])
    observe.remove()
    double.remove()
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.data, [3.0, 3.0])
    assert len(seen) == 1


def test_hook_on_a_leaf_sees_the_gradient_before_accumulation():
    x = gn.tensor([1.0, 2.0], requires_grad=True)
    received = []
    x.register_hook(lambda grad: received.append(isinstance(grad, gn.Tensor)) or grad * 10)
    (x * 2).sum().backward()
    assert received == [True]
    np.testing.assert_allclose(x.grad.data, [20.0, 20.0])


def test_hooks_and_retain_grad_need_a_tensor_that_requires_grad():
    with pytest.raises(RuntimeError, match=r"register_hook"):
        gn.ones(2).register_hook(lambda grad: grad)
    with pytest.raises(RuntimeError, match=r"retain_grad"):
        gn.ones(2).retain_grad()


def test_modifying_a_saved_input_in_place_is_caught_naming_op_and_shape():
    x = gn.ones(3)
    w = gn.ones(3, requires_grad=True)
    y = x * w
    with gn.no_grad():
        x.mul_(2)
    with pytest.raises(RuntimeError, match=r"Mul\.backward: input 0 of shape \(3,\) was modified in place"):
        y.sum().backward()


def test_modifying_a_saved_output_in_place_is_caught():
    x = gn.ones(2, 4, requires_grad=True)
    y = x.exp()
    with gn.no_grad():
        y.add_(1)
    with pytest.raises(RuntimeError, match=r"Exp\.backward: its output of shape \(2, 4\) was modified in place"):
        y.sum().backward()


def test_modifying_a_view_of_a_saved_input_is_caught():
    x = gn.ones(2, 3)
    w = gn.ones(2, 3, requires_grad=True)
    y = (x * w).sum()
    with gn.no_grad():
        x[0].fill_(5)  # x[0] is a view: it shares x's version counter
    with pytest.raises(RuntimeError, match=r"Mul\.backward: input 0 of shape \(2, 3\)"):
        y.backward()


def test_in_place_change_of_an_input_backward_does_not_need_is_allowed():
    x = gn.ones(3)
    w = gn.ones(3, requires_grad=True)
    y = x + w  # Add saves no input
    with gn.no_grad():
        x.mul_(2)
    y.sum().backward()
    np.testing.assert_allclose(w.grad.data, [1.0, 1.0, 1.0])


def test_in_place_change_of_a_tensor_that_requires_grad_is_refused_under_grad_mode():
    w = gn.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"mul_: in-place change of a tensor that requires grad \(shape \(3,\)\)"):
        w.mul_(2)
    with gn.no_grad():
        w.mul_(2)
    np.testing.assert_allclose(w.data, [2.0, 2.0, 2.0])
    assert w._version == 1


def test_a_chain_of_10000_ops_backpropagates_without_recursion():
    x = gn.tensor([1.0, 2.0], dtype=gn.float64, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, np.full(2, 1.0001**10_000))
    assert len(engine.topological_order((x * 1).grad_fn)) == 2  # the Mul node and the leaf


def test_a_deep_graph_is_freed_without_recursion():
    x = gn.ones(2, requires_grad=True)
    y = x
    for _ in range(50_000):
        y = y + 1.0
    del y  # CPython frees the chain node by node; a crash or RecursionError here is the failure


def test_an_intermediate_no_backward_needs_is_freed_during_the_forward_pass():
    # The graph links ops, not tensors: batch norm's output feeds only ReLU, which keeps its mask,
    # so the output dies with the caller's last reference, long before backward.
    bn, conv = gn.nn.BatchNorm2d(3), gn.nn.Conv2d(2, 3, 3, padding=1)
    x = gn.randn(4, 2, 5, 5)
    h = bn(conv(x))
    alive = weakref.ref(h)
    y = gn.nn.functional.relu(h)
    del h
    assert alive() is None
    y.sum().backward()
    assert conv.weight.grad is not None and bn.weight.grad is not None


def test_an_input_a_backward_saved_stays_valid_after_the_caller_drops_it():
    x = gn.tensor([1.0, -2.0, 3.0], requires_grad=True)
    h = x * 2.0
    y = h * h  # Mul saves both inputs' arrays
    del h
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, 8 * x.data)


def test_a_leaf_frozen_between_forward_and_backward_gets_no_grad():
    lin = gn.nn.Linear(3, 1)
    loss = (lin(gn.randn(4, 3)) ** 2).mean()
    lin.weight.requires_grad_(False)
    loss.backward()
    assert lin.weight.grad is None and lin.bias.grad is not None


def test_a_leaf_that_asks_for_grad_after_its_use_gets_none_as_in_pytorch():
    x = gn.tensor([1.0, 2.0])
    w = gn.tensor([3.0, 4.0], requires_grad=True)
    y = (x * w).sum()
    x.requires_grad_(True)
    y.backward()
    assert x.grad is None
    np.testing.assert_allclose(w.grad.data, x.data)


def test_retain_grad_and_hooks_on_an_intermediate_still_reach_it():
    x = gn.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3.0
    h.retain_grad()
    seen = []
    h.register_hook(lambda g: seen.append(g.data.copy()))
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad.data, 2 * h.data)
    np.testing.assert_allclose(seen[0], 2 * h.data)
    np.testing.assert_allclose(x.grad.data, 18 * x.data)


def test_no_grad_records_nothing_and_restores_the_mode():
    x = gn.ones(2, requires_grad=True)
    with gn.no_grad():
        assert not gn.is_grad_enabled()
        y = x * 2
        with gn.enable_grad():
            assert gn.is_grad_enabled()
            z = x * 2
        assert not gn.is_grad_enabled()
    assert gn.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf and y.grad_fn is None
    assert z.requires_grad and not z.is_leaf


def test_grad_mode_is_restored_after_an_exception():
    with pytest.raises(KeyError):
        with gn.no_grad():
            raise KeyError("boom")
    assert gn.is_grad_enabled()


def test_grad_mode_decorators_and_set_grad_enabled():
    x = gn.ones(2, requires_grad=True)

    @gn.no_grad()
    def evaluate(t):
        return t * 2

    @gn.enable_grad()
    def train(t):
        return t * 2

    assert not evaluate(x).requires_grad
    with gn.no_grad():
        assert train(x).requires_grad
    with gn.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    with gn.set_grad_enabled(True):
        assert (x * 2).requires_grad


def test_backward_itself_records_no_graph():
    x = gn.ones(2, requires_grad=True)
    seen = []
    x.register_hook(lambda grad: seen.append(gn.is_grad_enabled()))
    (x * 2).sum().backward()
    assert seen == [False] and gn.is_grad_enabled()


def test_detach_shares_data_and_stops_gradients():
    x = gn.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    d = y.detach()
    assert d.is_leaf and not d.requires_grad and d.grad_fn is None
    assert np.shares_memory(d.data, y.data)
    (y * d).sum().backward()
    np.testing.assert_allclose(x.grad.data, 2 * d.data)


def test_is_leaf_and_grad_fn():
    x = gn.ones(2, requires_grad=True)
    c = gn.ones(2)
    y = x * 2
    assert x.is_leaf and c.is_leaf and not y.is_leaf
    assert type(y.grad_fn).__name__ == "MulScalar"
    assert "grad_fn=<MulScalarBackward>" in repr(y)
    assert (c * 2).is_leaf


def test_requires_grad_only_for_floating_tensors_and_leaves():
    with pytest.raises(TypeError, match=r"only floating point tensors can require gradients, got dtype int64"):
        gn.tensor([1, 2], requires_grad=True)
    y = gn.ones(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match=r"only allowed on leaf tensors"):
        y.requires_grad_(False)


def test_gradients_keep_the_leaf_dtype_across_a_cast():
    x = gn.ones(3, requires_grad=True)
    y = x.double() * gn.tensor([1.0, 2.0, 3.0], dtype=gn.float64)
    assert y.dtype == np.float64
    y.sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.data, [1.0, 2.0, 3.0])


def test_float64_graph_stays_float64():
    x = gn.randn(3, dtype=gn.float64, requires_grad=True)
    y = ((x * 2 + 1).exp() / 3).sum()
    assert y.dtype == np.float64
    y.backward()
    assert x.grad.dtype == np.float64
