"""Summary statistics of one array (a pre-activation, an activation, a gradient, a parameter, an update).

A ``TensorStats`` holds a handful of numbers and a small histogram, never the array itself, so that a
Recorder's memory grows with the number of recorded steps and layers, not with the size of the model.

``summarize`` runs on the recorded steps of a training run, so it makes as few passes over the array as
it can: one minimum and one maximum (which also tell whether anything is NaN or infinite), one sum, one
centred dot product (std, and the norm without cancellation), one ``|x|`` pass, one ``x == 0`` count; it
skips the passes that the range already answers (no zeros when the range excludes 0, ``mean |x| = mean``
when nothing is negative), and the histogram is one bincount of a computed bin index.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from glassnet.autograd import GlassnetError

# Activation kinds whose output can saturate, with the test for "saturated": the derivative is then
# below about 0.02 (sigmoid: a(1-a) < 0.0099 outside [0.01, 0.99]; tanh: 1-a^2 < 0.0199 for |a| > 0.99).
SATURATING = ("sigmoid", "tanh")
SATURATION_MARGIN = 0.01
PERCENTILE_SAMPLE = 4096
PERCENTILES = (0.5, 0.9, 0.99)
# Above this magnitude a float32 (or float16) array is summed in float64: its sum of squares could overflow.
UPCAST_ABOVE = 1e15
# E[x^2] - E[x]^2 is recomputed from centred values when it is below this fraction of E[x^2] (float32 sums
# carry about 1e-6 relative error, so the variance then keeps at least 4 or 5 digits).
CANCELLATION = 0.1
# From this many values on, histograms count byte-sized bin indices two at a time (see histogram_counts).
PAIRED_BINCOUNT = 8192


class Scratch(threading.local):
    """Scratch arrays kept from one call to the next, one per purpose (and per thread).

    A temporary array of 128 KiB or more is mapped afresh by the C allocator at every call, and the page
    faults of filling it cost as much as the arithmetic; the statistics of a recorded step would pay them
    a dozen times. Arrays above ``limit`` bytes are not kept (NumPy backs those with huge pages anyway).

    Example:
        >>> import numpy as np
        >>> Scratch().get("abs", 3, np.float32).shape
        (3,)
    """

    def __init__(self, limit: int = 8 << 20) -> None:
        self.limit = limit
        self.buffers: dict[str, np.ndarray] = {}

    def get(self, purpose: str, size: int, dtype) -> np.ndarray:
        """A 1-D array of ``size`` elements of ``dtype`` (uninitialised), reused by the next call for ``purpose``."""
        dtype = np.dtype(dtype)
        nbytes = size * dtype.itemsize
        if nbytes > self.limit:
            return np.empty(size, dtype)
        buffer = self.buffers.get(purpose)
        if buffer is None or buffer.size < nbytes:
            buffer = self.buffers[purpose] = np.empty(nbytes, np.uint8)
        return buffer[:nbytes].view(dtype)


_scratch = Scratch()


def _count(compare, flat: np.ndarray, value: float) -> int:
    """How many elements satisfy ``compare(flat, value)`` (np.equal, np.less, ...), without a new mask."""
    return int(np.count_nonzero(compare(flat, value, out=_scratch.get("mask", flat.size, np.bool_))))


@dataclass(slots=True)
class TensorStats:
    """Statistics of one array at one recorded step.

    Attributes:
        shape: the array's shape.
        mean, std, min, max: over the finite elements.
        norm: the Euclidean (Frobenius) norm; ``rms`` is ``norm / sqrt(size)``.
        mean_abs: the mean of the absolute values.
        frac_zero: the fraction of elements exactly 0 (a ReLU's inactive units).
        frac_saturated: for a sigmoid or tanh output, the fraction in its flat tails; else None.
        frac_dead_units: for a ReLU output, the fraction of units (features or channels) that are 0 for
            every sample of the batch; else None.
        nonfinite: how many elements are NaN or infinite.
        percentiles: the 50th, 90th and 99th percentiles of ``|x|`` (for parameter gradients), or None:
            nearest-rank percentiles of ``|x[::k]|`` with ``k = ceil(size / PERCENTILE_SAMPLE)``, that is
            exact up to ``PERCENTILE_SAMPLE`` elements and estimated from at most that many evenly spaced
            elements beyond.
        hist_counts: a histogram of the finite values (``bins`` counts; ``hist_edges`` gives the ``bins + 1``
            edges), as ``np.histogram(x, bins)`` except that a value within a rounding error of an inner
            edge may be counted in the bin on the other side of it.
    """

    shape: tuple
    mean: float
    std: float
    min: float
    max: float
    norm: float
    rms: float
    mean_abs: float
    frac_zero: float
    frac_saturated: float | None = None
    frac_dead_units: float | None = None
    nonfinite: int = 0
    percentiles: tuple[float, float, float] | None = None
    hist_counts: np.ndarray | None = None

    @property
    def hist_edges(self) -> np.ndarray | None:
        """The histogram's ``bins + 1`` edges: ``np.linspace(min, max, bins + 1)`` (computed when read)."""
        if self.hist_counts is None:
            return None
        return histogram_edges(self.min, self.max, len(self.hist_counts))


def summarize(x: np.ndarray, activation: str | None = None, bins: int = 0, percentiles: bool = False) -> TensorStats:
    """Summarise an array.

    Args:
        x: the array (any shape; a batch first for activations).
        activation: the kind of activation that produced ``x`` ("relu", "sigmoid", "tanh", ...), which
            decides whether ``frac_saturated`` and ``frac_dead_units`` are computed.
        bins: the number of histogram bins (0: no histogram).
        percentiles: compute the 50/90/99th percentiles of ``|x|`` (see ``TensorStats.percentiles``).

    Returns:
        The statistics; the array is not kept.

    Example:
        >>> import numpy as np
        >>> s = summarize(np.array([[0.0, 1.0], [0.0, 3.0]]), activation="relu")
        >>> (s.mean, s.frac_zero, s.frac_dead_units)
        (1.0, 0.5, 0.5)
    """
    x = np.asarray(x)
    flat = x.reshape(-1)
    if flat.size == 0:
        return TensorStats(x.shape, *([float("nan")] * 7), frac_zero=0.0)
    if flat.dtype.kind != "f" or flat.itemsize < 4:
        flat = flat.astype(np.float64)  # integers, booleans, float16: statistics in float64
    lo, hi = float(np.minimum.reduce(flat)), float(np.maximum.reduce(flat))
    nonfinite = 0
    if not math.isfinite(hi - lo):  # a NaN or an infinity somewhere (the two reductions found it)
        flat = flat[np.isfinite(flat)]
        nonfinite = x.size - flat.size
        if flat.size == 0:
            nan = float("nan")
            return TensorStats(x.shape, nan, nan, nan, nan, nan, nan, nan, 0.0, nonfinite=nonfinite)
        lo, hi = float(np.minimum.reduce(flat)), float(np.maximum.reduce(flat))
    if flat.dtype != np.float64 and max(-lo, hi) > UPCAST_ABOVE:
        flat = flat.astype(np.float64)
    size = flat.size
    mean = float(np.add.reduce(flat)) / size
    square_sum = float(np.dot(flat, flat))
    abs_flat = None  # |x|, computed only where the range does not give it
    if lo >= 0.0:
        abs_flat, abs_sum = flat, mean * size
    elif hi <= 0.0:
        abs_sum = -mean * size
    else:
        abs_flat = np.abs(flat, out=_scratch.get("abs", size, flat.dtype))
        abs_sum = float(np.add.reduce(abs_flat))
    zeros = 0 if lo > 0.0 or hi < 0.0 else _count(np.equal, flat, 0.0)
    stats = _assemble(x.shape, size, lo, hi, mean * size, square_sum, abs_sum, zeros, flat)
    stats.nonfinite = nonfinite
    if percentiles:
        stats.percentiles = abs_percentiles(flat) if abs_flat is None else abs_percentiles(abs_flat, absolute=True)
    _extras(stats, flat, x.shape if not nonfinite else None, lo, hi, activation, bins)
    return stats


def _extras(stats: TensorStats, flat: np.ndarray, shape, lo: float, hi: float, activation, bins: int) -> None:
    """Saturation, dead units (``shape`` given: ``flat`` holds every element) and the histogram, in place."""
    size = flat.size
    if activation in SATURATING:
        low_tail = (0.0 if activation == "sigmoid" else -1.0) + SATURATION_MARGIN
        high_tail = 1.0 - SATURATION_MARGIN
        saturated = _count(np.less, flat, low_tail) if lo < low_tail else 0
        saturated += _count(np.greater, flat, high_tail) if hi > high_tail else 0
        stats.frac_saturated = saturated / size
    if activation == "relu" and shape is not None and len(shape) >= 2:
        stats.frac_dead_units = dead_unit_fraction(flat.reshape(shape), nonnegative=lo >= 0.0)
    if bins:
        stats.hist_counts = histogram_counts(flat, bins, lo, hi)


def summarize_many(
    flat: np.ndarray,
    shapes: Sequence[tuple[int, ...]],
    percentiles: bool | Sequence[bool] = False,
    bins: int | Sequence[int] = 0,
    activations: Sequence[str | None] | None = None,
) -> list[TensorStats]:
    """Summarise several arrays laid end to end in one 1-D array, as ``summarize`` does each of them.

    Each NumPy pass runs once over the whole concatenation (``ufunc.reduceat`` gives one value per
    piece), so that a recorded step's two dozen arrays (parameters, gradients, ``z``, ``a``, ``dL/dz``)
    cost about a dozen calls instead of a dozen each; only histograms, percentiles and dead units are
    computed piece by piece. A piece with a NaN or an infinity is summarised on its own.

    Args:
        flat: the pieces, flattened and concatenated (``np.concatenate([a.reshape(-1) for a in arrays])``).
        shapes: each piece's shape, in order; their sizes must add up to ``flat.size``.
        percentiles: compute the 50/90/99th percentiles of ``|x|``: for all pieces, or one flag per piece.
        bins: histogram bins (0: none): for all pieces, or one number per piece.
        activations: the activation kind of each piece (see ``summarize``), or None.

    Returns:
        One ``TensorStats`` per piece, equal to ``summarize(piece.reshape(shape), ...)`` up to rounding.

    Example:
        >>> import numpy as np
        >>> [s.norm for s in summarize_many(np.array([3.0, 4.0, 0.0, -2.0]), [(2,), (1, 2)])]
        [5.0, 2.0]
    """
    count = len(shapes)
    sizes = [math.prod(shape) for shape in shapes]
    if sum(sizes) != flat.size or flat.ndim != 1:
        raise GlassnetError(
            f"summarize_many: pieces of shapes {list(shapes)} hold {sum(sizes)} elements, "
            f"but flat has shape {flat.shape}"
        )
    percentiles = [percentiles] * count if isinstance(percentiles, bool) else list(percentiles)
    bins = [bins] * count if isinstance(bins, int) else list(bins)
    activations = [None] * count if activations is None else list(activations)
    if not (len(percentiles) == len(bins) == len(activations) == count):
        raise GlassnetError(
            f"summarize_many: {count} shapes, but options for {len(percentiles)}, {len(bins)}, {len(activations)}"
        )
    offsets = [0, *itertools.accumulate(sizes)]
    if 0 in sizes or flat.dtype.kind != "f" or flat.itemsize < 4:
        return [
            summarize(flat[offsets[i] : offsets[i + 1]].reshape(shapes[i]), activations[i], bins[i], percentiles[i])
            for i in range(count)
        ]
    starts = np.array(offsets[:-1], dtype=np.intp)
    lows = np.minimum.reduceat(flat, starts).tolist()
    highs = np.maximum.reduceat(flat, starts).tolist()
    if flat.dtype != np.float64 and max(-min(lows), max(highs)) > UPCAST_ABOVE:
        flat = flat.astype(np.float64)  # (NaN compares False: a NaN piece is redone below anyway)
    size = flat.size
    sums = np.add.reduceat(flat, starts).tolist()
    # Pairwise sums of squares (as np.sum), not float32 dot products: no drift on long pieces.
    square_sums = np.add.reduceat(np.square(flat, out=_scratch.get("square", size, flat.dtype)), starts).tolist()
    abs_flat = np.abs(flat, out=_scratch.get("abs", size, flat.dtype))
    abs_sums = np.add.reduceat(abs_flat, starts).tolist()
    is_zero = np.equal(flat, 0.0, out=_scratch.get("mask", size, np.bool_))
    zeros = np.add.reduceat(is_zero.view(np.uint8), starts, dtype=np.int32).tolist()  # (int32: a fast cast)
    result: list[TensorStats | None] = []
    for i, shape in enumerate(shapes):
        begin, end, lo, hi = offsets[i], offsets[i + 1], lows[i], highs[i]
        if not math.isfinite(hi - lo):
            result.append(None)  # redone on its own below, once the scratch arrays are no longer needed
            continue
        piece = flat[begin:end]
        stats = _assemble(shape, sizes[i], lo, hi, sums[i], square_sums[i], abs_sums[i], zeros[i], piece)
        _extras(stats, piece, shape, lo, hi, activations[i], bins[i])
        if percentiles[i]:
            stats.percentiles = abs_percentiles(abs_flat[begin:end], absolute=True)
        result.append(stats)
    for i, stats in enumerate(result):
        if stats is None:
            piece = flat[offsets[i] : offsets[i + 1]].reshape(shapes[i])
            result[i] = summarize(piece, activations[i], bins[i], percentiles[i])
    return result


def piece_norms(flat: np.ndarray, shapes: Sequence[tuple[int, ...]]) -> list[float]:
    """The Euclidean norm of each piece of ``flat`` (arrays of ``shapes`` laid end to end), one dot product each.

    Example:
        >>> import numpy as np
        >>> piece_norms(np.array([3.0, 4.0, 1.0]), [(2,), (1,), (0,)])
        [5.0, 1.0, 0.0]
    """
    sizes = [math.prod(shape) for shape in shapes]
    if sum(sizes) != flat.size or flat.ndim != 1:
        raise GlassnetError(
            f"piece_norms: pieces of shapes {list(shapes)} hold {sum(sizes)} elements, but flat has shape {flat.shape}"
        )
    norms, begin = [], 0
    for size in sizes:
        piece = flat[begin : begin + size]
        norms.append(math.sqrt(float(np.dot(piece, piece))))  # as np.linalg.norm, without its checks
        begin += size
    return norms


def _assemble(shape, size, lo, hi, total, square_sum, abs_sum, zeros, flat) -> TensorStats:
    """The moments from the sums; the variance again from centred values where E[x^2] - E[x]^2 cancels."""
    mean = total / size
    variance = square_sum / size - mean * mean
    if variance < CANCELLATION * square_sum / size:  # |mean| close to the rms: most digits of E[x^2] cancel
        centred = flat - mean
        variance = float(np.dot(centred, centred)) / size
    norm = math.sqrt(square_sum)
    return TensorStats(
        tuple(shape),
        mean,
        math.sqrt(max(variance, 0.0)),
        lo,
        hi,
        norm,
        norm / math.sqrt(size),
        abs_sum / size,
        zeros / size,
    )


def abs_percentiles(flat: np.ndarray, sample: int = PERCENTILE_SAMPLE, absolute: bool = False) -> tuple[float, ...]:
    """Nearest-rank 50/90/99th percentiles of ``|flat[::k]|``, ``k = ceil(size / sample)`` (exact up to ``sample``).

    A strided subsample instead of the whole array: a full sort of a large gradient would cost more than
    all its other statistics together, and 4096 evenly spaced elements put the 99th percentile within
    about 0.2 percentile points. The sample is sorted rather than partitioned: NumPy's vectorised sort
    beats the branchy selection of ``np.partition`` with three ranks once the branch predictor has been
    busy elsewhere, as it is during training.

    Args:
        flat: a 1-D array of finite values.
        sample: the most elements looked at.
        absolute: ``flat`` holds absolute values already.

    Example:
        >>> import numpy as np
        >>> abs_percentiles(-np.arange(101.0))
        (50.0, 90.0, 99.0)
    """
    values = flat[:: -(-flat.size // sample)]
    values = values.copy() if absolute else np.abs(values)  # sorted in place below
    values.sort()
    last = values.size - 1
    return tuple(values[[round(q * last) for q in PERCENTILES]].tolist())


def histogram(flat: np.ndarray, bins: int, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """``np.histogram(flat, bins, range=(lo, hi))`` of finite values within ``[lo, hi]``, by one bincount.

    Several times faster than ``np.histogram``, which corrects each index against the edges: here a value
    within a rounding error of an inner edge may land in the bin on the other side of it.

    Args:
        flat: the values, 1-D, all within ``[lo, hi]``.
        bins: the number of bins.
        lo, hi: the range; ``lo == hi`` becomes ``(lo - 0.5, hi + 0.5)`` as in NumPy.

    Returns:
        ``(counts, edges)``: ``bins`` int64 counts and ``bins + 1`` float64 edges.

    Example:
        >>> import numpy as np
        >>> histogram(np.array([0.0, 0.5, 1.0, 1.0]), 2, 0.0, 1.0)[0]
        array([1, 3])
    """
    return histogram_counts(flat, bins, lo, hi), histogram_edges(lo, hi, bins)


def histogram_counts(flat: np.ndarray, bins: int, lo: float, hi: float) -> np.ndarray:
    """The counts of ``histogram`` alone (the edges follow from ``lo``, ``hi`` and ``bins``)."""
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    size = flat.size
    scaled = np.subtract(flat, lo, out=_scratch.get("scaled", size, flat.dtype))
    if size < PAIRED_BINCOUNT or bins > 255:
        index = _scratch.get("index", size, np.intp)
        np.multiply(scaled, bins / (hi - lo), out=index, casting="unsafe")  # in [0, bins], truncated
        counts = np.bincount(index, minlength=bins + 1)
    else:
        # One byte per index, counted two at a time: the bytes of a pair read as one uint16 are
        # i + 256 j, so one bincount over size/2 numbers gives a (j, i) table whose two marginals add up
        # to the counts. Half the increments, and fewer of them wait on the one before (neighbouring
        # values often share a bin).
        index = _scratch.get("index", size, np.uint8)
        np.multiply(scaled, bins / (hi - lo), out=index, casting="unsafe")
        even = size - size % 2
        table = np.bincount(index[:even].view(np.uint16), minlength=256 * (bins + 1)).reshape(-1, 256)
        counts = table[:, : bins + 1].sum(axis=0) + table.sum(axis=1)
        if even < size:
            counts[index[-1]] += 1
    if counts.size > bins + 1:  # rounding past the maximum (only with a huge number of bins)
        counts[bins] += counts[bins + 1 :].sum()
    counts[bins - 1] += counts[bins]  # the maximum joins the last bin, as in np.histogram
    return counts[:bins]


def histogram_edges(lo: float, hi: float, bins: int) -> np.ndarray:
    """The ``bins + 1`` edges of ``histogram(flat, bins, lo, hi)``.

    Example:
        >>> histogram_edges(0.0, 1.0, 4).tolist()
        [0.0, 0.25, 0.5, 0.75, 1.0]
    """
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, bins + 1)


def dead_unit_fraction(a: np.ndarray, nonnegative: bool = False) -> float:
    """The fraction of units that output 0 for every sample: features of (N, F), channels of (N, C, H, W).

    Args:
        a: the activations, the batch first and the units second.
        nonnegative: ``a`` has no negative value (a ReLU's output): a unit is dead when its maximum is 0,
            one reduction without a boolean copy.

    Example:
        >>> import numpy as np
        >>> round(dead_unit_fraction(np.array([[0.0, 2.0, 0.0], [0.0, 1.0, 3.0]])), 4)
        0.3333
    """
    axes = (0, *range(2, a.ndim))  # every axis but the units'
    alive = np.maximum.reduce(a, axis=axes) if nonnegative else np.logical_or.reduce(a != 0, axis=axes)
    return float(1.0 - np.count_nonzero(alive) / a.shape[1])
