"""Summary statistics of one array (a pre-activation, an activation, a gradient, a parameter, an update).

A ``TensorStats`` holds a handful of numbers and a small histogram, never the array itself, so that a
Recorder's memory grows with the number of recorded steps and layers, not with the size of the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Activation kinds whose output can saturate, with the test for "saturated": the derivative is then
# below about 0.02 (sigmoid: a(1-a) < 0.0099 outside [0.01, 0.99]; tanh: 1-a^2 < 0.0199 for |a| > 0.99).
SATURATING = ("sigmoid", "tanh")
SATURATION_MARGIN = 0.01
PERCENTILE_SAMPLE = 4096


@dataclass
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
        percentiles: the 50th, 90th and 99th percentiles of ``|x|`` (for parameter gradients), or None;
            estimated from at most ``PERCENTILE_SAMPLE`` evenly spaced elements.
        hist_counts, hist_edges: a histogram of the finite values (``bins`` counts, ``bins + 1`` edges).
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
    hist_edges: np.ndarray | None = None


def summarize(x: np.ndarray, activation: str | None = None, bins: int = 0, percentiles: bool = False) -> TensorStats:
    """Summarise an array.

    Args:
        x: the array (any shape; a batch first for activations).
        activation: the kind of activation that produced ``x`` ("relu", "sigmoid", "tanh", ...), which
            decides whether ``frac_saturated`` and ``frac_dead_units`` are computed.
        bins: the number of histogram bins (0: no histogram).
        percentiles: compute the 50/90/99th percentiles of ``|x|``.

    Returns:
        The statistics; the array is not kept.

    Example:
        >>> import numpy as np
        >>> s = summarize(np.array([[0.0, 1.0], [0.0, 3.0]]), activation="relu")
        >>> (s.mean, s.frac_zero, s.frac_dead_units)
        (1.0, 0.5, 0.5)
    """
    x = np.asarray(x)
    size = x.size
    if size == 0:
        return TensorStats(x.shape, *([float("nan")] * 7), frac_zero=0.0)
    finite_mask = None
    nonfinite = 0
    values = x
    if x.dtype.kind == "f" and not np.isfinite(x.max() - x.min()):  # one cheap pass finds NaN and inf
        finite_mask = np.isfinite(x)
        nonfinite = int(size - np.count_nonzero(finite_mask))
        values = x[finite_mask]
        if values.size == 0:
            nan = float("nan")
            return TensorStats(x.shape, nan, nan, nan, nan, nan, nan, nan, 0.0, nonfinite=nonfinite)
    flat = values.reshape(-1)
    lo, hi = float(flat.min()), float(flat.max())
    if flat.dtype != np.float64 and max(abs(lo), abs(hi)) > 1e18:
        flat = flat.astype(np.float64)  # a float32 sum of squares would overflow
    size = flat.size
    mean = float(np.add.reduce(flat, dtype=np.float64)) / size
    sq = float(np.dot(flat, flat))
    norm = float(np.sqrt(sq))
    abs_flat = np.abs(flat)
    stats = TensorStats(
        shape=tuple(x.shape),
        mean=mean,
        std=float(np.sqrt(max(sq / size - mean * mean, 0.0))),
        min=lo,
        max=hi,
        norm=norm,
        rms=norm / np.sqrt(size),
        mean_abs=float(np.add.reduce(abs_flat, dtype=np.float64)) / size,
        frac_zero=1.0 - int(np.count_nonzero(flat)) / size,
        nonfinite=nonfinite,
    )
    if activation in SATURATING:
        lower = 0.0 if activation == "sigmoid" else -1.0
        stats.frac_saturated = float(
            np.count_nonzero((flat < lower + SATURATION_MARGIN) | (flat > 1.0 - SATURATION_MARGIN)) / flat.size
        )
    if activation == "relu" and finite_mask is None and x.ndim >= 2:
        stats.frac_dead_units = dead_unit_fraction(x)
    if percentiles:
        # Estimated from at most PERCENTILE_SAMPLE evenly spaced elements: exact for small arrays, and a
        # full sort of a large one would cost more than the rest of the statistics together.
        sample = abs_flat[:: max(abs_flat.size // PERCENTILE_SAMPLE, 1)]
        ranks = [round(q * (sample.size - 1)) for q in (0.5, 0.9, 0.99)]  # nearest rank
        stats.percentiles = tuple(float(v) for v in np.partition(sample, ranks)[ranks])
    if bins:
        stats.hist_counts, stats.hist_edges = histogram(flat, bins, lo, hi)
    return stats


def histogram(flat: np.ndarray, bins: int, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """``np.histogram(flat, bins, range=(lo, hi))`` for finite values, by one bincount (several times faster).

    Example:
        >>> import numpy as np
        >>> histogram(np.array([0.0, 0.5, 1.0, 1.0]), 2, 0.0, 1.0)[0]
        array([1, 3])
    """
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    index = ((flat - lo) * (bins / (hi - lo))).astype(np.intp)
    np.clip(index, 0, bins - 1, out=index)  # the maximum falls in the last bin, as in np.histogram
    return np.bincount(index, minlength=bins), np.linspace(lo, hi, bins + 1)


def dead_unit_fraction(a: np.ndarray) -> float:
    """The fraction of units that output 0 for every sample: features of (N, F), channels of (N, C, H, W).

    Example:
        >>> import numpy as np
        >>> round(dead_unit_fraction(np.array([[0.0, 2.0, 0.0], [0.0, 1.0, 3.0]])), 4)
        0.3333
    """
    units = np.moveaxis(a, 1, 0).reshape(a.shape[1], -1)  # (units, N * spatial)
    alive = np.count_nonzero(units.any(axis=1))
    return float(1.0 - alive / a.shape[1])
