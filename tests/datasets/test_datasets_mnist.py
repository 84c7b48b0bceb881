"""mnist and fashion_mnist on small IDX files the tests write, and the missing-files message."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

import glassnet as gn
import glassnet.datasets
from glassnet.datasets import DatasetError, fashion_mnist, mnist, mnist_idx


def write_idx(path, array: np.ndarray, compress: bool) -> None:
    data = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


def make_set(folder, n_train=6, n_test=3, compress=True, labels_n=None):
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if compress else ""
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        images[0, 0, 0], images[0, 0, 1] = 0, 255
        write_idx(folder / f"{split}-images-idx3-ubyte{suffix}", images, compress)
        write_idx(
            folder / f"{split}-labels-idx1-ubyte{suffix}", np.arange(labels_n or n, dtype=np.uint8) % 10, compress
        )
    return folder


@pytest.mark.parametrize("compress", [True, False])
def test_mnist_reads_the_four_files(tmp_path, compress):
    root = make_set(tmp_path / "mnist", compress=compress)
    images, labels = mnist(root)
    assert images.shape == (6, 1, 28, 28) and images.dtype == np.float32
    assert images.min() == 0.0 and images.max() == 1.0
    assert labels.dtype == np.int64 and labels.tolist() == [0, 1, 2, 3, 4, 5]
    test = mnist(str(root), train=False, as_tensors=True)
    assert isinstance(test.inputs, gn.Tensor) and test.inputs.shape == (3, 1, 28, 28)


def test_fashion_mnist_root_and_torchvision_layout(tmp_path):
    make_set(tmp_path / "FashionMNIST" / "raw")
    images, labels = fashion_mnist(tmp_path, train=False)
    assert images.shape == (3, 1, 28, 28) and labels.tolist() == [0, 1, 2]
    assert len(gn.datasets.FASHION_MNIST_CLASSES) == 10


def test_fashion_mnist_missing_files_says_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist_idx, "FASHION_MNIST_ROOT", str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError) as info:
        fashion_mnist()
    message = str(info.value)
    assert str(tmp_path / "nowhere") in message
    assert "apt install dataset-fashion-mnist" in message and "root=" in message
    assert "train-images-idx3-ubyte" in message


def test_default_root_is_debians():
    assert gn.datasets.FASHION_MNIST_ROOT == "/usr/share/datasets/fashion-mnist"


def test_mnist_missing_one_file(tmp_path):
    root = make_set(tmp_path / "m")
    (root / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte\[\.gz\].*looked in") as info:
        mnist(root, train=False)
    assert "t10k-images" not in str(info.value).split("looked in")[0]


def test_mnist_count_mismatch_names_both_files(tmp_path):
    root = make_set(tmp_path / "m", labels_n=5)
    with pytest.raises(DatasetError, match="6 images.*5 labels"):
        mnist(root)


def test_mnist_wrong_kind_of_file(tmp_path):
    root = make_set(tmp_path / "m")
    write_idx(root / "train-images-idx3-ubyte.gz", np.zeros(6, np.uint8), compress=True)
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz should hold uint8 images"):
        mnist(root)
