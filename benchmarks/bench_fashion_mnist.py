"""Benchmark: LeNet-5 on the full Fashion-MNIST (60,000 / 10,000), glassnet and PyTorch side by side.

Run from the repository root:

    .venv/bin/python benchmarks/bench_fashion_mnist.py [--root DIR] [--epochs 5] [--threads 2]

Both libraries train the same network (glassnet.train.models.lenet on 28x28, the classic LeNet-5
with ReLU and max pooling) from the same initial weights (glassnet's initialisation, copied into
torch), with the same optimizer (SGD, lr 0.01, momentum 0.9; ``--optimizer adam`` for Adam 1e-3)
annealed to 0 over the epochs by each library's CosineAnnealingLR, the same input normalisation
and the same batches in the same order (one NumPy permutation per epoch, shared). Each epoch
prints both test accuracies and both times in seconds per epoch (the training loop only;
evaluation is timed apart); the last line gives the final accuracy gap and the speed ratio.

The data is read from ``/usr/share/datasets/fashion-mnist/`` (Debian's dataset-fashion-mnist) or
``--root``; nothing is downloaded. Without the files the script says where it looked and exits 2.
``--limit N`` trains on the first N images only (a quick check of the script itself).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402  (the benchmarks folder is not a package)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=None, help="folder of the four IDX files (default /usr/share/datasets/...)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    parser.add_argument("--threads", type=int, default=_common.THREADS, help="BLAS / torch threads (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    _common.limit_threads(args.threads)  # before NumPy is imported
    import numpy as np

    import glassnet as gn
    from glassnet.datasets import FASHION_MNIST_ROOT, DatasetError, fashion_mnist
    from glassnet.train.models import lenet

    try:
        x_train, y_train = fashion_mnist(args.root, train=True)
        x_test, y_test = fashion_mnist(args.root, train=False)
    except DatasetError as error:
        print(f"bench_fashion_mnist: no Fashion-MNIST in {args.root or FASHION_MNIST_ROOT} (pass --root DIR): {error}")
        return 2
    if args.limit:
        x_train, y_train = x_train[: args.limit], y_train[: args.limit]
    mean, std = x_train.mean(), x_train.std()
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    try:
        import torch
    except ImportError:
        torch = None
        print("PyTorch is not installed: glassnet only")

    gn.manual_seed(args.seed)
    model = lenet((1, 28, 28), 10)
    runs = {"glassnet": Run(gn, model, args)}
    if torch is not None:
        torch.set_num_threads(args.threads)
        torch_model = _common.build_lenet(torch.nn)
        torch_model.load_state_dict({k: torch.from_numpy(v.data.copy()) for k, v in model.state_dict().items()})
        runs["torch"] = Run(torch, torch_model, args)

    print(
        f"LeNet-5 on Fashion-MNIST: {len(x_train)} training / {len(x_test)} test images, batch {args.batch_size}, "
        f"{args.optimizer}, {args.threads} threads"
    )
    header = f"{'epoch':>5}" + "".join(f"  {name + ' acc':>14}  {name + ' s/epoch':>17}" for name in runs)
    print(header)
    final, times = {}, {name: [] for name in runs}
    for epoch in range(1, args.epochs + 1):
        order = np.random.default_rng(args.seed + epoch).permutation(len(x_train))  # the same batches for both
        row = f"{epoch:>5}"
        for name, run in runs.items():
            seconds = run.train_epoch(x_train, y_train, order)
            final[name] = run.accuracy(x_test, y_test)
            times[name].append(seconds)
            row += f"  {final[name]:>14.2%}  {seconds:>17.1f}"
        print(row, flush=True)
    if "torch" in runs:
        gap = 100 * (final["glassnet"] - final["torch"])
        speed = np.median(times["torch"]) / np.median(times["glassnet"])
        print(
            f"final test accuracy: glassnet {final['glassnet']:.2%}, torch {final['torch']:.2%} ({gap:+.2f} points); "
            f"speed glassnet / torch {speed:.2f} (median s/epoch)"
        )
    return 0


class Run:
    """One library's training loop; ``lib`` is glassnet or torch (the same API, so the same code)."""

    def __init__(self, lib, model, args) -> None:
        self.lib, self.model, self.batch_size = lib, model, args.batch_size
        if args.optimizer == "sgd":
            self.optimizer = lib.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        else:
            self.optimizer = lib.optim.Adam(model.parameters(), lr=1e-3)
        self.scheduler = lib.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=args.epochs)
        self.loss_fn = lib.nn.CrossEntropyLoss()

    def train_epoch(self, x, y, order) -> float:
        lib, model = self.lib, self.model
        model.train()
        start = time.perf_counter()
        for i in range(0, len(order), self.batch_size):
            index = order[i : i + self.batch_size]
            loss = self.loss_fn(model(lib.from_numpy(x[index])), lib.from_numpy(y[index]))
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        self.scheduler.step()
        return time.perf_counter() - start

    def accuracy(self, x, y) -> float:
        self.model.eval()
        correct = 0
        with self.lib.no_grad():
            for i in range(0, len(x), 1000):
                output = self.model(self.lib.from_numpy(x[i : i + 1000]))
                correct += int((output.argmax(1).numpy() == y[i : i + 1000]).sum())
        return correct / len(x)


if __name__ == "__main__":
    sys.exit(main())
