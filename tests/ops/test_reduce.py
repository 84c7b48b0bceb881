"""Reductions: sum, mean, var, std, max, min (whole tensor, or along dims, with and without keepdim)."""

from __future__ import annotations

import numpy as np
import pytest

import glassnet as gn
from tests.helpers import OpSpec, enroll

SPECS = [
    OpSpec("sum_all", lambda lib, x: x.sum(), [(3, 4)]),
    OpSpec("sum_0d", lambda lib, x: x.sum(), [()]),
    OpSpec("sum_dim", lambda lib, x: x.sum(dim=1), [(3, 4)]),
    OpSpec("sum_dim_keepdim", lambda lib, x: x.sum(dim=0, keepdim=True), [(3, 4)]),
    OpSpec("sum_dims_tuple_negative", lambda lib, x: x.sum(dim=(0, -1)), [(2, 3, 4)]),
    OpSpec("sum_free_function", lambda lib, x: lib.sum(x, 1, True), [(2, 3, 4)]),
    OpSpec("mean_all", lambda lib, x: x.mean(), [(3, 4)]),
    OpSpec("mean_dim", lambda lib, x: x.mean(dim=-1), [(3, 4)]),
    OpSpec("mean_dims_keepdim", lambda lib, x: x.mean(dim=(0, 2), keepdim=True), [(2, 3, 4)]),
    OpSpec("var_all", lambda lib, x: x.var(), [(3, 4)]),
    OpSpec("var_dim", lambda lib, x: x.var(dim=1), [(3, 4)]),
    OpSpec("var_dim_biased_keepdim", lambda lib, x: x.var(dim=0, correction=0, keepdim=True), [(3, 4)]),
    OpSpec("var_unbiased_false", lambda lib, x: x.var(1, unbiased=False), [(3, 4)]),
    OpSpec("var_dims_tuple", lambda lib, x: x.var(dim=(0, 2)), [(2, 3, 4)]),
    OpSpec("std_dim", lambda lib, x: x.std(dim=1), [(3, 4)]),
    OpSpec("max_all", lambda lib, x: x.max(), [(3, 4)]),
    OpSpec("min_all", lambda lib, x: x.min(), [(3, 4)]),
    OpSpec("max_dim_values", lambda lib, x: x.max(dim=1).values, [(3, 4)]),
    OpSpec("max_dim_keepdim", lambda lib, x: x.max(dim=0, keepdim=True)[0], [(3, 4)]),
    OpSpec("min_dim_negative", lambda lib, x: x.min(dim=-1).values, [(2, 3, 4)]),
    OpSpec("amax_dim", lambda lib, x: x.amax(dim=1), [(3, 4)]),
    OpSpec("amin_dim_keepdim", lambda lib, x: x.amin(dim=0, keepdim=True), [(3, 4)]),
]


test_finite_differences, test_matches_torch, test_backward_is_linear = enroll(SPECS)


def test_max_with_dim_returns_values_and_indices_like_torch(torch):
    array = np.array([[1.0, 5.0, 5.0], [7.0, 2.0, 7.0]])
    values, indices = gn.tensor(array).max(dim=1)
    torch_values, torch_indices = torch.tensor(array).max(dim=1)
    np.testing.assert_array_equal(values.data, torch_values.numpy())
    np.testing.assert_array_equal(indices.data, torch_indices.numpy())
    assert indices.dtype == np.int64 and not indices.requires_grad


def test_max_and_min_of_all_split_the_gradient_among_ties_like_torch(torch):
    array = np.array([[3.0, 1.0, 3.0], [0.0, 3.0, -1.0]])
    for name in ("max", "min"):
        x = gn.tensor(array, requires_grad=True)
        getattr(x, name)().backward()
        tx = torch.tensor(array, requires_grad=True)
        getattr(tx, name)().backward()
        np.testing.assert_allclose(x.grad.data, tx.grad.numpy())


def test_max_along_dim_sends_the_gradient_to_the_returned_index():
    array = np.array([[2.0, 2.0], [1.0, 4.0]])
    x = gn.tensor(array, requires_grad=True)
    values, indices = x.max(dim=1)
    values.sum().backward()
    expected = np.zeros_like(array)
    expected[np.arange(2), indices.data] = 1
    np.testing.assert_array_equal(x.grad.data, expected)


def test_reductions_accept_axis_for_dim():
    x = gn.randn(2, 3, 4)
    np.testing.assert_allclose(x.sum(axis=1).data, x.sum(dim=1).data)
    np.testing.assert_allclose(x.mean(axis=(0, 2)).data, x.mean(dim=(0, 2)).data)
    np.testing.assert_allclose(x.max(axis=2).values.data, x.max(dim=2).values.data)


def test_bad_dims_name_the_op_and_the_rank():
    x = gn.ones(2, 3)
    with pytest.raises(IndexError, match=r"sum: dim 2 is out of range for a tensor with 2 dimensions"):
        x.sum(dim=2)
    with pytest.raises(IndexError, match=r"mean: dim -3"):
        x.mean(dim=-3)
    with pytest.raises(IndexError, match=r"max: dim 5"):
        x.max(dim=5)
    with pytest.raises(ValueError, match=r"max\(\)/min\(\) of an empty tensor"):
        gn.ones(0).max()
