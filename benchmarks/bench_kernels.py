"""Kernel benchmark: forward + backward time of conv2d, max_pool2d and batch norm, glassnet vs PyTorch.

Shapes are those of LeNet-5 and of a 3-block conv + BatchNorm CNN on a batch of 128 MNIST-like
28x28 float32 images. Each case times glassnet's primitive and torch.nn.functional's op in
alternating rounds (so that both see the same machine load), on 2 threads, and prints the medians
and the ratio glassnet / torch (below 1 means glassnet is faster).

Usage:
    .venv/bin/python benchmarks/bench_kernels.py [--rounds 7] [--reps 5] [--only conv|pool|bn] [--threads 2] [--cpu]

``--cpu`` times process CPU time instead of wall-clock time: on a shared, busy machine that is the
figure to compare changes with (use it with ``--threads 1``, where CPU time is the work done).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

import glassnet as gn
from glassnet.ops.conv import Conv2d
from glassnet.ops.norm import BatchNorm
from glassnet.ops.pool import MaxPool2d

BATCH = 128

# (label, in_channels, out_channels, size, kernel, padding); the first conv of each network sees the
# images, which need no gradient.
CONVS = [
    ("lenet conv1 1->6 5x5 p2 @28", 1, 6, 28, 5, 2),
    ("lenet conv2 6->16 5x5 @14", 6, 16, 14, 5, 0),
    ("cnn conv1 1->32 3x3 p1 @28", 1, 32, 28, 3, 1),
    ("cnn conv2 32->64 3x3 p1 @14", 32, 64, 14, 3, 1),
    ("cnn conv3 64->128 3x3 p1 @7", 64, 128, 7, 3, 1),
]
# (label, channels, size) for 2x2 max pooling with stride 2.
POOLS = [
    ("lenet pool1 6@28", 6, 28),
    ("lenet pool2 16@10", 16, 10),
    ("cnn pool1 32@28", 32, 28),
    ("cnn pool2 64@14", 64, 14),
    ("cnn pool3 128@7", 128, 7),
]
# (label, channels, size) for training-mode BatchNorm2d.
NORMS = [
    ("cnn bn1 32@28", 32, 28),
    ("cnn bn2 64@14", 64, 14),
    ("cnn bn3 128@7", 128, 7),
]


def conv_case(cin, cout, size, kernel, padding):
    """Forward + backward closures for one convolution, glassnet and torch, on the same data."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, cin, size, size)).astype(np.float32)
    w = (rng.standard_normal((cout, cin, kernel, kernel)) * 0.1).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    needs_x = cin > 1
    gx, gw, gb = gn.tensor(x, requires_grad=needs_x), gn.tensor(w, requires_grad=True), gn.tensor(b, requires_grad=True)
    tx, tw, tb = (torch.tensor(a, requires_grad=r) for a, r in ((x, needs_x), (w, True), (b, True)))
    size_out = size + 2 * padding - kernel + 1
    grad = rng.standard_normal((BATCH, cout, size_out, size_out)).astype(np.float32)
    g_gn, g_torch = gn.tensor(grad), torch.tensor(grad)

    def run_gn():
        gw.grad = gb.grad = gx.grad = None
        Conv2d.apply(gx, gw, gb, stride=(1, 1), padding=(padding, padding)).backward(g_gn)

    def run_torch():
        tw.grad = tb.grad = tx.grad = None
        F.conv2d(tx, tw, tb, padding=padding).backward(g_torch)

    return run_gn, run_torch


def pool_case(channels, size):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, channels, size, size)).astype(np.float32)
    gx, tx = gn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    grad = rng.standard_normal((BATCH, channels, size // 2, size // 2)).astype(np.float32)
    g_gn, g_torch = gn.tensor(grad), torch.tensor(grad)

    def run_gn():
        gx.grad = None
        MaxPool2d.apply(gx, kernel_size=(2, 2), stride=(2, 2), padding=(0, 0)).backward(g_gn)

    def run_torch():
        tx.grad = None
        F.max_pool2d(tx, 2).backward(g_torch)

    return run_gn, run_torch


def norm_case(channels, size):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, channels, size, size)).astype(np.float32)
    w, b = np.ones(channels, np.float32), np.zeros(channels, np.float32)
    gx, gw, gb = gn.tensor(x, requires_grad=True), gn.tensor(w, requires_grad=True), gn.tensor(b, requires_grad=True)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    rm, rv = np.zeros(channels, np.float32), np.ones(channels, np.float32)
    trm, trv = torch.zeros(channels), torch.ones(channels)
    grad = rng.standard_normal(x.shape).astype(np.float32)
    g_gn, g_torch = gn.tensor(grad), torch.tensor(grad)

    def run_gn():
        gx.grad = gw.grad = gb.grad = None
        BatchNorm.apply(gx, gw, gb, running_mean=rm, running_var=rv, training=True).backward(g_gn)

    def run_torch():
        tx.grad = tw.grad = tb.grad = None
        F.batch_norm(tx, trm, trv, tw, tb, training=True).backward(g_torch)

    return run_gn, run_torch


CLOCK = time.perf_counter


def time_once(fn, reps: int) -> float:
    """Median of ``reps`` calls, in milliseconds (wall clock, or process CPU time with --cpu)."""
    times = []
    for _ in range(reps):
        start = CLOCK()
        fn()
        times.append(CLOCK() - start)
    return statistics.median(times) * 1e3


def compare(label, run_gn, run_torch, rounds: int, reps: int) -> float:
    """Alternate the two implementations for ``rounds`` rounds; print and return the median ratio."""
    run_gn(), run_torch()  # warm up (allocator, BLAS threads, oneDNN primitive cache)
    t_gn, t_torch = [], []
    for _ in range(rounds):
        t_gn.append(time_once(run_gn, reps))
        t_torch.append(time_once(run_torch, reps))
    m_gn, m_torch = statistics.median(t_gn), statistics.median(t_torch)
    ratio = m_gn / m_torch
    print(f"{label:32s} glassnet {m_gn:8.2f} ms   torch {m_torch:8.2f} ms   ratio {ratio:5.2f}")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--only", choices=("conv", "pool", "bn"), default=None)
    parser.add_argument("--threads", type=int, default=2, help="threads for torch and NumPy's BLAS (default 2)")
    parser.add_argument("--cpu", action="store_true", help="time process CPU time instead of wall-clock time")
    args = parser.parse_args()
    global CLOCK
    if args.cpu:
        CLOCK = time.process_time
    torch.set_num_threads(args.threads)
    try:  # pin NumPy's BLAS to the same threads when threadpoolctl is there (scikit-learn brings it)
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads, user_api="blas")
    except ImportError:
        pass
    clock = "process CPU time" if args.cpu else "wall clock"
    print(
        f"batch {BATCH}, float32, forward + backward, {clock}; torch {torch.__version__} on "
        f"{torch.get_num_threads()} threads"
    )
    groups = {
        "conv": [(label, conv_case(*shape)) for label, *shape in CONVS],
        "pool": [(label, pool_case(*shape)) for label, *shape in POOLS],
        "bn": [(label, norm_case(*shape)) for label, *shape in NORMS],
    }
    totals = {}
    for name, cases in groups.items():
        if args.only and name != args.only:
            continue
        ratios = [compare(label, *fns, args.rounds, args.reps) for label, fns in cases]
        totals[name] = float(np.exp(np.mean(np.log(ratios))))
    print("geometric-mean ratio (glassnet / torch): " + ", ".join(f"{k} {v:.2f}" for k, v in totals.items()))


if __name__ == "__main__":
    main()
