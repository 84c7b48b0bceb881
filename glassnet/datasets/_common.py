"""What the dataset loaders share: LabeledData (their return type) and DatasetError."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from glassnet.autograd import GlassnetError
from glassnet.data.dataset import TensorDataset
from glassnet.tensor import Tensor


class DatasetError(GlassnetError):
    """A data file is missing, malformed or inconsistent: the message names the file."""


class LabeledData(NamedTuple):
    """Inputs and their labels, as NumPy arrays or as glassnet Tensors (``as_tensors=True``).

    Unpacks as ``inputs, labels = load_digits()``; ``to_dataset()`` wraps both in a TensorDataset.
    """

    inputs: np.ndarray | Tensor
    labels: np.ndarray | Tensor

    def to_dataset(self) -> TensorDataset:
        """A TensorDataset over ``inputs`` and ``labels`` (no copy)."""
        return TensorDataset(self.inputs, self.labels)


def labeled(inputs: np.ndarray, labels: np.ndarray, as_tensors: bool) -> LabeledData:
    """LabeledData of the arrays, wrapped as Tensors (sharing memory) when ``as_tensors``."""
    if as_tensors:
        return LabeledData(Tensor(inputs), Tensor(labels))
    return LabeledData(inputs, labels)
