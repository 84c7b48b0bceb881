"""Tensor: construction and dtypes, factories, the seeded RNG, NumPy interop, conversions, in-place ops."""

from __future__ import annotations

import numpy as np
import pytest

import glassnet as gn


def test_python_floats_become_float32_and_ints_int64():
    assert gn.tensor([1.0, 2.0]).dtype == np.float32
    assert gn.tensor(3.5).dtype == np.float32
    assert gn.tensor([1, 2]).dtype == np.int64
    assert gn.tensor([True, False]).dtype == np.bool_
    assert gn.tensor([1.0], dtype=gn.float64).dtype == np.float64
    assert gn.tensor([1.0], dtype=np.float64).dtype == np.float64
    assert gn.tensor(np.zeros(2)).dtype == np.float64  # a NumPy array keeps its dtype, as in torch


def test_factories_default_to_float32_and_accept_shapes_both_ways():
    for make in (gn.zeros, gn.ones, gn.randn, gn.rand, gn.empty):
        assert make(2, 3).shape == (2, 3) and make((2, 3)).shape == (2, 3)
        assert make(2, 3).dtype == np.float32
        assert make(2, dtype=gn.float64).dtype == np.float64
    assert gn.arange(5).dtype == np.int64
    assert gn.arange(0.0, 1.0, 0.25).dtype == np.float32
    assert gn.full((2, 2), 1.5).dtype == np.float32
    assert gn.eye(3).shape == (3, 3)
    assert gn.ones(2, requires_grad=True).requires_grad


def test_tensor_copies_and_from_numpy_shares():
    array = np.zeros(3, dtype=np.float32)
    copied = gn.tensor(array)
    shared = gn.from_numpy(array)
    array[0] = 1
    assert copied.data[0] == 0 and shared.data[0] == 1


def test_bad_data_is_a_clear_error():
    with pytest.raises(TypeError, match=r"cannot make a tensor from data of dtype"):
        gn.tensor(["a", "b"])
    with pytest.raises(TypeError, match=r"from_numpy: expected a numpy.ndarray, got list"):
        gn.from_numpy([1.0])


@pytest.mark.parametrize(
    "draw",
    [
        lambda: gn.randn(4, 3),
        lambda: gn.rand(5),
        lambda: gn.randint(0, 10, (6,)),
        lambda: gn.randperm(7),
        lambda: gn.randn_like(gn.ones(2, 2)),
    ],
    ids=["randn", "rand", "randint", "randperm", "randn_like"],
)
def test_manual_seed_makes_random_functions_reproducible(draw):
    gn.manual_seed(42)
    first = draw().data.copy()
    gn.manual_seed(42)
    np.testing.assert_array_equal(draw().data, first)
    gn.manual_seed(43)
    assert not np.array_equal(draw().data, first)


def test_one_generator_serves_every_random_function():
    """Drawing from one function moves the stream the others see (one generator, not one per function)."""
    gn.manual_seed(0)
    undisturbed = gn.randn(3).data.copy()
    gn.manual_seed(0)
    gn.randint(0, 5, (2,))
    assert not np.array_equal(gn.randn(3).data, undisturbed)


def test_manual_seed_reseeds_the_one_generator_in_place():
    """Code that kept default_generator() follows a later manual_seed; the stream is default_rng(seed)'s."""
    from glassnet import _backend

    kept = _backend.default_generator()
    gn.manual_seed(5)
    assert _backend.default_generator() is kept
    np.testing.assert_array_equal(kept.random(3), np.random.default_rng(5).random(3))


def test_rng_state_can_be_saved_and_restored():
    gn.manual_seed(1)
    gn.rand(3)
    state = gn.get_rng_state()
    expected = (gn.randn(4).data.copy(), gn.randint(0, 100, (3,)).data.copy())
    gn.rand(10)  # move on
    gn.set_rng_state(state)
    np.testing.assert_array_equal(gn.randn(4).data, expected[0])
    np.testing.assert_array_equal(gn.randint(0, 100, (3,)).data, expected[1])


def test_manual_seed_rejects_non_integers():
    with pytest.raises(TypeError, match=r"manual_seed: expected an integer seed, got float"):
        gn.manual_seed(1.5)


def test_randint_with_one_bound_and_range():
    values = gn.randint(3, size=(1000,))
    assert values.dtype == np.int64 and set(np.unique(values.data)) == {0, 1, 2}


def test_numpy_interop_shares_memory():
    t = gn.ones(2, 3)
    assert np.asarray(t) is t.data
    assert t.numpy() is t.data
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    np.testing.assert_array_equal(np.array(t), t.data)
    assert not np.shares_memory(np.array(t, copy=True), t.data)


def test_ndarray_op_tensor_returns_a_tensor_in_the_graph():
    w = gn.tensor([1.0, 2.0], requires_grad=True)
    array = np.array([3.0, 4.0], dtype=np.float32)
    for out in (array + w, array * w, array - w, array / w, np.float64(2.0) * w, np.int64(1) + w):
        assert isinstance(out, gn.Tensor) and out.requires_grad
    (array * w).sum().backward()
    np.testing.assert_allclose(w.grad.data, array)


def test_item_and_python_conversions():
    t = gn.tensor([[2.5]])
    assert t.item() == 2.5 and isinstance(t.item(), float)
    assert float(t) == 2.5 and int(gn.tensor(3)) == 3 and bool(gn.tensor(1.0))
    assert gn.tensor([1, 2]).tolist() == [1, 2]
    with pytest.raises(
        ValueError, match=r"item\(\): only a tensor with one element can be converted, got shape \(2,\)"
    ):
        gn.ones(2).item()
    with pytest.raises(ValueError, match=r"truth value of a tensor of shape \(2,\) is ambiguous"):
        bool(gn.ones(2))


def test_shape_accessors():
    t = gn.ones(2, 3, 4)
    assert t.shape == (2, 3, 4) and t.size() == (2, 3, 4) and t.size(1) == 3
    assert t.ndim == 3 and t.dim() == 3 and t.numel() == 24 and len(t) == 2
    assert [row.shape for row in t] == [(3, 4), (3, 4)]
    assert gn.ones(2, 3).T.shape == (3, 2)
    with pytest.raises(TypeError, match=r"len\(\) of a 0-d tensor"):
        len(gn.tensor(1.0))


def test_to_and_dtype_conversions():
    t = gn.ones(2)
    assert t.to(gn.float64).dtype == np.float64
    assert t.double().float().dtype == np.float32
    assert t.long().dtype == np.int64
    assert t.to("cpu") is t
    with pytest.raises(ValueError, match=r"only the 'cpu' device"):
        t.to("cuda")


def test_in_place_ops_change_data_and_bump_the_version():
    t = gn.zeros(3)
    t.add_(2).mul_(3).sub_(1).div_(5)
    np.testing.assert_allclose(t.data, np.ones(3))
    assert t._version == 4
    t.add_(gn.ones(3), alpha=2)
    np.testing.assert_allclose(t.data, np.full(3, 3.0))
    t[1] = 0
    t.clamp_(min=1)
    np.testing.assert_allclose(t.data, [3.0, 1.0, 3.0])
    t.zero_()
    t.copy_(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(t.data, [1.0, 2.0, 3.0])


def test_in_place_shape_errors_name_op_and_shapes():
    with pytest.raises(ValueError, match=r"add_: cannot apply to shape \(3,\) with operand shape \(2,\)"):
        gn.zeros(3).add_(gn.ones(2))
    with pytest.raises(ValueError, match=r"copy_: source of shape \(2,\) does not fit a tensor of shape \(3,\)"):
        gn.zeros(3).copy_(np.ones(2))


def test_augmented_assignment_on_a_tensor_in_the_graph_is_out_of_place():
    w = gn.ones(2, requires_grad=True)
    y = w * 1
    before = y
    y += 1
    assert y is not before and y.requires_grad
    y.sum().backward()
    np.testing.assert_allclose(w.grad.data, [1.0, 1.0])
    plain = gn.zeros(2)
    same = plain
    plain += 1
    assert plain is same


def test_repr_shows_dtype_and_grad_state():
    assert repr(gn.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert "dtype=float64" in repr(gn.tensor([1.0], dtype=gn.float64))
    assert "requires_grad=True" in repr(gn.ones(1, requires_grad=True))


def test_argmax_and_argmin():
    t = gn.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]])
    np.testing.assert_array_equal(t.argmax(dim=1).data, [1, 0])
    np.testing.assert_array_equal(t.argmin(dim=0, keepdim=True).data, [[0, 1, 0]])
    assert t.argmax().item() == 3 and gn.argmax(t).dtype == np.int64
