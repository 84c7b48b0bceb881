"""Benchmark: one optimizer step on a ~1M-parameter MLP (784-1024-256-10), glassnet vs torch.optim.

Both libraries update the same parameter shapes with the same gradients in the same process; the two
steps alternate, and the medians are compared. Run:

    .venv/bin/python benchmarks/bench_optim.py [--repeats 50] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50, help="timed steps per library and optimizer")
    parser.add_argument("--threads", type=int, default=2, help="threads for torch (and BLAS)")
    args = parser.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)

    import numpy as np
    import torch

    import glassnet as gn
    from glassnet import optim

    torch.set_num_threads(args.threads)
    shapes = [(1024, 784), (1024,), (256, 1024), (256,), (10, 256), (10,)]
    rng = np.random.default_rng(0)
    init = [rng.standard_normal(s).astype(np.float32) * 0.05 for s in shapes]
    grads = [rng.standard_normal(s).astype(np.float32) * 0.01 for s in shapes]
    n_params = sum(a.size for a in init)

    cases = [
        ("SGD(momentum=0.9)", "SGD", {"lr": 0.01, "momentum": 0.9}),
        ("Adam", "Adam", {"lr": 1e-3}),
        ("SGD", "SGD", {"lr": 0.01}),
        ("RMSprop", "RMSprop", {"lr": 1e-3}),
        ("AdamW", "AdamW", {"lr": 1e-3}),
    ]
    print(f"parameters: {n_params:,} in {len(shapes)} tensors; threads: {args.threads}; repeats: {args.repeats}")
    print("median (and minimum) wall time of one step; ratio = glassnet / torch")
    print(f"{'optimizer':<20}{'glassnet ms':>13}{'torch ms':>11}{'ratio':>8}{'min ratio':>11}")
    for label, name, options in cases:
        gn_params = [gn.tensor(a.copy(), requires_grad=True) for a in init]
        torch_params = [torch.tensor(a.copy(), requires_grad=True) for a in init]
        for p, q, g in zip(gn_params, torch_params, grads):
            p.grad, q.grad = gn.tensor(g.copy()), torch.tensor(g.copy())
        gn_opt = getattr(optim, name)(gn_params, **options)
        torch_opt = getattr(torch.optim, name)(torch_params, **options)
        for _ in range(5):  # warm-up: state and scratch allocation, caches
            gn_opt.step()
            torch_opt.step()
        ours, theirs = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            gn_opt.step()
            ours.append(time.perf_counter() - start)
            start = time.perf_counter()
            torch_opt.step()
            theirs.append(time.perf_counter() - start)
        a, b = statistics.median(ours) * 1e3, statistics.median(theirs) * 1e3
        best = min(ours) / min(theirs)
        print(f"{label:<20}{a:>13.3f}{b:>11.3f}{a / b:>8.2f}{best:>11.2f}")


if __name__ == "__main__":
    main()
