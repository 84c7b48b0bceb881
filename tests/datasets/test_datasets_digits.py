"""load_digits: the bundled UCI digits."""

from __future__ import annotations

import hashlib

import numpy as np

import glassnet as gn
import glassnet.datasets
from glassnet.data import DataLoader


def test_digits_shapes_dtypes_values():
    images, labels = gn.datasets.load_digits()
    assert images.shape == (1797, 1, 8, 8) and images.dtype == np.float32
    assert labels.shape == (1797,) and labels.dtype == np.int64
    assert images.min() == 0.0 and images.max() == 1.0
    np.testing.assert_array_equal(np.unique(images * 16), np.arange(17))  # counts 0..16 scaled by 1/16
    assert np.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def test_digits_content_is_unchanged():
    """A checksum of the pixels and labels (recorded from the file, which equals scikit-learn's copy)."""
    images, labels = gn.datasets.load_digits()
    payload = (images * 16).astype(np.uint8).tobytes() + labels.tobytes()
    assert hashlib.sha256(payload).hexdigest() == "65e5b4619795efb40c1082f4c350c049e4ad552200d369b6ae99e21eef5e72c5"


def test_digits_as_tensors_and_dataset():
    data = gn.datasets.load_digits(as_tensors=True)
    assert isinstance(data.inputs, gn.Tensor) and isinstance(data.labels, gn.Tensor)
    x, y = next(iter(DataLoader(data.to_dataset(), batch_size=32)))
    assert x.shape == (32, 1, 8, 8) and y.dtype == np.int64


def test_digits_licence_ships_next_to_the_data():
    from importlib import resources

    text = resources.files("glassnet.datasets").joinpath("_files/digits-LICENSE.txt").read_text()
    assert "CC BY 4.0" in text and "Alpaydin" in text and "10.24432/C50P49" in text
