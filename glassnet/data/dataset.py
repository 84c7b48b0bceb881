"""Datasets: the map-style Dataset protocol, TensorDataset, Subset and ConcatDataset, as in PyTorch.

A dataset may also be *array-backed*: it exposes ``arrays``, a tuple of NumPy arrays whose first
dimension is ``len(dataset)``, and sample ``i`` is ``tuple(a[i] for a in arrays)``. The DataLoader
then builds a batch with one fancy-indexing call per array instead of a Python loop per sample.
TensorDataset is array-backed; a Subset of an array-backed dataset is batched the same way.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import numpy as np

from glassnet.autograd import GlassnetError
from glassnet.tensor import Tensor


class Dataset:
    """A map-style dataset: ``dataset[i]`` is sample ``i`` and ``len(dataset)`` their number.

    Subclasses override ``__getitem__`` and ``__len__``. To be batched without a per-sample loop,
    a subclass may also expose ``arrays`` (see the module docstring).

    Example:
        >>> import glassnet as gn
        >>> class Squares(gn.data.Dataset):
        ...     def __len__(self):
        ...         return 4
        ...     def __getitem__(self, i):
        ...         return gn.tensor([float(i)]), i * i
        >>> len(Squares())
        4
    """

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement __len__")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


class TensorDataset(Dataset):
    """Samples are slices of tensors along their first dimension.

    Args:
        *tensors: glassnet Tensors or NumPy arrays with the same first dimension. Arrays are
            wrapped without a copy; dtypes are kept (int64 labels stay int64).

    Example:
        >>> import glassnet as gn
        >>> ds = gn.data.TensorDataset(gn.randn(5, 3), gn.arange(5))
        >>> x, y = ds[2]
        >>> (tuple(x.shape), y.item(), len(ds))
        ((3,), 2, 5)
    """

    def __init__(self, *tensors) -> None:
        if not tensors:
            raise GlassnetError("TensorDataset: expected at least one tensor, got none")
        converted = []
        for position, tensor in enumerate(tensors):
            if not isinstance(tensor, Tensor):
                if not isinstance(tensor, np.ndarray):
                    raise TypeError(
                        f"TensorDataset: argument {position} must be a Tensor or a numpy.ndarray, "
                        f"got {type(tensor).__name__}"
                    )
                tensor = Tensor(tensor)
            if tensor.ndim == 0:
                raise GlassnetError(f"TensorDataset: argument {position} is a 0-d tensor; each needs a first dimension")
            converted.append(tensor)
        shapes = [tuple(t.shape) for t in converted]
        if len({shape[0] for shape in shapes}) > 1:
            raise GlassnetError(
                f"TensorDataset: size mismatch between tensors: first dimensions differ, shapes {shapes}"
            )
        self.tensors = tuple(converted)

    @property
    def arrays(self) -> tuple:
        """The tensors' NumPy arrays (shared, not copied)."""
        return tuple(t.data for t in self.tensors)

    def __getitem__(self, index) -> tuple:
        return tuple(tensor[index] for tensor in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order.

    Args:
        dataset: the dataset to take samples from.
        indices: positions in ``dataset`` (a sequence of ints or an integer array).

    Example:
        >>> import glassnet as gn
        >>> ds = gn.data.TensorDataset(gn.arange(10))
        >>> sub = gn.data.Subset(ds, [7, 1])
        >>> (len(sub), sub[0][0].item())
        (2, 7)
    """

    def __init__(self, dataset: Dataset, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, index):
        if isinstance(index, list):
            return self.dataset[[self.indices[i] for i in index]]
        return self.dataset[self.indices[index]]

    def __getitems__(self, indices: list) -> list:
        return [self.dataset[self.indices[i]] for i in indices]

    def __len__(self) -> int:
        return len(self.indices)


class ConcatDataset(Dataset):
    """The datasets one after another (``dataset_a + dataset_b`` builds one).

    Example:
        >>> import glassnet as gn
        >>> a = gn.data.TensorDataset(gn.arange(3))
        >>> b = gn.data.TensorDataset(gn.arange(2))
        >>> ab = a + b
        >>> (len(ab), ab[3][0].item())
        (5, 0)
    """

    def __init__(self, datasets) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise GlassnetError("ConcatDataset: expected at least one dataset, got none")
        self.cumulative_sizes = list(np.cumsum([len(d) for d in self.datasets]).tolist())

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index: int):
        if index < 0:
            if -index > len(self):
                raise IndexError(f"ConcatDataset: index {index} out of range for length {len(self)}")
            index += len(self)
        which = bisect.bisect_right(self.cumulative_sizes, index)
        if which == len(self.datasets):
            raise IndexError(f"ConcatDataset: index {index} out of range for length {len(self)}")
        start = self.cumulative_sizes[which - 1] if which > 0 else 0
        return self.datasets[which][index - start]


def array_source(dataset) -> tuple[tuple, np.ndarray | None] | None:
    """The arrays behind ``dataset`` and the row of each sample, or None if it is not array-backed.

    Subsets are resolved down to the array-backed dataset beneath: sample ``i`` of the result is
    row ``rows[i]`` of every array (``rows`` is None for the identity).
    """
    rows = None
    while isinstance(dataset, Subset):
        indices = np.asarray(dataset.indices, dtype=np.int64)
        rows = indices if rows is None else indices[rows]
        dataset = dataset.dataset
    arrays = getattr(dataset, "arrays", None)
    if not isinstance(arrays, tuple) or not arrays or not all(isinstance(a, np.ndarray) for a in arrays):
        return None
    length = len(dataset)
    if any(a.ndim == 0 or a.shape[0] != length for a in arrays):
        raise GlassnetError(
            f"{type(dataset).__name__}.arrays: each array needs first dimension len(dataset)={length}, "
            f"got shapes {[tuple(a.shape) for a in arrays]}"
        )
    if rows is not None and rows.size and (rows.min() < -length or rows.max() >= length):
        raise IndexError(f"Subset: indices out of range for a dataset of length {length}")
    return arrays, rows
