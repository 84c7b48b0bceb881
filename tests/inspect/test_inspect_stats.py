"""The fast statistics (summarize, summarize_many, histogram, StatsBatch) against straightforward NumPy."""

from __future__ import annotations

import numpy as np
import pytest

from glassnet.inspect.batch import BATCH_LIMIT, StatsBatch
from glassnet.inspect.stats import (
    PAIRED_BINCOUNT,
    PERCENTILE_SAMPLE,
    histogram,
    piece_norms,
    summarize,
    summarize_many,
)


def arrays(seed: int):
    """Random arrays of the kinds a Recorder meets: signed, ReLU outputs, sparse gradients, odd sizes."""
    rng = np.random.default_rng(seed)
    normal = rng.standard_normal((64, 300)).astype(np.float32)
    sparse = normal * (rng.random(normal.shape) < 0.3)
    return {
        "normal f32": normal,
        "relu f32": np.maximum(normal, 0),
        "sparse f32": sparse,
        "negative f64": -np.abs(rng.standard_normal(1001)),
        "shifted f32": (3.0 + 0.01 * rng.standard_normal(5000)).astype(np.float32),  # mean >> std
        "large f64": rng.standard_normal((3, 8, 7, 7)) * 1e3,
        "tiny f32": rng.standard_normal(7).astype(np.float32),
        "constant": np.full((4, 4), 2.5),
    }


def reference(x: np.ndarray) -> dict:
    x64 = np.asarray(x, dtype=np.float64).ravel()
    return {
        "mean": x64.mean(),
        "std": x64.std(),
        "min": x64.min(),
        "max": x64.max(),
        "norm": np.linalg.norm(x64),
        "mean_abs": np.abs(x64).mean(),
        "frac_zero": np.mean(x64 == 0),
    }


def reference_percentiles(x: np.ndarray) -> list[float]:
    """The documented estimate: nearest-rank percentiles of |x[::k]|, k = ceil(size / PERCENTILE_SAMPLE)."""
    flat = np.abs(np.asarray(x, dtype=np.float64).ravel())
    sample = flat[:: -(-flat.size // PERCENTILE_SAMPLE)]
    assert sample.size <= PERCENTILE_SAMPLE
    return list(np.percentile(sample, (50, 90, 99), method="nearest"))


def check_against_numpy(stats, x: np.ndarray, bins: int) -> None:
    ref = reference(x)
    got = {name: getattr(stats, name) for name in ref}
    rtol = 1e-5 if x.dtype == np.float32 else 1e-10
    for name in ref:
        np.testing.assert_allclose(
            got[name], ref[name], rtol=rtol, atol=1e-6 * ref["norm"] / np.sqrt(x.size), err_msg=name
        )
    assert stats.shape == x.shape
    np.testing.assert_allclose(stats.percentiles, np.array(reference_percentiles(x)).astype(x.dtype), rtol=1e-6)
    counts, edges = np.histogram(x.astype(np.float64), bins)
    np.testing.assert_allclose(stats.hist_edges, edges, rtol=1e-6, atol=1e-12)
    assert stats.hist_counts.sum() == x.size
    # Only a value within a rounding error of an edge may land in the neighbouring bin (see histogram).
    assert np.abs(stats.hist_counts - counts).sum() <= (2 if x.dtype == np.float32 else 0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_summarize_equals_straightforward_numpy(seed):
    for x in arrays(seed).values():
        check_against_numpy(summarize(x, bins=20, percentiles=True), x, 20)


@pytest.mark.parametrize("seed", [0, 1])
def test_summarize_many_equals_summarize_piece_by_piece(seed):
    for dtype in (np.float32, np.float64):
        pieces = [x.astype(dtype) for x in arrays(seed).values()]
        flat = np.concatenate([x.ravel() for x in pieces])
        bins = [20, 0, 7, 0, 20, 3, 0, 5]
        activations = ["tanh", "relu", None, None, "sigmoid", "relu", None, None]
        many = summarize_many(flat, [x.shape for x in pieces], True, bins, activations)
        for x, got, b, activation in zip(pieces, many, bins, activations):
            one = summarize(x, activation, b, percentiles=True)
            for name in ("mean", "std", "min", "max", "norm", "rms", "mean_abs", "frac_zero", "frac_saturated"):
                np.testing.assert_allclose(
                    getattr(got, name) or 0.0, getattr(one, name) or 0.0, rtol=2e-5, err_msg=name
                )
            assert got.percentiles == one.percentiles and got.frac_dead_units == one.frac_dead_units
            assert (got.hist_counts is None) == (b == 0)
            if b:
                np.testing.assert_array_equal(got.hist_counts, one.hist_counts)
                check_against_numpy(got, x, b)


def test_summarize_many_redoes_a_non_finite_piece_alone():
    pieces = [np.array([1.0, np.nan, 3.0, np.inf]), np.array([[0.0, -2.0]])]
    many = summarize_many(np.concatenate([p.ravel() for p in pieces]), [(4,), (1, 2)], bins=4)
    assert (many[0].nonfinite, many[0].mean, many[0].max, int(many[0].hist_counts.sum())) == (2, 2.0, 3.0, 2)
    assert (many[1].nonfinite, many[1].min, many[1].frac_zero) == (0, -2.0, 0.5)
    with pytest.raises(ValueError, match="summarize_many: pieces of shapes"):
        summarize_many(np.zeros(5), [(2,), (2,)])


def test_dead_units_and_saturation_match_their_definitions():
    rng = np.random.default_rng(3)
    a = np.maximum(rng.standard_normal((16, 6, 5, 5)), 0)
    a[:, 2] = 0.0
    stats = summarize(a, activation="relu")
    assert stats.frac_dead_units == pytest.approx(np.mean((a == 0).all(axis=(0, 2, 3))))
    s = 1 / (1 + np.exp(-4 * rng.standard_normal(1000)))
    assert summarize(s, activation="sigmoid").frac_saturated == pytest.approx(np.mean((s < 0.01) | (s > 0.99)))


@pytest.mark.parametrize("size", [PAIRED_BINCOUNT - 1, PAIRED_BINCOUNT, PAIRED_BINCOUNT + 1, 3 * PAIRED_BINCOUNT + 7])
@pytest.mark.parametrize("bins", [1, 20, 255, 300])
def test_histogram_counts_as_numpy_on_both_bincount_paths(size, bins):
    x = np.random.default_rng(size + bins).standard_normal(size)
    counts, edges = histogram(x, bins, float(x.min()), float(x.max()))
    np.testing.assert_array_equal(counts, np.histogram(x, bins)[0])
    np.testing.assert_allclose(edges, np.histogram(x, bins)[1])


def test_piece_norms_are_numpy_norms():
    pieces = [np.arange(6.0).reshape(2, 3), np.zeros((0,)), np.array([-3.0, 4.0])]
    flat = np.concatenate([p.ravel() for p in pieces])
    np.testing.assert_allclose(piece_norms(flat, [p.shape for p in pieces]), [np.linalg.norm(p) for p in pieces])


def test_stats_batch_reports_in_order_and_keeps_its_copies():
    rng = np.random.default_rng(4)
    inputs = [
        rng.standard_normal((8, 3)).astype(np.float32),
        rng.standard_normal(5),  # another dtype: its own group
        rng.standard_normal(BATCH_LIMIT + 1).astype(np.float32),  # too large: summarised at once
        np.arange(4),  # integers: summarised at once
        rng.standard_normal(3).astype(np.float32),
    ]
    batch, seen = StatsBatch(), []
    copies = [batch.add(x, lambda s, i=i: seen.append((i, s)), bins=3 if i == 0 else 0) for i, x in enumerate(inputs)]
    assert len(batch) == len(inputs)
    before = [x.copy() for x in inputs]
    for x in inputs:
        x[...] = 0  # changed after being added: the statistics are those of the values when added
    batch.flush()
    assert [i for i, _ in seen] == list(range(len(inputs))) and len(batch) == 0
    for (i, stats), x in zip(seen, before):
        assert stats.mean == pytest.approx(x.mean(), rel=1e-5, abs=1e-6) and stats.shape == x.shape
        np.testing.assert_array_equal(copies[i], x.ravel())
    assert seen[0][1].hist_counts.sum() == inputs[0].size
    snapshot = batch.add_many([before[0], before[4]], [lambda s: None, lambda s: None])
    np.testing.assert_array_equal(snapshot, np.concatenate([before[0].ravel(), before[4]]))
