"""Data specs of the ``glassnet`` command (``digits``, ``mnist:DIR``, ``fashion-mnist[:DIR]``, ``csv:PATH``):
parsing, loading a fixed train/test split, and the input normalisation saved with a model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glassnet.autograd import GlassnetError
from glassnet.datasets import FASHION_MNIST_CLASSES, fashion_mnist, load_csv, load_digits, mnist, train_test_split

DATA_FORMS = "digits, mnist:DIR, fashion-mnist, fashion-mnist:DIR or csv:PATH"
SPLIT_SEED = 0  # digits and CSV tables: the same stratified 80/20 split whatever the training seed
TEST_SIZE = 0.2


@dataclass
class DataSplit:
    """Training and test samples of one data spec, as float32 inputs and int64 class labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    class_names: list[str] | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def parse_data_spec(spec: str) -> tuple[str, str | None]:
    """Split a data spec into its kind and its path: ``"mnist:~/data"`` -> ``("mnist", "~/data")``.

    Example:
        >>> parse_data_spec("fashion-mnist")
        ('fashion-mnist', None)
        >>> parse_data_spec("csv:/tmp/a:b.csv")
        ('csv', '/tmp/a:b.csv')
    """
    kind, colon, path = spec.partition(":")
    kind = kind.strip().lower().replace("_", "-")
    if kind == "digits" and not colon:
        return kind, None
    if kind == "fashion-mnist" and not colon:
        return kind, None
    if kind in ("mnist", "fashion-mnist", "csv") and path:
        return kind, path
    if kind in ("mnist", "csv"):
        raise GlassnetError(
            f"data spec {spec!r}: {kind} needs a path, e.g. {kind}:{'DIR' if kind == 'mnist' else 'PATH'}"
        )
    raise GlassnetError(f"unknown data spec {spec!r}; use {DATA_FORMS}")


def _classes(labels: np.ndarray, where: str) -> int:
    if labels.dtype.kind not in "iu":
        raise GlassnetError(f"{where}: labels must be integer classes for a classifier, got {labels.dtype} values")
    if labels.min() < 0:
        raise GlassnetError(f"{where}: class labels must be 0, 1, 2, ...; found {int(labels.min())}")
    return int(labels.max()) + 1


def load_split(spec: str) -> DataSplit:
    """Load the data that ``spec`` names with its fixed train/test split.

    digits and CSV tables are split 80/20, stratified, always with the same seed; MNIST and
    Fashion-MNIST use their own 60,000/10,000 files. Nothing is downloaded.

    Example:
        >>> split = load_split("digits")
        >>> (len(split.x_train), len(split.x_test), split.input_shape, split.num_classes)
        (1437, 360, (1, 8, 8), 10)
    """
    kind, path = parse_data_spec(spec)
    if kind in ("mnist", "fashion-mnist"):
        load = mnist if kind == "mnist" else fashion_mnist
        x_train, y_train = load(path, train=True)  # fashion_mnist reads its default folder when path is None
        x_test, y_test = load(path, train=False)
        names = list(FASHION_MNIST_CLASSES) if kind == "fashion-mnist" else None
        return DataSplit(x_train, y_train, x_test, y_test, 10, names)
    x, y = load_digits() if kind == "digits" else load_csv(path)
    num_classes = _classes(y, spec)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=TEST_SIZE, seed=SPLIT_SEED)
    return DataSplit(x_train, y_train, x_test, y_test, num_classes)


def fit_normalization(x_train: np.ndarray) -> dict[str, float]:
    """The mean and standard deviation of the training inputs (one number each), saved with the model.

    Example:
        >>> fit_normalization(np.array([[0.0, 2.0]]))
        {'mean': 1.0, 'std': 1.0}
    """
    std = float(x_train.std())
    return {"mean": float(x_train.mean()), "std": std if std > 0 else 1.0}


def normalize(x: np.ndarray, normalization: dict[str, float]) -> np.ndarray:
    """``(x - mean) / std`` as float32."""
    mean, std = np.float32(normalization["mean"]), np.float32(normalization["std"])
    return ((np.asarray(x, dtype=np.float32) - mean) / std).astype(np.float32, copy=False)
