"""LeNet-5 in glassnet with weights copied from PyTorch: the same loss and gradients on a batch of 64."""

from __future__ import annotations

import numpy as np

from glassnet import nn
from tests.nn.torch_compare import compare


def lenet(lib_nn):
    return lib_nn.Sequential(
        lib_nn.Conv2d(1, 6, 5, padding=2),
        lib_nn.ReLU(),
        lib_nn.MaxPool2d(2),
        lib_nn.Conv2d(6, 16, 5),
        lib_nn.ReLU(),
        lib_nn.MaxPool2d(2),
        lib_nn.Flatten(),
        lib_nn.Linear(400, 120),
        lib_nn.ReLU(),
        lib_nn.Linear(120, 84),
        lib_nn.ReLU(),
        lib_nn.Linear(84, 10),
    )


def test_lenet_loss_and_every_gradient_match_torch_float64(torch):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 1, 28, 28))
    labels = rng.integers(0, 10, 64)
    tmodel, model = lenet(torch.nn).double(), lenet(nn).double()
    model.load_state_dict({k: v.detach().numpy() for k, v in tmodel.state_dict().items()})

    import glassnet as gn

    gx = gn.tensor(x, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    loss = nn.CrossEntropyLoss()(model(gx), gn.tensor(labels))
    tloss = torch.nn.CrossEntropyLoss()(tmodel(tx), torch.tensor(labels))
    loss.backward()
    tloss.backward()
    assert abs(loss.item() - tloss.item()) <= 1e-12 * abs(tloss.item())
    tparams = dict(tmodel.named_parameters())
    worst = {}
    for name, p in model.named_parameters():
        expected = tparams[name].grad.numpy()
        rel = np.linalg.norm(p.grad.data - expected) / np.linalg.norm(expected)
        kind = type(model[int(name.split(".")[0])]).__name__
        worst[kind] = max(worst.get(kind, 0.0), rel)
        assert rel <= 1e-6, f"{name}: relative error {rel:.2e}"
    rel_x = np.linalg.norm(gx.grad.data - tx.grad.numpy()) / np.linalg.norm(tx.grad.numpy())
    assert rel_x <= 1e-6
    print("largest relative gradient error per layer type:", {k: f"{v:.1e}" for k, v in worst.items()})


def test_lenet_float32_forward_backward_close(torch):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 1, 28, 28))
    compare(torch, lenet(torch.nn), lenet(nn), x, dtype=np.float32)
