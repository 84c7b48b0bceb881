"""Splitting data: random_split of a dataset (as PyTorch) and a stratified train/test split of arrays."""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence

import numpy as np

from glassnet import _backend
from glassnet.autograd import GlassnetError
from glassnet.data.dataset import Subset
from glassnet.tensor import Tensor


def random_split(dataset, lengths: Sequence, generator: np.random.Generator | None = None) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random subsets of the given lengths, as PyTorch does.

    Args:
        dataset: the dataset to split.
        lengths: the subsets' sizes, as ints summing to ``len(dataset)``, or as fractions summing to
            1 (each ``floor(len * fraction)``, the remainder then handed out one by one from the first
            subset on, as PyTorch does).
        generator: a ``numpy.random.Generator`` for the permutation (glassnet's global generator,
            seeded by ``gn.manual_seed``, when None).

    Returns:
        One ``Subset`` per length.

    Example:
        >>> import glassnet as gn
        >>> train, val = gn.data.random_split(gn.data.TensorDataset(gn.arange(10)), [0.8, 0.2])
        >>> (len(train), len(val))
        (8, 2)
    """
    n = len(dataset)
    lengths = list(lengths)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        subset_lengths = []
        for i, fraction in enumerate(lengths):
            if not 0 <= fraction <= 1:
                raise GlassnetError(f"random_split: fraction at index {i} is not between 0 and 1: {fraction}")
            subset_lengths.append(math.floor(n * fraction))
        for i in range(n - sum(subset_lengths)):
            subset_lengths[i % len(subset_lengths)] += 1
        lengths = subset_lengths
        for i, length in enumerate(lengths):
            if length == 0:
                warnings.warn(f"random_split: length of split at index {i} is 0", stacklevel=2)
    if any(not isinstance(length, (int, np.integer)) or length < 0 for length in lengths):
        raise GlassnetError(f"random_split: lengths must be non-negative ints or fractions summing to 1, got {lengths}")
    if sum(lengths) != n:
        raise GlassnetError(f"random_split: lengths {lengths} sum to {sum(lengths)}, not len(dataset)={n}")
    rng = generator if generator is not None else _backend.default_generator()
    indices = rng.permutation(n).tolist()
    return [
        Subset(dataset, indices[offset - length : offset])
        for offset, length in zip(itertools.accumulate(lengths), lengths)
    ]


def _stratified_test_counts(counts: np.ndarray, n_test: int) -> np.ndarray:
    """Per-class test counts proportional to ``counts`` summing to ``n_test`` (largest remainders)."""
    ideal = counts * (n_test / counts.sum())
    test = np.floor(ideal).astype(np.int64)
    # Hand the missing samples to the classes with the largest remainders (ties: larger class first).
    order = np.lexsort((-counts, -(ideal - test)))
    for k in order[: n_test - test.sum()]:
        test[k] += 1
    return test


def train_test_split(
    x,
    y,
    test_size: float | int = 0.25,
    *,
    stratify: bool = True,
    seed: int | None = None,
    generator: np.random.Generator | None = None,
) -> tuple:
    """Split samples and labels into a shuffled training part and a test part.

    With ``stratify=True`` every class keeps (to within one sample) its share of the data in both
    parts, as scikit-learn's ``train_test_split(..., stratify=y)`` does.

    Args:
        x: the samples, an array or Tensor with the samples along the first dimension.
        y: the labels, an array or Tensor of length ``len(x)`` (integer classes for stratify).
        test_size: a fraction in (0, 1) (the test part has ``ceil(test_size * len(x))`` samples,
            as in scikit-learn) or a number of samples.
        stratify: keep the class proportions of ``y`` in both parts.
        seed: seed of the draw; glassnet's global generator (``gn.manual_seed``) when None.
        generator: a ``numpy.random.Generator`` to draw from instead of ``seed``.

    Returns:
        ``(x_train, x_test, y_train, y_test)``, Tensors where the inputs were Tensors, else arrays.

    Example:
        >>> import numpy as np
        >>> import glassnet as gn
        >>> x, y = np.arange(20).reshape(10, 2), np.array([0] * 5 + [1] * 5)
        >>> x_train, x_test, y_train, y_test = gn.data.train_test_split(x, y, test_size=0.2, seed=0)
        >>> (x_train.shape, sorted(y_test.tolist()))
        ((8, 2), [0, 1])
    """
    x_array = x.data if isinstance(x, Tensor) else np.asarray(x)
    y_array = y.data if isinstance(y, Tensor) else np.asarray(y)
    if x_array.ndim == 0 or y_array.ndim == 0 or x_array.shape[0] != y_array.shape[0]:
        raise GlassnetError(
            f"train_test_split: x and y need the same first dimension, got shapes {x_array.shape} and {y_array.shape}"
        )
    n = x_array.shape[0]
    if isinstance(test_size, (int, np.integer)) and not isinstance(test_size, bool):
        n_test = int(test_size)
    elif isinstance(test_size, float) and 0 < test_size < 1:
        n_test = math.ceil(test_size * n)
    else:
        raise GlassnetError(f"train_test_split: test_size must be a fraction in (0, 1) or an int, got {test_size!r}")
    if not 0 < n_test < n:
        raise GlassnetError(f"train_test_split: test_size={test_size!r} leaves an empty part of {n} samples")
    if generator is not None and seed is not None:
        raise GlassnetError("train_test_split: pass either generator or seed, not both")
    rng = generator or (np.random.default_rng(seed) if seed is not None else _backend.default_generator())
    if stratify:
        if y_array.ndim != 1:
            raise GlassnetError(f"train_test_split: stratify needs 1-d labels, got shape {y_array.shape}")
        classes, class_of, counts = np.unique(y_array, return_inverse=True, return_counts=True)
        test_counts = _stratified_test_counts(counts, n_test)
        test_parts, train_parts = [], []
        for k in range(len(classes)):
            members = rng.permutation(np.flatnonzero(class_of == k))
            test_parts.append(members[: test_counts[k]])
            train_parts.append(members[test_counts[k] :])
        test_index = rng.permutation(np.concatenate(test_parts))
        train_index = rng.permutation(np.concatenate(train_parts))
    else:
        order = rng.permutation(n)
        test_index, train_index = order[:n_test], order[n_test:]

    def take(array, index, like):
        part = array[index]
        return Tensor(part) if isinstance(like, Tensor) else part

    return (
        take(x_array, train_index, x),
        take(x_array, test_index, x),
        take(y_array, train_index, y),
        take(y_array, test_index, y),
    )
