"""Every layer, activation and loss against PyTorch: outputs, input gradients, parameter gradients, buffers."""

from __future__ import annotations

import numpy as np
import pytest

import glassnet as gn
from glassnet import nn
from tests.nn.torch_compare import compare

DTYPES = [np.float64, np.float32]

# (name, glassnet factory, torch factory (given torch.nn), input shape)
LAYERS = [
    ("linear", lambda: nn.Linear(7, 5), lambda tnn: tnn.Linear(7, 5), (4, 7)),
    ("linear_nobias", lambda: nn.Linear(7, 5, bias=False), lambda tnn: tnn.Linear(7, 5, bias=False), (4, 7)),
    ("linear_3d", lambda: nn.Linear(6, 3), lambda tnn: tnn.Linear(6, 3), (2, 4, 6)),
    ("conv", lambda: nn.Conv2d(3, 4, 3), lambda tnn: tnn.Conv2d(3, 4, 3), (2, 3, 7, 6)),
    (
        "conv_stride_pad",
        lambda: nn.Conv2d(2, 3, (3, 2), stride=2, padding=1),
        lambda tnn: tnn.Conv2d(2, 3, (3, 2), stride=2, padding=1),
        (2, 2, 7, 9),
    ),
    ("conv_nobias", lambda: nn.Conv2d(2, 3, 5, bias=False), lambda tnn: tnn.Conv2d(2, 3, 5, bias=False), (1, 2, 8, 8)),
    ("maxpool", lambda: nn.MaxPool2d(2), lambda tnn: tnn.MaxPool2d(2), (2, 3, 6, 6)),
    ("maxpool_overlap", lambda: nn.MaxPool2d(3, 2, 1), lambda tnn: tnn.MaxPool2d(3, 2, 1), (2, 2, 7, 7)),
    ("avgpool", lambda: nn.AvgPool2d(2), lambda tnn: tnn.AvgPool2d(2), (2, 3, 6, 6)),
    ("avgpool_pad", lambda: nn.AvgPool2d(3, 2, 1), lambda tnn: tnn.AvgPool2d(3, 2, 1), (2, 2, 7, 7)),
    ("flatten", lambda: nn.Flatten(), lambda tnn: tnn.Flatten(), (2, 3, 4, 5)),
    ("bn1d", lambda: nn.BatchNorm1d(5), lambda tnn: tnn.BatchNorm1d(5), (8, 5)),
    ("bn1d_3d", lambda: nn.BatchNorm1d(3), lambda tnn: tnn.BatchNorm1d(3), (4, 3, 6)),
    ("bn2d", lambda: nn.BatchNorm2d(3), lambda tnn: tnn.BatchNorm2d(3), (4, 3, 5, 5)),
    (
        "bn2d_noaffine",
        lambda: nn.BatchNorm2d(3, affine=False),
        lambda tnn: tnn.BatchNorm2d(3, affine=False),
        (4, 3, 3, 3),
    ),
    ("relu", lambda: nn.ReLU(), lambda tnn: tnn.ReLU(), (4, 6)),
    ("leaky_relu", lambda: nn.LeakyReLU(0.2), lambda tnn: tnn.LeakyReLU(0.2), (4, 6)),
    ("sigmoid", lambda: nn.Sigmoid(), lambda tnn: tnn.Sigmoid(), (4, 6)),
    ("tanh", lambda: nn.Tanh(), lambda tnn: tnn.Tanh(), (4, 6)),
    ("gelu", lambda: nn.GELU(), lambda tnn: tnn.GELU(), (4, 6)),
    ("gelu_tanh", lambda: nn.GELU("tanh"), lambda tnn: tnn.GELU("tanh"), (4, 6)),
    ("softmax", lambda: nn.Softmax(dim=1), lambda tnn: tnn.Softmax(dim=1), (4, 6)),
    ("log_softmax", lambda: nn.LogSoftmax(dim=-1), lambda tnn: tnn.LogSoftmax(dim=-1), (4, 6)),
    ("identity", lambda: nn.Identity(), lambda tnn: tnn.Identity(), (3, 2)),
    (
        "mlp",
        lambda: nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3)),
        lambda tnn: tnn.Sequential(tnn.Linear(6, 8), tnn.Tanh(), tnn.Linear(8, 8), tnn.ReLU(), tnn.Linear(8, 3)),
        (5, 6),
    ),
]


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("name,make,make_torch,shape", LAYERS, ids=[spec[0] for spec in LAYERS])
def test_layer_matches_torch(torch, name, make, make_torch, shape, dtype, train):
    x = np.random.default_rng(1).standard_normal(shape)
    torch_module = make_torch(torch.nn)
    if train is False and "bn" in name:
        # Give eval mode non-trivial running statistics first.
        with torch.no_grad():
            for _ in range(3):
                torch_module(torch.randn(*shape, dtype=torch.float32) * 2 + 1)
    compare(torch, torch_module, make(), x, dtype=dtype, train=train)


def test_batchnorm_running_stats_follow_torch_over_steps(torch):
    tbn = torch.nn.BatchNorm2d(3, momentum=0.3).double()
    bn = nn.BatchNorm2d(3, momentum=0.3).double()
    rng = np.random.default_rng(2)
    for _ in range(4):
        x = rng.standard_normal((5, 3, 4, 4)) * 3 + 2
        tbn(torch.tensor(x))
        bn(gn.tensor(x))
    np.testing.assert_allclose(bn.running_mean.data, tbn.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.data, tbn.running_var.numpy(), rtol=1e-12)
    assert int(bn.num_batches_tracked.item()) == 4
    tbn.eval(), bn.eval()
    x = rng.standard_normal((2, 3, 4, 4))
    np.testing.assert_allclose(bn(gn.tensor(x)).data, tbn(torch.tensor(x)).detach().numpy(), rtol=1e-10)


def test_dropout_is_inverted_and_identity_in_eval():
    drop = nn.Dropout(0.25)
    x = gn.ones(200, 200)
    y = drop(x)
    kept = y.data != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(y.data[kept], 1 / 0.75, rtol=1e-6)
    assert drop.eval()(x) is x


def test_dropout_gradient_uses_the_same_mask():
    x = gn.ones(50, 40, requires_grad=True)
    y = nn.Dropout(0.5)(x)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, y.data)


LOSSES = [
    ("mse", lambda: nn.MSELoss(), lambda tnn: tnn.MSELoss(), "real"),
    ("mse_sum", lambda: nn.MSELoss(reduction="sum"), lambda tnn: tnn.MSELoss(reduction="sum"), "real"),
    ("mse_none", lambda: nn.MSELoss(reduction="none"), lambda tnn: tnn.MSELoss(reduction="none"), "real"),
    ("l1", lambda: nn.L1Loss(), lambda tnn: tnn.L1Loss(), "real"),
    ("ce", lambda: nn.CrossEntropyLoss(), lambda tnn: tnn.CrossEntropyLoss(), "labels"),
    (
        "ce_sum",
        lambda: nn.CrossEntropyLoss(reduction="sum"),
        lambda tnn: tnn.CrossEntropyLoss(reduction="sum"),
        "labels",
    ),
    (
        "ce_none",
        lambda: nn.CrossEntropyLoss(reduction="none"),
        lambda tnn: tnn.CrossEntropyLoss(reduction="none"),
        "labels",
    ),
    (
        "ce_weight_smooth",
        lambda: nn.CrossEntropyLoss(weight=gn.tensor(np.linspace(0.5, 2, 5)), label_smoothing=0.1),
        lambda tnn: tnn.CrossEntropyLoss(
            weight=__import__("torch").tensor(np.linspace(0.5, 2, 5)), label_smoothing=0.1
        ),
        "labels",
    ),
    (
        "ce_ignore",
        lambda: nn.CrossEntropyLoss(ignore_index=2),
        lambda tnn: tnn.CrossEntropyLoss(ignore_index=2),
        "labels",
    ),
    ("nll", lambda: nn.NLLLoss(), lambda tnn: tnn.NLLLoss(), "labels"),
    ("bce", lambda: nn.BCELoss(), lambda tnn: tnn.BCELoss(), "probs"),
    ("bce_logits", lambda: nn.BCEWithLogitsLoss(), lambda tnn: tnn.BCEWithLogitsLoss(), "binary"),
    (
        "bce_logits_pos_weight",
        lambda: nn.BCEWithLogitsLoss(pos_weight=gn.tensor(np.full(5, 3.0))),
        lambda tnn: tnn.BCEWithLogitsLoss(
            pos_weight=__import__("torch").full((5,), 3.0, dtype=__import__("torch").float64)
        ),
        "binary",
    ),
]


@pytest.mark.parametrize("name,make,make_torch,kind", LOSSES, ids=[spec[0] for spec in LOSSES])
def test_loss_matches_torch(torch, name, make, make_torch, kind):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 5))
    if kind == "labels":
        target = rng.integers(0, 5, 6)
    elif kind == "probs":
        x = 1 / (1 + np.exp(-x))
        target = rng.random((6, 5))
    elif kind == "binary":
        target = (rng.random((6, 5)) > 0.5).astype(np.float64)
    else:
        target = rng.standard_normal((6, 5))
    compare(torch, make_torch(torch.nn), make(), x, target=target)


def test_cross_entropy_is_stable_for_huge_logits(torch):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5.0]], dtype=np.float32)
    y = np.array([1, 1])
    loss = nn.CrossEntropyLoss()(gn.tensor(x, requires_grad=True), gn.tensor(y))
    expected = torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(y))
    assert np.isfinite(loss.item())
    np.testing.assert_allclose(loss.item(), expected.item(), rtol=1e-6)
