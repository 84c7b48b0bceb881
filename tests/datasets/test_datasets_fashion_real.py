"""Fashion-MNIST from the Debian package's files (installed by CI): read, check, and learn from it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import glassnet as gn
from glassnet import nn, optim

ROOT = Path(gn.datasets.FASHION_MNIST_ROOT)


@pytest.fixture(scope="module")
def fashion():
    if not (ROOT / "train-images-idx3-ubyte.gz").exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but Fashion-MNIST is missing from {ROOT} (.ci/run installs dataset-fashion-mnist)")
        pytest.skip(f"Fashion-MNIST is not installed in {ROOT} (apt install dataset-fashion-mnist)")
    return gn.datasets.fashion_mnist(train=True), gn.datasets.fashion_mnist(train=False)


def test_fashion_mnist_files_are_read_whole(fashion):
    train, test = fashion
    assert train.inputs.shape == (60000, 1, 28, 28) and test.inputs.shape == (10000, 1, 28, 28)
    assert train.inputs.dtype == np.float32 and train.labels.dtype == np.int64
    assert 0.0 == train.inputs.min() and train.inputs.max() == 1.0
    assert np.bincount(train.labels).tolist() == [6000] * 10
    assert np.bincount(test.labels).tolist() == [1000] * 10


def test_an_mlp_learns_fashion_mnist(fashion):
    """Two epochs on 20,000 training images: >= 80% on the 10,000 test images (fixed seed)."""
    train, test = fashion
    gn.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = optim.Adam(model.parameters(), lr=1e-3)
    loader = gn.data.DataLoader(gn.data.TensorDataset(train.inputs[:20000], train.labels[:20000]), 64, shuffle=True)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(2):
        for x, y in loader:
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    with gn.no_grad():
        predictions = model.eval()(gn.tensor(test.inputs)).argmax(1).numpy()
    accuracy = (predictions == test.labels).mean()
    print(f"MLP 784-128-10, 2 epochs on 20k Fashion-MNIST images: test accuracy {accuracy:.4f}")
    assert accuracy >= 0.80
