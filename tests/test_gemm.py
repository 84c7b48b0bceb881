"""The compiled float32 GEMM (glassnet/_gemm.c) against NumPy, and Linear's inference path that runs it."""

from __future__ import annotations

import multiprocessing
import os

import numpy as np
import pytest

import glassnet as gn
from glassnet import _parallel, nn
from glassnet.ops import linalg
from tests.helpers import skip_without_compiled

EMPTY = np.empty(0, dtype=np.float32)


@pytest.fixture
def kernels():
    """The compiled kernels with their GEMM; skipped where the extension or the GEMM (no AVX2 + FMA) is missing."""
    skip_without_compiled()
    with gn.compiled.flags(enabled=True):
        module = gn.compiled.kernels()
    if not hasattr(module, "gemm") or module.gemm_isa() is None:
        pytest.skip("the compiled GEMM needs GCC or clang on x86-64 and a CPU with AVX2 and FMA")
    yield module
    module.gemm_isa("best")


def _isas(kernels):
    """The instruction sets this CPU runs: its best, and AVX2 too on an AVX-512 CPU."""
    return ["avx512f", "avx2"] if kernels.gemm_isa() == "avx512f" else ["avx2"]


def _gemm(kernels, p, q, bias=None, bias_per_row=False, q_is_kn=False, threads=1):
    m, n = p.shape[0], (q.shape[1] if q_is_kn else q.shape[0])
    c = np.full((m, n), np.nan, dtype=np.float32)  # every element must be written
    kernels.gemm(p, q, c, EMPTY if bias is None else bias, q_is_kn, bias_per_row, threads)
    return c


# Sizes around the blocking: rows of P around the micro-kernels' 4 and 6, rows of Q around the strips' 16
# and 64, k around the packed block of 384.
SHAPES = [(1, 1, 1), (3, 17, 5), (4, 16, 384), (5, 63, 385), (7, 64, 2), (13, 65, 800), (64, 130, 383), (129, 15, 769)]


@pytest.mark.parametrize("m, n, k", SHAPES)
@pytest.mark.parametrize("q_is_kn", [False, True])
@pytest.mark.parametrize("bias_mode", ["none", "row", "column"])
def test_gemm_equals_numpy(kernels, m, n, k, q_is_kn, bias_mode):
    rng = np.random.default_rng(m * 1000 + n + k)
    p = rng.standard_normal((m, k), dtype=np.float32)
    q = rng.standard_normal((n, k), dtype=np.float32)
    bias = {
        "none": None,
        "row": rng.standard_normal(m, dtype=np.float32),
        "column": rng.standard_normal(n, dtype=np.float32),
    }
    want = p.astype(np.float64) @ q.T.astype(np.float64)
    if bias_mode == "row":
        want += bias["row"][:, None]
    elif bias_mode == "column":
        want += bias["column"][None, :]
    scale = np.abs(p).astype(np.float64) @ np.abs(q.T).astype(np.float64) + 1
    for isa in _isas(kernels):
        kernels.gemm_isa(isa)
        for threads in (1, 2, 3):
            got = _gemm(
                kernels,
                p,
                np.ascontiguousarray(q.T) if q_is_kn else q,
                bias[bias_mode],
                bias_mode == "row",
                q_is_kn,
                threads,
            )
            np.testing.assert_array_less(np.abs(got - want), 1e-6 * scale, err_msg=f"{isa}, {threads} threads")


def test_gemm_result_does_not_depend_on_the_threads(kernels):
    rng = np.random.default_rng(1)
    p = rng.standard_normal((77, 900), dtype=np.float32)
    for q in (rng.standard_normal((150, 900), dtype=np.float32), rng.standard_normal((40, 900), dtype=np.float32)):
        # 150 rows: three strips to share; 40 rows: one strip, the rows of P are shared instead
        for isa in _isas(kernels):
            kernels.gemm_isa(isa)
            one = _gemm(kernels, p, q, threads=1)
            for threads in (2, 3, 4, 7):
                np.testing.assert_array_equal(_gemm(kernels, p, q, threads=threads), one)


def test_gemm_propagates_nan_and_infinity(kernels):
    p = np.ones((5, 3), dtype=np.float32)
    q = np.ones((70, 3), dtype=np.float32)
    p[1, 2], q[3, 0], p[2, 1] = np.nan, np.inf, np.inf
    got = _gemm(kernels, p, q, threads=2)
    with np.errstate(invalid="ignore"):
        want = p @ q.T
    np.testing.assert_array_equal(got, want)


def test_gemm_with_empty_k_gives_the_bias(kernels):
    p, q = np.empty((3, 0), np.float32), np.empty((70, 0), np.float32)
    bias = np.arange(70, dtype=np.float32)
    np.testing.assert_array_equal(_gemm(kernels, p, q, bias, threads=2), np.broadcast_to(bias, (3, 70)))


def test_gemm_argument_errors(kernels):
    p, q, c = np.ones((4, 8), np.float32), np.ones((5, 8), np.float32), np.empty((4, 5), np.float32)
    with pytest.raises(TypeError, match=r"_ckernels.gemm: float32 arrays only"):
        kernels.gemm(
            p.astype(np.float64), q.astype(np.float64), c.astype(np.float64), EMPTY.astype(np.float64), 0, 0, 1
        )
    with pytest.raises(ValueError, match=r"_ckernels.gemm: argument 2 has shape \(5, 7\), expected \(-1, 8\)"):
        kernels.gemm(p, np.ones((5, 7), np.float32), c, EMPTY, 0, 0, 1)
    with pytest.raises(ValueError, match=r"_ckernels.gemm: argument 3 has shape \(4, 6\), expected \(4, 5\)"):
        kernels.gemm(p, q, np.empty((4, 6), np.float32), EMPTY, 0, 0, 1)
    with pytest.raises(ValueError, match=r"_ckernels.gemm: argument 4 has 4 elements, expected 5"):
        kernels.gemm(p, q, c, np.ones(4, np.float32), 0, 0, 1)
    with pytest.raises(ValueError, match=r"_ckernels.gemm: threads must be at least 1"):
        kernels.gemm(p, q, c, EMPTY, 0, 0, 0)
    with pytest.raises(TypeError, match=r"_ckernels.gemm: argument 1 must be a C-contiguous array"):
        kernels.gemm(np.asfortranarray(np.ones((4, 8), np.float32)), q, c, EMPTY, 0, 0, 1)
    with pytest.raises(ValueError, match=r"gemm_isa: this CPU cannot run 'sse9'"):
        kernels.gemm_isa("sse9")


def _gemm_in_child(queue):
    from glassnet import _ckernels as k  # the module itself: GLASSNET_COMPILED=0 switches off only the ops' use

    p, q = np.ones((8, 50), np.float32), np.ones((200, 50), np.float32)
    c = np.empty((8, 200), np.float32)
    k.gemm(p, q, c, EMPTY, 0, 0, 2)
    queue.put(float(c.sum()))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork: POSIX only")
def test_gemm_threads_work_in_a_forked_child(kernels):
    """The parent's helper threads do not exist in a child: the child starts its own (a DataLoader forks)."""
    _gemm(kernels, np.ones((8, 50), np.float32), np.ones((200, 50), np.float32), threads=2)  # parent's helpers up
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_gemm_in_child, args=(queue,))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0, "the child hung or failed"
    assert queue.get(timeout=5) == 8 * 200 * 50


# ---- Linear's inference path ----


@pytest.fixture
def counted_gemm(kernels, monkeypatch):
    """Counts the compiled GEMM's calls (the test then knows which path Linear took)."""
    calls = []

    class Counting:
        def __getattr__(self, name):
            return getattr(kernels, name)

        def gemm(self, *args):
            calls.append(args)
            return kernels.gemm(*args)

    monkeypatch.setattr(linalg.compiled, "kernels", lambda dtype=None: Counting())
    return calls


@pytest.mark.parametrize(
    "batch, order, compiled_path, layout",
    [
        (128, "C", True, "F"),  # batch <= out features: out^T = W x^T, column-major out
        (100, "F", True, "F"),  # a column-major x (the previous Linear's output)
        (300, "C", True, "C"),  # batch > out features: out = x W^T
        (63, "C", True, "C"),  # a batch below a strip of 64 rows: out = x W^T, the weight packed
        (63, "F", False, "F"),  # a column-major x below a strip: BLAS
        (7, "C", False, "F"),  # a few rows: packing the weight would cost more than the product, BLAS
        (8, "C", True, "C"),
    ],
)
@pytest.mark.parametrize("bias", [True, False])
def test_linear_in_inference_takes_the_compiled_gemm(counted_gemm, batch, order, compiled_path, layout, bias):
    gn.set_num_threads(2)
    layer = nn.Linear(70, 200, bias=bias)
    x = np.asarray(np.random.default_rng(0).standard_normal((batch, 70), dtype=np.float32), order=order)
    want = layer(gn.from_numpy(x)).detach().numpy()  # autograd on: NumPy's BLAS (from_numpy keeps the order)
    assert not counted_gemm
    with gn.no_grad():
        got = layer(gn.from_numpy(x)).numpy()
    assert len(counted_gemm) == int(compiled_path)
    assert got.flags[layout + "_CONTIGUOUS"] and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_linear_keeps_blas_until_threads_are_set(counted_gemm, monkeypatch):
    monkeypatch.setattr(_parallel, "_configured", False)
    with gn.no_grad():
        nn.Linear(70, 200)(gn.randn(128, 70))
    assert not counted_gemm
    for dtype in (np.float64, np.float16):  # float32 only
        monkeypatch.setattr(_parallel, "_configured", True)
        with gn.no_grad():
            nn.Linear(70, 200).to(dtype)(gn.randn(128, 70).to(dtype))
        assert not counted_gemm


def test_mlp_inference_with_the_compiled_gemm_equals_torch(counted_gemm, torch):
    gn.set_num_threads(2)
    torch.manual_seed(0)
    tm = torch.nn.Sequential(
        torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)
    )
    gm = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    gm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    for batch in (128, 512):
        x = np.random.default_rng(batch).standard_normal((batch, 784), dtype=np.float32)
        with gn.no_grad():
            got = gm(gn.tensor(x)).numpy()
        with torch.no_grad():
            want = tm(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert len(counted_gemm) == 5  # all three layers at batch 128, the first two at 512 (10 outputs: BLAS)
