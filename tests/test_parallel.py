"""glassnet's intra-op threads: the pool, the GEMM blocks, and kernels that give the same bits on 1 or 2 threads."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import glassnet as gn
import glassnet.nn.functional as F
from glassnet import _parallel


@pytest.fixture
def two_threads():
    gn.set_num_threads(2)
    yield
    gn.set_num_threads(1)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_num_threads_rejects(bad):
    with pytest.raises(ValueError, match="set_num_threads: expected a positive integer"):
        gn.set_num_threads(bad)


def test_set_and_get_num_threads(two_threads):
    assert gn.get_num_threads() == 2
    gn.set_num_threads(1)
    assert gn.get_num_threads() == 1


@pytest.mark.parametrize("count", [0, 1, 2, 7, 64])
def test_parallel_for_calls_each_index_once(two_threads, count):
    seen, lock = [], threading.Lock()

    def piece(i):
        with lock:
            seen.append(i)

    _parallel.parallel_for(count, piece)
    assert sorted(seen) == list(range(count))


def test_parallel_for_uses_the_helper_thread(two_threads):
    threads, ready = set(), threading.Event()

    def piece(i):
        threads.add(threading.get_ident())
        ready.wait(0.5)  # the first pieces wait until a second thread has joined (or 0.5 s)
        if len(threads) > 1:
            ready.set()

    _parallel.parallel_for(8, piece)
    assert len(threads) == 2


def test_parallel_for_reraises_the_error_of_a_piece(two_threads):
    def piece(i):
        if i == 5:
            raise ValueError("piece 5 failed")

    with pytest.raises(ValueError, match="piece 5 failed"):
        _parallel.parallel_for(16, piece)
    _parallel.parallel_for(4, lambda i: None)  # the pool still works afterwards


def test_nested_parallel_for_runs_serially(two_threads):
    out = np.zeros((4, 5))

    def outer(i):
        _parallel.parallel_for(5, lambda j: out.__setitem__((i, j), i * 10 + j))

    _parallel.parallel_for(4, outer)
    np.testing.assert_array_equal(out, np.arange(4)[:, None] * 10 + np.arange(5))


@pytest.mark.parametrize("total,count,multiple", [(10, 3, 1), (128, 8, 1), (100, 4, 8), (5, 9, 1), (1, 4, 1)])
def test_pieces_cover_the_range(total, count, multiple):
    blocks = _parallel.pieces(total, count, multiple)
    assert blocks[0][0] == 0 and blocks[-1][1] == total
    assert all(a < b for a, b in blocks) and all(b == c for (_, b), (c, _) in zip(blocks, blocks[1:]))
    assert len(blocks) <= count
    assert all(a % multiple == 0 for a, _ in blocks)


@pytest.mark.parametrize("shape", [(300, 64, 40), (40, 64, 300)])
def test_matmul_blocks_equal_one_gemm(two_threads, monkeypatch, shape):
    M, K, N = shape
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((M, K), dtype=np.float32), rng.standard_normal((K, N), dtype=np.float32)
    monkeypatch.setattr(_parallel, "_GEMM_SPLIT_FLOPS", 0)
    monkeypatch.setattr(_parallel, "_pool_until", float("inf"))  # glassnet's pool counts as busy: blocks
    out = _parallel.matmul(a, b)
    assert out.flags.c_contiguous
    np.testing.assert_allclose(out, a @ b, rtol=1e-5, atol=1e-5)


def test_blas_is_pinned_while_the_pool_is_busy(two_threads, monkeypatch):
    if not sys.platform.startswith("linux"):
        pytest.skip("glassnet finds OpenBLAS through /proc/self/maps")
    assert _parallel._blas_setters, "NumPy's OpenBLAS was not found"
    _parallel.parallel_for(2, lambda i: None)
    assert _parallel._blas_now == 1
    monkeypatch.setattr(_parallel, "_pool_until", 0.0)  # the pool has been idle long enough
    _parallel.matmul(np.ones((2, 2)), np.ones((2, 2)))
    assert _parallel._blas_now == 2


def test_a_forked_child_runs_on_one_thread(two_threads, monkeypatch):
    monkeypatch.setattr(_parallel, "_workers", list(_parallel._workers))
    _parallel._after_fork_in_child()
    assert gn.get_num_threads() == 1 and _parallel._workers == []


def test_environment_variable_sets_the_threads():
    code = "import glassnet; print(glassnet.get_num_threads())"
    env = dict(os.environ, GLASSNET_NUM_THREADS="2")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "2"
    env["GLASSNET_NUM_THREADS"] = "two"
    bad = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "GLASSNET_NUM_THREADS must be a positive integer, got 'two'" in bad.stderr


# Kernels on inputs large enough to be cut into pieces: one thread and two give the same bits.

CONV_CASES = {
    "lenet conv1 (narrow, bias)": ((32, 1, 28, 28), (6, 1, 5, 5), dict(padding=2), True),
    "3x3 wide grid": ((16, 8, 14, 14), (16, 8, 3, 3), dict(padding=1), False),
    "strided, dilated": ((16, 4, 20, 20), (8, 4, 3, 3), dict(stride=2, dilation=2, padding=1), True),
    "groups": ((16, 4, 12, 12), (8, 2, 3, 3), dict(groups=2), True),
}


def _run_both(fn):
    """fn() with 1 thread, then with 2; returns both results."""
    gn.set_num_threads(1)
    one = fn()
    gn.set_num_threads(2)
    two = fn()
    gn.set_num_threads(1)
    return one, two


@pytest.mark.usefixtures("kernel_path")
@pytest.mark.parametrize("name", CONV_CASES)
def test_conv2d_same_on_one_and_two_threads(name):
    x_shape, w_shape, options, bias = CONV_CASES[name]
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(s, dtype=np.float32) for s in (x_shape, w_shape, (w_shape[0],))]

    def run():
        x, w, b = (gn.tensor(a, requires_grad=True) for a in arrays)
        out = F.conv2d(x, w, b if bias else None, **options)
        (out * out).sum().backward()
        return [out.numpy(), x.grad.numpy(), w.grad.numpy()] + ([b.grad.numpy()] if bias else [])

    for a, b in zip(*_run_both(run)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.usefixtures("kernel_path")
@pytest.mark.parametrize("kernel,stride", [(2, 2), (3, 2)])
def test_pool_and_relu_same_on_one_and_two_threads(kernel, stride):
    data = np.random.default_rng(2).standard_normal((64, 8, 28, 28), dtype=np.float32)
    data[:, :, ::7, ::5] = 0.5  # ties inside windows

    def run():
        x = gn.tensor(data, requires_grad=True)
        out = F.max_pool2d(F.relu(x), kernel, stride)
        (out * out).sum().backward()
        return out.numpy(), x.grad.numpy()

    for a, b in zip(*_run_both(run)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.usefixtures("kernel_path")
def test_lenet_training_same_on_one_and_two_threads():
    from glassnet.train.models import lenet

    rng = np.random.default_rng(3)
    x = gn.tensor(rng.standard_normal((64, 1, 8, 8), dtype=np.float32))
    y = gn.tensor(rng.integers(0, 10, 64))

    def run():
        gn.manual_seed(0)
        model = lenet((1, 8, 8), 10)
        optimizer = gn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        losses = []
        for _ in range(3):
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        return losses, [p.numpy().copy() for p in model.parameters()]

    (losses1, params1), (losses2, params2) = _run_both(run)
    assert losses1 == losses2
    for a, b in zip(params1, params2):
        np.testing.assert_array_equal(a, b)


@pytest.mark.usefixtures("kernel_path")
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_same_on_one_and_two_threads(training):
    data = np.random.default_rng(4).standard_normal((64, 16, 20, 20), dtype=np.float32) * 3 + 5

    def run():
        bn = gn.nn.BatchNorm2d(16)
        bn.train(training)
        x = gn.tensor(data, requires_grad=True)
        out = bn(x)
        (out * out).sum().backward()
        return out.numpy(), x.grad.numpy(), bn.weight.grad.numpy(), bn.running_mean.numpy().copy()

    for a, b in zip(*_run_both(run)):
        np.testing.assert_array_equal(a, b)
