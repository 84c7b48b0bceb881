"""default_collate: merge a list of samples into one batch of tensors, as PyTorch's does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Number

import numpy as np

from glassnet.autograd import GlassnetError
from glassnet.tensor import Tensor


def default_collate(batch: list):
    """Stack a list of samples into a batch.

    Tensors and NumPy arrays are stacked along a new first dimension (their dtype kept); Python
    ints become an int64 tensor, Python floats a float64 tensor and bools a bool tensor (as in
    PyTorch); strings stay a list; a tuple or list sample gives a tuple of collated fields (PyTorch
    gives a list; unpacking ``x, y = batch`` reads the same); a dict sample gives a dict.

    Args:
        batch: the samples, each as returned by ``dataset[i]``.

    Returns:
        The batch, with the samples' structure.

    Example:
        >>> import glassnet as gn
        >>> x, y = gn.data.default_collate([(gn.tensor([1.0, 2.0]), 0), (gn.tensor([3.0, 4.0]), 1)])
        >>> (tuple(x.shape), y.dtype)
        ((2, 2), dtype('int64'))
    """
    if not batch:
        raise GlassnetError("default_collate: the batch is empty")
    elem = batch[0]
    if isinstance(elem, (Tensor, np.ndarray, np.generic)):
        arrays = [s.data if isinstance(s, Tensor) else np.asarray(s) for s in batch]
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            raise GlassnetError(
                f"default_collate: samples must have one shape to be stacked, got {sorted(shapes)}; "
                "pass a collate_fn to DataLoader for samples of different shapes"
            )
        return Tensor(np.stack(arrays))
    if isinstance(elem, bool):
        return Tensor(np.array(batch, dtype=np.bool_))
    if isinstance(elem, int):
        return Tensor(np.array(batch, dtype=np.int64))
    if isinstance(elem, float):
        return Tensor(np.array(batch, dtype=np.float64))
    if isinstance(elem, Number):
        return Tensor(np.array(batch))
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, Mapping):
        return {key: default_collate([sample[key] for sample in batch]) for key in elem}
    if isinstance(elem, Sequence):
        if len({len(sample) for sample in batch}) > 1:
            raise GlassnetError("default_collate: every sample in a batch must have the same number of fields")
        return tuple(default_collate(list(field)) for field in zip(*batch))
    raise TypeError(
        f"default_collate: samples must be tensors, arrays, numbers, strings, dicts or sequences of them; "
        f"got {type(elem).__name__}"
    )
