"""Dataset, TensorDataset, Subset, ConcatDataset and default_collate."""

from __future__ import annotations

import numpy as np
import pytest

import glassnet as gn
from glassnet.data import ConcatDataset, Dataset, Subset, TensorDataset, default_collate


def test_tensor_dataset_items_and_len():
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    y = np.array([3, 1, 0, 2], dtype=np.int64)
    ds = TensorDataset(gn.from_numpy(x), y)
    assert len(ds) == 4
    xi, yi = ds[1]
    np.testing.assert_array_equal(xi.numpy(), x[1])
    assert yi.item() == 1 and yi.dtype == np.int64
    assert ds.arrays[0] is x  # shared, not copied


def test_tensor_dataset_size_mismatch_names_shapes():
    with pytest.raises(gn.GlassnetError, match=r"\(4, 3\).*\(5,\)"):
        TensorDataset(gn.zeros(4, 3), gn.zeros(5))


def test_tensor_dataset_rejects_empty_scalar_and_lists():
    with pytest.raises(gn.GlassnetError, match="at least one"):
        TensorDataset()
    with pytest.raises(gn.GlassnetError, match="0-d"):
        TensorDataset(gn.tensor(1.0))
    with pytest.raises(TypeError, match="argument 1"):
        TensorDataset(gn.zeros(2), [1, 2])


def test_subset_and_concat():
    ds = TensorDataset(gn.arange(10))
    sub = Subset(ds, [9, 0, 4])
    assert len(sub) == 3
    assert [sub[i][0].item() for i in range(3)] == [9, 0, 4]
    both = sub + TensorDataset(gn.arange(100, 102))
    assert isinstance(both, ConcatDataset) and len(both) == 5
    assert [both[i][0].item() for i in range(5)] == [9, 0, 4, 100, 101]
    assert both[-1][0].item() == 101
    with pytest.raises(IndexError):
        both[5]


def test_base_dataset_must_be_subclassed():
    with pytest.raises(NotImplementedError):
        Dataset()[0]


def test_default_collate_types():
    x, y, z, name = default_collate([(np.ones(2, np.float32), 1, 0.5, "a"), (np.zeros(2, np.float32), 2, 1.5, "b")])
    assert x.shape == (2, 2) and x.dtype == np.float32
    assert y.dtype == np.int64 and y.tolist() == [1, 2]
    assert z.dtype == np.float64  # Python floats collate to float64, as in PyTorch
    assert name == ["a", "b"]
    batch = default_collate([{"img": gn.ones(3), "label": 1}, {"img": gn.zeros(3), "label": 0}])
    assert batch["img"].shape == (2, 3) and batch["label"].tolist() == [1, 0]


def test_default_collate_shape_mismatch():
    with pytest.raises(gn.GlassnetError, match="collate_fn"):
        default_collate([np.ones(2), np.ones(3)])
