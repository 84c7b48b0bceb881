"""The zoo: small broken networks (and healthy ones) on the digits data, each with the finding it must produce."""

from __future__ import annotations

import numpy as np

import glassnet as gn
from glassnet import nn, optim
from glassnet.datasets import load_digits

_DIGITS = None


def digits_batches(batch_size: int = 64, flat: bool = True, count: int = 20) -> list:
    """``count`` batches of the digits data (flattened to 64 features unless ``flat`` is False)."""
    global _DIGITS
    if _DIGITS is None:
        _DIGITS = load_digits()
    images, labels = _DIGITS
    order = np.random.default_rng(0).permutation(len(labels))
    images, labels = images[order], labels[order]
    if flat:
        images = images.reshape(len(images), -1)
    return [
        (gn.tensor(images[i : i + batch_size]), gn.tensor(labels[i : i + batch_size]))
        for i in range(0, batch_size * count, batch_size)
    ]


def mlp(activation, depth: int, width: int = 64) -> nn.Sequential:
    """``depth`` Linear layers on 64 inputs, ``activation`` after each but the last, 10 outputs."""
    layers, features = [], 64
    for _ in range(depth - 1):
        layers += [nn.Linear(features, width), activation()]
        features = width
    layers.append(nn.Linear(features, 10))
    return nn.Sequential(*layers)


def linears(model) -> list:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def he_init(model) -> None:
    for m in linears(model):
        nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        nn.init.zeros_(m.bias)


def lenet() -> nn.Sequential:
    """LeNet's shape for 8x8 digits: two conv+ReLU+pool stages, then three Linear layers."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, 10),
    )


def train_accuracy(model, opt, batches, steps: int) -> float:
    """Train for ``steps`` batches (cycled), then the accuracy on all the batches."""
    loss_fn = nn.CrossEntropyLoss()
    for i in range(steps):
        x, y = batches[i % len(batches)]
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    with gn.no_grad():
        hits = sum(int((model(x).data.argmax(1) == y.data).sum()) for x, y in batches)
    return hits / sum(len(y.data) for _, y in batches)


# Each broken network: (model, optimizer) built fresh by a function.
def vanishing_sigmoid():
    model = mlp(nn.Sigmoid, depth=6)
    for m in linears(model):
        nn.init.normal_(m.weight, std=0.01)
    return model, optim.SGD(model.parameters(), lr=0.1)


def exploding_relu():
    model = mlp(nn.ReLU, depth=6)
    for m in linears(model):
        nn.init.normal_(m.weight, std=1.0)
    return model, optim.SGD(model.parameters(), lr=0.01)


def dead_relu():
    model = mlp(nn.ReLU, depth=4)
    he_init(model)
    nn.init.constant_(model[2].bias, -10.0)
    return model, optim.Adam(model.parameters(), lr=1e-3)


def saturated_tanh():
    """Tanh after a default-initialised layer fed inputs scaled by 20 (pixels 0..20): |z| of about 10."""
    model = mlp(nn.Tanh, depth=3)
    return model, optim.Adam(model.parameters(), lr=1e-3)


def scaled(batches, factor: float) -> list:
    return [(x * factor, y) for x, y in batches]


def lr_too_high():
    model = mlp(nn.ReLU, depth=3)
    he_init(model)
    return model, optim.SGD(model.parameters(), lr=20.0)
