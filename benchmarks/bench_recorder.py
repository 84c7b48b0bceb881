"""Recorder overhead: an MLP trained on the digits data with and without ``Recorder(every=N)``; prints the ratio.

Run: ``.venv/bin/python benchmarks/bench_recorder.py [--epochs 5] [--repeats 5]``. Each configuration is
timed ``repeats`` times, interleaved, on one thread, in process CPU time; the best time of each is compared
(the least disturbed run).
Goal: recording every 10th step costs under 15% over the unrecorded run.
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


def build():
    gn.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))


def train(model, opt, batches, epochs: int, rec: Recorder | None) -> None:
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        for x, y in batches:
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            if rec is not None:
                rec.log(loss=loss)


def timed(batches, epochs: int, every: int | None) -> float:
    """CPU seconds of this process for one run (less disturbed by other processes than wall time)."""
    model = build()
    opt = optim.Adam(model.parameters(), lr=1e-3)
    start = time.process_time()
    if every is None:
        train(model, opt, batches, epochs, None)
    else:
        with Recorder(model, every=every, optimizer=opt) as rec:
            train(model, opt, batches, epochs, rec)
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    images, labels = load_digits()
    images = images.reshape(len(images), -1)
    batches = [
        (gn.tensor(images[i : i + args.batch_size]), gn.tensor(labels[i : i + args.batch_size]))
        for i in range(0, len(labels), args.batch_size)
    ]
    steps = args.epochs * len(batches)
    configs = {"unrecorded": None, "every=10": 10, "every=1": 1, "hooks only": 10**9}
    times = {name: [] for name in configs}
    timed(batches, 1, 10)  # warm-up
    for _ in range(args.repeats):
        for name, every in configs.items():
            times[name].append(timed(batches, args.epochs, every))
    base = min(times["unrecorded"])
    print(f"MLP 64-256-128-10, Adam, digits ({len(labels)} samples, batch {args.batch_size}), {steps} steps")
    for name, values in times.items():
        best = min(values)
        print(
            f"{name:>11}: best {best:.3f} CPU s, median {np.median(values):.3f} CPU s, "
            f"{1e3 * best / steps:.2f} ms/step, ratio {best / base:.3f}"
        )
    print(f"Recorder(every=10) overhead: {100 * (min(times['every=10']) / base - 1):.1f}%")


if __name__ == "__main__":
    main()
