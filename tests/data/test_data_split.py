"""random_split (PyTorch's semantics) and the stratified train_test_split."""

from __future__ import annotations

import numpy as np
import pytest

import glassnet as gn
from glassnet.data import Subset, TensorDataset, random_split, train_test_split


def indices(subsets) -> list[list[int]]:
    return [list(s.indices) for s in subsets]


def test_random_split_ints_partition_the_dataset():
    ds = TensorDataset(gn.arange(10))
    parts = random_split(ds, [3, 7])
    assert all(isinstance(p, Subset) for p in parts) and [len(p) for p in parts] == [3, 7]
    assert sorted(sum(indices(parts), [])) == list(range(10))


def test_random_split_fractions_remainder_as_pytorch():
    ds = TensorDataset(gn.arange(11))
    # floor(11 * 0.5) = 5, floor(11 * 0.3) = 3, floor(11 * 0.2) = 2; the remainder 1 goes to the first
    assert [len(p) for p in random_split(ds, [0.5, 0.3, 0.2])] == [6, 3, 2]
    with pytest.warns(UserWarning, match="index 1 is 0"):
        assert [len(p) for p in random_split(TensorDataset(gn.arange(3)), [0.9, 0.1])] == [3, 0]


def test_random_split_matches_torch_lengths(torch):
    from torch.utils.data import random_split as torch_random_split

    for n, fractions in [(11, [0.5, 0.3, 0.2]), (1797, [0.8, 0.2]), (7, [1 / 3, 1 / 3, 1 / 3])]:
        ours = [len(p) for p in random_split(TensorDataset(gn.arange(n)), fractions)]
        theirs = [len(p) for p in torch_random_split(range(n), fractions)]
        assert ours == theirs


def test_random_split_reproducible_with_generator_and_seed():
    ds = TensorDataset(gn.arange(20))
    a = indices(random_split(ds, [0.5, 0.5], generator=np.random.default_rng(1)))
    b = indices(random_split(ds, [0.5, 0.5], generator=np.random.default_rng(1)))
    gn.manual_seed(3)
    c = indices(random_split(ds, [10, 10]))
    gn.manual_seed(3)
    d = indices(random_split(ds, [10, 10]))
    assert a == b and c == d and a != c


def test_random_split_errors():
    ds = TensorDataset(gn.arange(10))
    with pytest.raises(gn.GlassnetError, match="sum to 9"):
        random_split(ds, [4, 5])
    with pytest.raises(gn.GlassnetError, match="not between 0 and 1"):
        random_split(ds, [1.5, -0.5])


def test_train_test_split_stratified_keeps_class_shares():
    y = np.repeat(np.arange(3), [50, 30, 20])
    x = np.arange(100 * 2).reshape(100, 2)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, seed=0)
    assert len(y_test) == 20 and len(y_train) == 80
    assert np.bincount(y_test).tolist() == [10, 6, 4]
    assert sorted(np.concatenate([x_train[:, 0], x_test[:, 0]]).tolist()) == list(range(0, 200, 2))
    np.testing.assert_array_equal(y[x_test[:, 0] // 2], y_test)  # rows stay paired with labels


def test_train_test_split_rounding_and_ints():
    y = np.array([0] * 7 + [1] * 5)
    _, x_test, _, y_test = train_test_split(np.zeros((12, 1)), y, test_size=0.25, seed=1)
    assert len(y_test) == 3  # ceil(0.25 * 12), as scikit-learn
    assert np.bincount(y_test, minlength=2).tolist() == [2, 1]
    _, _, _, y_test = train_test_split(np.zeros((12, 1)), y, test_size=5, seed=1, stratify=False)
    assert len(y_test) == 5


def test_train_test_split_tensors_in_tensors_out_and_reproducible():
    x, y = gn.randn(30, 4), gn.tensor([0, 1, 2] * 10)
    a = train_test_split(x, y, test_size=0.3, seed=5)
    b = train_test_split(x, y, test_size=0.3, seed=5)
    assert all(isinstance(t, gn.Tensor) for t in a)
    assert all(np.array_equal(p.numpy(), q.numpy()) for p, q in zip(a, b))
    gn.manual_seed(1)
    c = train_test_split(x, y, test_size=0.3)
    gn.manual_seed(1)
    d = train_test_split(x, y, test_size=0.3)
    assert all(np.array_equal(p.numpy(), q.numpy()) for p, q in zip(c, d))


def test_train_test_split_errors():
    with pytest.raises(gn.GlassnetError, match=r"\(5, 2\) and \(4,\)"):
        train_test_split(np.zeros((5, 2)), np.zeros(4), seed=0)
    with pytest.raises(gn.GlassnetError, match="test_size"):
        train_test_split(np.zeros((5, 2)), np.zeros(5), test_size=1.5, seed=0)
    with pytest.raises(gn.GlassnetError, match="empty part"):
        train_test_split(np.zeros((5, 2)), np.zeros(5), test_size=5, seed=0)
