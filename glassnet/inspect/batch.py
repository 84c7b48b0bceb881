"""StatsBatch: the arrays of one recorded step, copied end to end as they come, summarised together at its end.

A recorded step meets two dozen arrays (each layer's ``z``, ``a`` and ``dL/dz``, each parameter and its
gradient). Summarised one by one, each costs a dozen NumPy calls, and during training a call costs
microseconds whatever its size: the calls, not the arithmetic, were most of the Recorder's overhead.
A batch copies each small array into one buffer (one call; the copy also protects the statistics from a
later in-place change of the array), and ``flush`` runs ``summarize_many`` once per dtype. A large array
(over ``BATCH_LIMIT`` elements) is summarised when added, in place: its passes, not its calls, dominate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from glassnet.inspect.stats import TensorStats, summarize, summarize_many

# Arrays larger than this are summarised at once, in place, while they are still in cache: batching
# saves a dozen calls per array (tens of microseconds during training), copying costs one pass over it;
# past about this size the pass costs more (measured with benchmarks/bench_recorder.py).
BATCH_LIMIT = 16384


def _batchable(array) -> bool:
    return (
        isinstance(array, np.ndarray)
        and 0 < array.size <= BATCH_LIMIT
        and array.dtype.kind == "f"
        and array.itemsize >= 4
    )


@dataclass
class _Piece:
    order: int
    shape: tuple[int, ...]
    begin: int
    end: int
    bins: int
    activation: str | None
    percentiles: bool
    done: Callable[[TensorStats], None]


class _Group:
    """The pieces of one dtype and the buffer that holds them end to end (kept, and grown, across flushes)."""

    def __init__(self, dtype: np.dtype) -> None:
        self.buffer = np.empty(1 << 16, dtype)
        self.used = 0
        self.pieces: list[_Piece] = []

    def append(self, arrays) -> tuple[int, int]:
        """Copy the arrays in, end to end (one call); returns where they start and end in the buffer."""
        if not self.pieces:
            self.used = 0  # the first piece after a flush: reuse the buffer from its start
        begin = self.used
        end = begin + sum(array.size for array in arrays)
        if end > self.buffer.size:
            # Views handed out earlier keep the old buffer alive and unchanged: they stay valid.
            grown = np.empty(max(2 * self.buffer.size, end), self.buffer.dtype)
            grown[:begin] = self.buffer[:begin]
            self.buffer = grown
        if len(arrays) == 1:
            self.buffer[begin:end] = arrays[0].reshape(-1)
        else:
            np.concatenate([array.reshape(-1) for array in arrays], out=self.buffer[begin:end])
        self.used = end
        return begin, end


class StatsBatch:
    """Arrays to summarise together: ``add`` copies one in, ``flush`` summarises all and reports each.

    Example:
        >>> import numpy as np
        >>> batch, out = StatsBatch(), {}
        >>> _ = batch.add(np.array([3.0, 4.0]), lambda s: out.__setitem__("x", s.norm))
        >>> _ = batch.add(np.array([[0.0, 2.0]]), lambda s: out.__setitem__("y", s.frac_zero), bins=2)
        >>> batch.flush(); out
        {'x': 5.0, 'y': 0.5}
    """

    def __init__(self) -> None:
        self._groups: dict[np.dtype, _Group] = {}
        self._order = 0
        self._now: list[tuple[int, TensorStats, Callable]] = []  # summarised at once (large or odd arrays)

    @property
    def next_order(self) -> int:
        """The position the next array added will have in the order of ``flush``'s reports."""
        return self._order

    def __len__(self) -> int:
        return len(self._now) + sum(len(group.pieces) for group in self._groups.values())

    def add(
        self,
        array: np.ndarray,
        done: Callable[[TensorStats], None],
        *,
        bins: int = 0,
        activation: str | None = None,
        percentiles: bool = False,
    ) -> np.ndarray:
        """Copy ``array`` in; ``flush`` will call ``done(stats)`` (``summarize``'s options).

        Returns:
            The copy, flat: valid and unchanged until the first ``add`` after the next ``flush``.
        """
        if not _batchable(array):
            return self.add_many([array], [done], bins=bins, activation=activation, percentiles=percentiles)
        group = self._groups.get(array.dtype)
        if group is None:
            group = self._groups[array.dtype] = _Group(array.dtype)
        begin, end = group.append((array,))
        group.pieces.append(_Piece(self._order, array.shape, begin, end, bins, activation, percentiles, done))
        self._order += 1
        return group.buffer[begin:end]

    def add_many(
        self,
        arrays: list[np.ndarray],
        dones: list[Callable[[TensorStats], None]],
        *,
        bins: int = 0,
        activation: str | None = None,
        percentiles: bool = False,
    ) -> np.ndarray:
        """``add`` for several arrays with the same options, copied in by one call where they share a dtype.

        Returns:
            Their copies end to end (flat), valid as ``add``'s.
        """
        arrays = [np.asarray(array) for array in arrays]
        if not arrays:
            return np.zeros(0)
        dtype = arrays[0].dtype
        if (
            not all(_batchable(array) and array.dtype == dtype for array in arrays)
            or sum(array.size for array in arrays) > BATCH_LIMIT
        ):
            for array, done in zip(arrays, dones):  # one at a time: batched where it can be, else summarised now
                if _batchable(array):
                    self.add(array, done, bins=bins, activation=activation, percentiles=percentiles)
                else:
                    self._now.append((self._order, summarize(array, activation, bins, percentiles), done))
                    self._order += 1
            return np.concatenate([array.reshape(-1) for array in arrays])
        group = self._groups.get(dtype)
        if group is None:
            group = self._groups[dtype] = _Group(dtype)
        begin, end = group.append(arrays)
        start = begin
        for array, done in zip(arrays, dones):
            group.pieces.append(
                _Piece(self._order, array.shape, start, start + array.size, bins, activation, percentiles, done)
            )
            self._order += 1
            start += array.size
        return group.buffer[begin:end]

    def flush(self) -> None:
        """Summarise every array added since the last flush and call their ``done``, in the order added."""
        results = list(self._now)
        self._now = []
        for group in self._groups.values():
            pieces, group.pieces = group.pieces, []
            if not pieces:
                continue
            all_stats = summarize_many(
                group.buffer[: group.used],
                [piece.shape for piece in pieces],
                percentiles=[piece.percentiles for piece in pieces],
                bins=[piece.bins for piece in pieces],
                activations=[piece.activation for piece in pieces],
            )
            results.extend((piece.order, stats, piece.done) for piece, stats in zip(pieces, all_stats))
        results.sort(key=lambda result: result[0])
        for _, stats, done in results:
            done(stats)
