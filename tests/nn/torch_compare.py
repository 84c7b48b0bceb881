"""Run one glassnet module and its PyTorch twin on the same input and state; compare everything."""

from __future__ import annotations

import numpy as np

import glassnet as gn


def copy_state(torch_module, module) -> None:
    """Load the torch module's state_dict (as NumPy arrays) into the glassnet module, strictly."""
    module.load_state_dict({k: v.detach().numpy() for k, v in torch_module.state_dict().items()})


def compare(torch, torch_module, module, x, dtype=np.float64, target=None, loss_weights=None, train=True):
    """Forward + backward in both libraries; assert outputs and all gradients agree.

    Returns the largest relative error ||actual - expected|| / ||expected|| seen.
    """
    tol = dict(rtol=1e-9, atol=1e-11) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-5)
    torch_dtype = torch.float64 if dtype == np.float64 else torch.float32
    torch_module = torch_module.to(torch_dtype)
    module.to(dtype)
    copy_state(torch_module, module)
    torch_module.train(train)
    module.train(train)
    x = np.asarray(x, dtype=dtype)
    tx = torch.tensor(x, requires_grad=True)
    gx = gn.tensor(x, requires_grad=True)
    t_out = torch_module(tx) if target is None else torch_module(tx, torch.tensor(target))
    g_out = module(gx) if target is None else module(gx, gn.tensor(target))
    worst = _close(g_out.data, t_out.detach().numpy(), tol, "output")
    weights = np.random.default_rng(5).standard_normal(t_out.shape).astype(dtype)
    t_out.backward(torch.tensor(weights))
    g_out.backward(gn.tensor(weights))
    worst = max(worst, _close(gx.grad.data, tx.grad.numpy(), tol, "input grad"))
    torch_params = dict(torch_module.named_parameters())
    for name, p in module.named_parameters():
        worst = max(worst, _close(p.grad.data, torch_params[name].grad.numpy(), tol, f"grad of {name}"))
    torch_buffers = dict(torch_module.named_buffers())
    for name, b in module.named_buffers():
        worst = max(worst, _close(b.data, torch_buffers[name].numpy(), tol, f"buffer {name}"))
    return worst


def _close(actual, expected, tol, what) -> float:
    np.testing.assert_allclose(actual, expected, err_msg=what, **tol)
    norm = float(np.linalg.norm(np.ravel(expected)))
    return float(np.linalg.norm(np.ravel(actual - expected))) / norm if norm else 0.0
