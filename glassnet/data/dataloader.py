"""DataLoader: batches of a dataset, shuffled reproducibly, with a state to resume an epoch exactly."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from glassnet import _backend
from glassnet.autograd import GlassnetError
from glassnet.data.collate import default_collate
from glassnet.data.dataset import array_source
from glassnet.tensor import Tensor

_STATE_KEYS = (
    "batch_size",
    "shuffle",
    "drop_last",
    "dataset_length",
    "batches_yielded",
    "epoch_rng_state",
    "generator_state",
)


def _generator_from_state(state: dict) -> np.random.Generator:
    """A new Generator whose bit generator has ``state`` (a NumPy bit-generator state dict)."""
    name = state.get("bit_generator") if isinstance(state, dict) else None
    bit_generator_class = getattr(np.random, name, None) if isinstance(name, str) else None
    if bit_generator_class is None or not isinstance(bit_generator_class, type):
        raise GlassnetError(f"DataLoader.load_state_dict: not a NumPy bit-generator state: {state!r:.200}")
    bit_generator = bit_generator_class()
    bit_generator.state = state
    return np.random.Generator(bit_generator)


class DataLoader:
    """Iterate over a dataset in batches, as ``torch.utils.data.DataLoader`` does (in one process).

    Each iteration is one epoch. A batch is a tuple of glassnet Tensors (dtypes kept: int64 labels
    stay int64). An array-backed dataset (TensorDataset, a Subset of one, or any dataset exposing
    ``arrays``; see ``glassnet.data.dataset``) is batched by one fancy-indexing call per array;
    other datasets are read sample by sample and merged by ``collate_fn``.

    The shuffle order of each epoch is drawn from ``generator`` if given, else from a generator
    seeded with ``seed``, else from glassnet's global generator, so that ``gn.manual_seed(s)``
    makes the order reproducible.

    Resuming: ``state_dict()`` records the position in the current epoch (batches yielded) and the
    state the permutation generator had just before the epoch's order was drawn.
    ``load_state_dict(state)`` on a fresh loader makes its next iteration yield the remaining
    batches of that epoch, in the same order, without touching the global generator (restore that
    with ``gn.set_rng_state``, as a checkpoint does). With ``seed=``, the loader's own generator
    is saved and restored too. A state saved at the end of an epoch resumes with a fresh epoch.
    The position tracked is that of the most recently started iteration.

    Args:
        dataset: a map-style dataset (``len`` and ``dataset[i]``).
        batch_size: samples per batch.
        shuffle: draw a new order of the samples at each epoch.
        collate_fn: merges a list of samples into a batch (``default_collate`` when None). When it
            is given, samples are read one by one even from an array-backed dataset.
        drop_last: drop the last batch when it is smaller than ``batch_size``.
        generator: a ``numpy.random.Generator`` to draw the shuffle order from.
        seed: seed of a generator owned by this loader (instead of ``generator``).

    Example:
        >>> import glassnet as gn
        >>> ds = gn.data.TensorDataset(gn.randn(10, 3), gn.arange(10))
        >>> loader = gn.data.DataLoader(ds, batch_size=4, shuffle=True, seed=0)
        >>> [tuple(x.shape) for x, y in loader]
        [(4, 3), (4, 3), (2, 3)]
        >>> len(loader)
        3
    """

    def __init__(
        self,
        dataset,
        batch_size: int = 1,
        shuffle: bool = False,
        *,
        collate_fn: Callable | None = None,
        drop_last: bool = False,
        generator: np.random.Generator | None = None,
        seed: int | None = None,
    ) -> None:
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size <= 0:
            raise GlassnetError(f"DataLoader: batch_size must be a positive integer, got {batch_size!r}")
        if generator is not None and not isinstance(generator, np.random.Generator):
            raise TypeError(f"DataLoader: generator must be a numpy.random.Generator, got {type(generator).__name__}")
        if generator is not None and seed is not None:
            raise GlassnetError("DataLoader: pass either generator or seed, not both")
        if seed is not None and (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool)):
            raise TypeError(f"DataLoader: seed must be an integer, got {type(seed).__name__}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.collate_fn = collate_fn
        self.generator = generator
        self._own_generator = None if seed is None else np.random.default_rng(int(seed))
        self._batches_yielded = 0
        self._epoch_rng_state = None
        self._resume = False

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _rng(self) -> np.random.Generator:
        """The generator the next epoch's order is drawn from (looked up now: manual_seed replaces it)."""
        if self.generator is not None:
            return self.generator
        if self._own_generator is not None:
            return self._own_generator
        return _backend.default_generator()

    def __iter__(self):
        n = len(self.dataset)
        source = array_source(self.dataset) if self.collate_fn is None else None
        resume = self._resume and 0 < self._batches_yielded < len(self)
        self._resume = False
        order = None
        if self.shuffle:
            if resume:
                order = _generator_from_state(self._epoch_rng_state).permutation(n)
            else:
                rng = self._rng()
                self._epoch_rng_state = rng.bit_generator.state
                order = rng.permutation(n)
        start_batch = self._batches_yielded if resume else 0
        self._batches_yielded = start_batch
        if source is not None:
            arrays, rows = source
            if rows is not None:
                order = rows if order is None else rows[order]
        for batch in range(start_batch, len(self)):
            start = batch * self.batch_size
            stop = min(start + self.batch_size, n)
            if source is not None:
                if order is None:
                    out = tuple(Tensor(a[start:stop].copy()) for a in arrays)
                else:
                    indices = order[start:stop]
                    out = tuple(Tensor(a[indices]) for a in arrays)
            else:
                indices = range(start, stop) if order is None else order[start:stop].tolist()
                out = self._collate(list(indices))
            self._batches_yielded = batch + 1
            yield out

    def _collate(self, indices: list):
        getitems = getattr(self.dataset, "__getitems__", None)
        samples = getitems(indices) if getitems is not None else [self.dataset[i] for i in indices]
        return (self.collate_fn or default_collate)(samples)

    def state_dict(self) -> dict:
        """The loader's position: batches yielded in the current epoch and the generator states.

        Returns:
            A dict of plain Python values (the generator states hold big ints), safe to put in a
            checkpoint with ``glassnet.io.save``.

        Example:
            >>> import glassnet as gn
            >>> loader = gn.data.DataLoader(gn.data.TensorDataset(gn.arange(6)), batch_size=2, shuffle=True, seed=1)
            >>> it = iter(loader); first = next(it)
            >>> loader.state_dict()["batches_yielded"]
            1
        """
        return {
            "batch_size": self.batch_size,
            "shuffle": self.shuffle,
            "drop_last": self.drop_last,
            "dataset_length": len(self.dataset),
            "batches_yielded": self._batches_yielded,
            "epoch_rng_state": self._epoch_rng_state,
            "generator_state": None if self._own_generator is None else self._own_generator.bit_generator.state,
        }

    def load_state_dict(self, state_dict: dict) -> None:
        """Resume from ``state_dict()``: the next iteration yields the rest of the saved epoch.

        Args:
            state_dict: a state returned by ``state_dict()`` of a loader over the same dataset with
                the same batch_size, shuffle and drop_last.

        Example:
            >>> import glassnet as gn
            >>> ds = gn.data.TensorDataset(gn.arange(6))
            >>> a = gn.data.DataLoader(ds, batch_size=2, shuffle=True, seed=1)
            >>> it = iter(a); _ = next(it); state = a.state_dict(); rest = [y.tolist() for (y,) in it]
            >>> b = gn.data.DataLoader(ds, batch_size=2, shuffle=True, seed=1)
            >>> b.load_state_dict(state)
            >>> [y.tolist() for (y,) in b] == rest
            True
        """
        if not isinstance(state_dict, dict) or set(state_dict) != set(_STATE_KEYS):
            got = sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict).__name__
            raise GlassnetError(f"DataLoader.load_state_dict: expected keys {sorted(_STATE_KEYS)}, got {got}")
        mine = self.state_dict()
        for key in ("batch_size", "shuffle", "drop_last", "dataset_length"):
            if state_dict[key] != mine[key]:
                raise GlassnetError(
                    f"DataLoader.load_state_dict: the state was saved with {key}={state_dict[key]!r}, "
                    f"this loader has {key}={mine[key]!r}; the batch order would not match"
                )
        batches = state_dict["batches_yielded"]
        if not isinstance(batches, int) or not 0 <= batches <= len(self):
            raise GlassnetError(
                f"DataLoader.load_state_dict: batches_yielded must be an int in [0, {len(self)}], got {batches!r}"
            )
        if self.shuffle and 0 < batches < len(self):
            _generator_from_state(state_dict["epoch_rng_state"])  # validate now, not at the next epoch
        if state_dict["generator_state"] is not None:
            if self._own_generator is None:
                raise GlassnetError(
                    "DataLoader.load_state_dict: the state holds a seeded generator's state but this loader "
                    "has no seed; construct it with seed=..."
                )
            self._own_generator = _generator_from_state(state_dict["generator_state"])
        self._batches_yielded = batches
        self._epoch_rng_state = state_dict["epoch_rng_state"]
        self._resume = True
