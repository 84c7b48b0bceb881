"""Benchmark: glassnet's per-op overhead above the bare NumPy call, and the backward of a 10,000-op chain.

Run from the repository root:

    .venv/bin/python benchmarks/bench_overhead.py

For each op, the time of the glassnet call on tiny (4, 4) float32 tensors that require grad (so the
graph node is recorded) minus the time of the NumPy call that computes the same value. Tiny arrays
make the NumPy work negligible, so the difference is what glassnet adds: operand checks,
Function.apply, the Tensor and the graph node. Each figure is the best of several repeats (the
least disturbed run), in microseconds per call. As with timeit, the cyclic garbage collector is
paused while timing.
"""

from __future__ import annotations

import argparse
import gc
import time
import timeit

import numpy as np

import glassnet as gn


def best_time_us(fn, number: int, repeat: int) -> float:
    """The fastest of ``repeat`` runs of ``number`` calls, in microseconds per call."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def op_overheads(number: int, repeat: int) -> list[tuple[str, float, float, float, float]]:
    """Rows (op, NumPy us, glassnet recording us, glassnet no_grad us, forward+backward us per op)."""
    rng = np.random.default_rng(0)
    x, y, w = (rng.standard_normal((4, 4)).astype(np.float32) for _ in range(3))
    a = gn.tensor(x, requires_grad=True)
    b = gn.tensor(y, requires_grad=True)
    weight = gn.tensor(w, requires_grad=True)
    cases = [
        ("a + b", lambda: a + b, lambda: x + y),
        ("a * b", lambda: a * b, lambda: x * y),
        ("a * 2.0", lambda: a * 2.0, lambda: x * 2.0),
        ("a @ w", lambda: a @ weight, lambda: x @ w),
        ("a.relu()", lambda: a.relu(), lambda: np.maximum(x, 0)),
        ("a.exp()", lambda: a.exp(), lambda: np.exp(x)),
        ("a.sum()", lambda: a.sum(), lambda: x.sum()),
        ("a.reshape(16)", lambda: a.reshape(16), lambda: x.reshape(16)),
        ("a[1:3]", lambda: a[1:3], lambda: x[1:3]),
    ]
    rows = []
    for name, glassnet_call, numpy_call in cases:
        numpy_us = best_time_us(numpy_call, number, repeat)
        recording_us = best_time_us(glassnet_call, number, repeat)
        with gn.no_grad():
            no_grad_us = best_time_us(glassnet_call, number, repeat)
        rows.append((name, numpy_us, recording_us, no_grad_us, _forward_backward_us(glassnet_call, number, repeat)))
    return rows


def _forward_backward_us(call, number: int, repeat: int) -> float:
    """Forward plus backward of one op, per op: ``number`` one-op graphs, each backpropagated from its output."""
    best = float("inf")
    for _ in range(repeat):
        gc.disable()
        try:
            start = time.perf_counter()
            for _ in range(number):
                out = call()
                out.backward(np.ones(out.shape, dtype=out.dtype))
            best = min(best, time.perf_counter() - start)
        finally:
            gc.enable()
    return best / number * 1e6


def chain_times(length: int, repeat: int) -> tuple[float, float]:
    """Best seconds to build a chain of ``length`` ops (alternating mul, add, tanh) and to backpropagate it."""
    best_built, best_backward = float("inf"), float("inf")
    for _ in range(repeat):
        gc.collect()
        gc.disable()  # as timeit does: the cyclic collector's pauses are not the engine's cost
        try:
            built, backward = _chain_once(length)
        finally:
            gc.enable()
        best_built, best_backward = min(best_built, built), min(best_backward, backward)
    return best_built, best_backward


def _chain_once(length: int) -> tuple[float, float]:
    x = gn.randn(8, requires_grad=True)
    start = time.perf_counter()
    y = x
    for i in range(length):
        if i % 3 == 0:
            y = y * 1.001
        elif i % 3 == 1:
            y = y + x
        else:
            y = y.tanh()
    loss = y.sum()
    built = time.perf_counter() - start
    start = time.perf_counter()
    loss.backward()
    return built, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20_000, help="calls per timing run")
    parser.add_argument("--repeat", type=int, default=5, help="timing runs per figure (the best is kept)")
    parser.add_argument("--chain", type=int, default=10_000, help="length of the op chain")
    args = parser.parse_args()

    gn.manual_seed(0)
    print(f"per-op overhead on (4, 4) float32 tensors, best of {args.repeat} x {args.number} calls (microseconds)")
    header = f"{'op':<15}{'numpy':>8}{'glassnet':>10}{'overhead':>10}{'no_grad':>9}{'fwd+bwd':>9}"
    print(header)
    print("-" * len(header))
    overheads = []
    for name, numpy_us, recording_us, no_grad_us, fwd_bwd_us in op_overheads(args.number, args.repeat):
        overhead = recording_us - numpy_us
        overheads.append(overhead)
        print(f"{name:<15}{numpy_us:8.2f}{recording_us:10.2f}{overhead:10.2f}{no_grad_us:9.2f}{fwd_bwd_us:9.2f}")
    print(f"largest overhead: {max(overheads):.2f} us per op (target: under ~10 us)")
    print("(fwd+bwd: one op's forward plus its own backward call from a fresh root, per op)")

    built, backward = chain_times(args.chain, args.repeat)
    print(
        f"chain of {args.chain} ops: build {built * 1e3:.1f} ms, backward {backward * 1e3:.1f} ms "
        f"({backward / args.chain * 1e6:.2f} us per node)"
    )


if __name__ == "__main__":
    main()
