"""MNIST and Fashion-MNIST from their four standard IDX files in a folder (nothing is downloaded)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from glassnet.datasets._common import DatasetError, LabeledData, labeled
from glassnet.datasets.idx import read_idx

FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _folders(root: Path, torchvision_name: str) -> list[Path]:
    """Where the files may lie: ``root`` itself, then torchvision's layout ``root/<Name>/raw``."""
    return [root, root / torchvision_name / "raw"]


def _find(folders: list[Path], name: str) -> Path | None:
    for folder in folders:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _load_pair(root, train: bool, as_tensors: bool, caller: str, torchvision_name: str, how_to_get: str) -> LabeledData:
    if not isinstance(train, bool):
        raise TypeError(f"{caller}: train must be True or False, got {train!r}")
    root = Path(os.fspath(root)).expanduser()
    folders = _folders(root, torchvision_name)
    names = _FILES[train]
    paths = [_find(folders, name) for name in names]
    missing = [name for name, path in zip(names, paths) if path is None]
    if missing:
        looked = ", ".join(str(folder) for folder in folders)
        raise DatasetError(
            f"{caller}: cannot find {' and '.join(f'{m}[.gz]' for m in missing)} (looked in {looked}). {how_to_get}"
        )
    images_path, labels_path = paths
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DatasetError(
            f"{caller}: {images_path} should hold uint8 images (N, H, W), got {images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DatasetError(f"{caller}: {labels_path} should hold uint8 labels (N,), got {labels.dtype} {labels.shape}")
    if labels.shape[0] != images.shape[0]:
        raise DatasetError(
            f"{caller}: {images_path} holds {images.shape[0]} images but {labels_path} holds {labels.shape[0]} labels"
        )
    if labels.size and labels.max() > 9:
        raise DatasetError(f"{caller}: {labels_path} has label {int(labels.max())}; expected classes 0..9")
    inputs = (images.astype(np.float32) / np.float32(255.0))[:, None, :, :]  # (N, 1, H, W)
    return labeled(inputs, labels.astype(np.int64), as_tensors)


def mnist(root: str | os.PathLike, train: bool = True, as_tensors: bool = False) -> LabeledData:
    """MNIST handwritten digits from the four standard IDX files (raw or ``.gz``) in ``root``.

    glassnet never downloads: put ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``) in a
    folder; torchvision's layout ``root/MNIST/raw/`` is found too.

    Args:
        root: the folder holding the files.
        train: the 60,000 training images (True) or the 10,000 test images (False).
        as_tensors: return glassnet Tensors instead of NumPy arrays.

    Returns:
        ``LabeledData(inputs, labels)``: inputs float32 (N, 1, 28, 28) scaled to [0, 1], labels
        int64 (N,) in 0..9.

    Raises:
        DatasetError: a file is missing (the message says where it looked) or malformed.

    Example:
        >>> import glassnet as gn
        >>> images, labels = gn.datasets.mnist("~/data/mnist", train=False)  # doctest: +SKIP
        >>> images.shape  # doctest: +SKIP
        (10000, 1, 28, 28)
    """
    how = (
        "Download the four MNIST files to a folder (raw or .gz) and pass it as root=; glassnet does not download data."
    )
    return _load_pair(root, train, as_tensors, "mnist", "MNIST", how)


def fashion_mnist(root: str | os.PathLike | None = None, train: bool = True, as_tensors: bool = False) -> LabeledData:
    """Fashion-MNIST (Zalando's 28x28 clothing images, 10 classes) from its four IDX files.

    By default the files are read from ``/usr/share/datasets/fashion-mnist/``, where the Debian
    package ``dataset-fashion-mnist`` puts them; any folder with the four files (raw or ``.gz``)
    works as ``root``, as does torchvision's layout ``root/FashionMNIST/raw/``. Class names are
    ``glassnet.datasets.FASHION_MNIST_CLASSES``.

    Args:
        root: the folder holding the files (default ``/usr/share/datasets/fashion-mnist``).
        train: the 60,000 training images (True) or the 10,000 test images (False).
        as_tensors: return glassnet Tensors instead of NumPy arrays.

    Returns:
        ``LabeledData(inputs, labels)``: inputs float32 (N, 1, 28, 28) scaled to [0, 1], labels
        int64 (N,) in 0..9.

    Raises:
        DatasetError: a file is missing (the message says where it looked and how to get the
            files) or malformed.

    Example:
        >>> import glassnet as gn
        >>> images, labels = gn.datasets.fashion_mnist(train=False)  # doctest: +SKIP
        >>> gn.datasets.FASHION_MNIST_CLASSES[int(labels[0])]  # doctest: +SKIP
        'Ankle boot'
    """
    how = (
        "Install them with `apt install dataset-fashion-mnist` (Debian/Ubuntu; files go to "
        f"{FASHION_MNIST_ROOT}), or download train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz from Zalando's fashion-mnist repository "
        "to a folder and pass it as root=."
    )
    return _load_pair(
        FASHION_MNIST_ROOT if root is None else root, train, as_tensors, "fashion_mnist", "FashionMNIST", how
    )
