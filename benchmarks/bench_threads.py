"""What glassnet's own threads, or its compiled kernels, add: one process, alternating rounds, two modes.

    .venv/bin/python benchmarks/bench_threads.py lenet [--batch 128] [--threads 2] [--rounds 9] [--compare kernels]

Modes, switched back and forth inside one process so that both see the same machine load. With
``--compare threads`` (the default):

- ``blas``: glassnet's kernels on the calling thread, NumPy's BLAS on ``--threads`` threads (what
  glassnet does until ``set_num_threads`` is called, with the BLAS left at its default);
- ``glassnet``: ``gn.set_num_threads(threads)`` (glassnet's pool shares the kernels' pieces, BLAS on
  one thread while it works).

With ``--compare kernels`` (needs the C extension, built at install), both on glassnet's threads:

- ``numpy``: the pure NumPy kernels (the reference);
- ``compiled``: the C kernels of ``glassnet.compiled``.

Prints the median step time of each mode for training and inference steps, and the speed-up.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("network", choices=sorted(_common.NETWORKS))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--compare", choices=("threads", "kernels"), default="threads")
    args = parser.parse_args()
    _common.limit_threads(args.threads)

    import numpy as np

    import glassnet as gn
    from glassnet import _parallel

    build, sample_shape = _common.NETWORKS[args.network]
    gn.manual_seed(0)
    model = build(gn.nn)
    rng = np.random.default_rng(0)
    x = gn.tensor(rng.standard_normal((args.batch, *sample_shape), dtype=np.float32))
    y = gn.tensor(rng.integers(0, _common.NUM_CLASSES, args.batch))
    optimizer = gn.optim.SGD(model.parameters(), lr=_common.LR, momentum=_common.MOMENTUM)
    loss_fn = gn.nn.CrossEntropyLoss()

    def train():
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def infer():
        with gn.no_grad():
            model(x)

    def use(mode):
        if mode in ("glassnet", "numpy", "compiled"):
            gn.set_num_threads(args.threads)
            if args.compare == "kernels":
                gn.compiled.set_enabled(mode == "compiled")
        else:
            gn.set_num_threads(1)
            _parallel._set_blas_threads(args.threads)
        time.sleep(0.15)  # the other mode's idle threads stop spinning

    modes = ("blas", "glassnet") if args.compare == "threads" else ("numpy", "compiled")
    if args.compare == "kernels" and gn.compiled.kernels() is None:
        raise SystemExit("--compare kernels needs glassnet's C kernels (built at install with a C compiler)")
    for step in (train, infer):
        model.train(step is train)
        step()
        start = time.perf_counter()
        step()
        reps = max(1, int(0.1 / (time.perf_counter() - start)))  # about 0.1 s per round
        times = {mode: [] for mode in modes}
        for _ in range(args.rounds):
            for mode, seconds in times.items():
                use(mode)
                step()
                start = time.perf_counter()
                for _ in range(reps):
                    step()
                seconds.append((time.perf_counter() - start) / reps)
        before, after = (float(np.median(times[m])) for m in modes)
        print(
            f"{args.network} b{args.batch} {step.__name__}: {modes[0]} {before * 1e3:.2f} ms, "
            f"{modes[1]} {after * 1e3:.2f} ms, speed-up {before / after:.2f}"
        )


if __name__ == "__main__":
    main()
