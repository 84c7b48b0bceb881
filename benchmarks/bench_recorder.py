"""Recorder overhead: MLPs trained with and without ``Recorder(every=N)``; prints CPU and wall-clock ratios.

Run: ``.venv/bin/python benchmarks/bench_recorder.py [--epochs 3] [--repeats 9] [--model digits|mnist|both]``.

Two workloads, since the ratio depends on the model's size (the Recorder's cost per recorded step is
mostly a fixed number of NumPy calls, the training step's cost grows with the model):

* ``digits``: MLP 64-256-128-10, Adam, the digits data (1797 samples), batch 64;
* ``mnist``: MLP 784-256-128-10, Adam, random MNIST-shaped data (fixed seed, no download), batch 128.

Configurations: ``unrecorded`` (no Recorder), ``hooks`` (a Recorder that records step 0 only: the cost of
its hooks on unrecorded steps), ``every=10`` and ``every=1``. Each is timed ``repeats`` times, interleaved,
on one thread; each run's process CPU time (``time.process_time``, little disturbed by other processes)
and wall-clock time (``time.perf_counter``) are kept, and the best and the median of each are compared
with the unrecorded run's. Goal: recording every 10th step costs under 15% over the unrecorded run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import limit_threads  # noqa: E402

limit_threads(1)  # one thread: process CPU time then measures the work, even on a busy machine

import numpy as np  # noqa: E402

import glassnet as gn  # noqa: E402
from glassnet import nn, optim  # noqa: E402
from glassnet.datasets import load_digits  # noqa: E402
from glassnet.inspect import Recorder  # noqa: E402

CONFIGS = {"unrecorded": None, "hooks": 10**9, "every=10": 10, "every=1": 1}


def digits_batches(batch_size: int) -> list:
    images, labels = load_digits()
    images = images.reshape(len(images), -1)
    return [
        (gn.tensor(images[i : i + batch_size]), gn.tensor(labels[i : i + batch_size]))
        for i in range(0, len(labels), batch_size)
    ]


def mnist_batches(batch_size: int, count: int = 40) -> list:
    rng = np.random.default_rng(0)
    return [
        (
            gn.tensor(rng.random((batch_size, 784), dtype=np.float32)),
            gn.tensor(rng.integers(0, 10, batch_size)),
        )
        for _ in range(count)
    ]


def build(in_features: int) -> nn.Module:
    gn.manual_seed(0)
    return nn.Sequential(nn.Linear(in_features, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))


def timed(batches: list, epochs: int, every: int | None) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one training run, the Recorder's setup included."""
    model = build(batches[0][0].shape[1])
    opt = optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    cpu, wall = time.process_time(), time.perf_counter()
    rec = None if every is None else Recorder(model, every=every, optimizer=opt).__enter__()
    for _ in range(epochs):
        for x, y in batches:
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            if rec is not None:
                rec.log(loss=loss)
    if rec is not None:
        rec.__exit__(None, None, None)
    return time.process_time() - cpu, time.perf_counter() - wall


def measure(title: str, batches: list, epochs: int, repeats: int) -> None:
    steps = epochs * len(batches)
    times = {name: [] for name in CONFIGS}
    timed(batches, 1, 10)  # warm-up
    for _ in range(repeats):
        for name, every in CONFIGS.items():
            times[name].append(timed(batches, epochs, every))
    cpu = {name: np.array([c for c, _ in values]) for name, values in times.items()}
    wall = {name: np.array([w for _, w in values]) for name, values in times.items()}
    print(f"{title}: {steps} steps per run, {repeats} runs per configuration")
    print(f"{'':>11}  {'CPU ms/step':>22}  {'ratio':>13}  {'wall ms/step':>22}  {'ratio':>13}")
    columns = f"{'best':>10} {'median':>11}  {'best':>6} {'median':>6}"
    print(f"{'':>11}  {columns}  {columns}")
    for name in CONFIGS:
        row = []
        for clock in (cpu, wall):
            values, base = clock[name], clock["unrecorded"]
            row.append(
                f"{1e3 * values.min() / steps:10.3f} {1e3 * np.median(values) / steps:11.3f}  "
                f"{values.min() / base.min():6.3f} {np.median(values) / np.median(base):6.3f}"
            )
        print(f"{name:>11}  {row[0]}  {row[1]}")
    spread = (np.percentile(cpu["unrecorded"], 90) / cpu["unrecorded"].min() - 1) * 100
    overhead = 100 * (cpu["every=10"].min() / cpu["unrecorded"].min() - 1)
    print(
        f"Recorder(every=10) overhead: {overhead:.1f}% CPU (best of {repeats}); "
        f"the unrecorded runs' p90 is {spread:.0f}% above their best\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--model", choices=("digits", "mnist", "both"), default="both")
    args = parser.parse_args()
    if args.model in ("digits", "both"):
        measure("MLP 64-256-128-10, Adam, digits, batch 64", digits_batches(64), args.epochs, args.repeats)
    if args.model in ("mnist", "both"):
        measure(
            "MLP 784-256-128-10, Adam, random MNIST-shaped, batch 128", mnist_batches(128), args.epochs, args.repeats
        )


if __name__ == "__main__":
    main()
