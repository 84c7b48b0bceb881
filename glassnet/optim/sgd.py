"""SGD: stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay."""

from __future__ import annotations

from typing import Any

import numpy as np

from glassnet.optim._util import effective_grad, step_kernels
from glassnet.optim.optimizer import Optimizer, ParamsT
from glassnet.tensor import Tensor


def sgd_update(
    param: np.ndarray,
    grad: np.ndarray,
    momentum_buffer: np.ndarray | None,
    work: np.ndarray,
    grad_work: np.ndarray | None,
    *,
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
) -> np.ndarray | None:
    """One SGD step on ``param`` in place (PyTorch's ``_single_tensor_sgd``, same operations in the same order).

    Args:
        param: the parameter array, updated in place.
        grad: its gradient (left untouched).
        momentum_buffer: the velocity from the previous step, updated in place; None on the first step.
        work: a scratch array shaped like ``param``.
        grad_work: a second scratch array, needed when ``weight_decay != 0`` or ``maximize``.

    Returns:
        The momentum buffer (a new array on the first step), or None when ``momentum == 0``.
    """
    # Python floats, as PyTorch takes a NumPy scalar: a float64 one would turn float32 arithmetic into float64
    lr, momentum, dampening, weight_decay = float(lr), float(momentum), float(dampening), float(weight_decay)
    d_p = effective_grad(param, grad, grad_work, weight_decay=weight_decay, maximize=maximize)
    # One compiled pass where the kernels take the arrays: the same operations in the same order.
    if momentum == 0 and (kernels := step_kernels(param, d_p)) is not None:
        kernels.add_scaled(param, d_p, -lr)
        return None
    if (
        momentum != 0
        and momentum_buffer is not None
        and (kernels := step_kernels(param, d_p, momentum_buffer)) is not None
    ):
        kernels.sgd_momentum(param, d_p, momentum_buffer, bool(nesterov), momentum, 1 - dampening, -lr)
        return momentum_buffer
    update = d_p
    if momentum != 0:
        if momentum_buffer is None:
            momentum_buffer = d_p.copy()
        else:
            momentum_buffer *= momentum
            if dampening == 0:
                momentum_buffer += d_p
            else:
                np.multiply(d_p, 1 - dampening, out=work)
                momentum_buffer += work
        if nesterov:
            np.multiply(momentum_buffer, momentum, out=work)
            np.add(d_p, work, out=work)
            update = work
        else:
            update = momentum_buffer
    np.multiply(update, -lr, out=work)
    param += work
    return momentum_buffer


class SGD(Optimizer):
    r"""Stochastic gradient descent, optionally with (Nesterov) momentum and L2 weight decay.

    The update for each parameter :math:`\theta` with gradient :math:`g_t` (as in PyTorch)::

        if maximize:          g_t = -g_t
        if weight_decay != 0: g_t = g_t + weight_decay * theta_{t-1}
        if momentum != 0:
            if t > 1:         b_t = momentum * b_{t-1} + (1 - dampening) * g_t
            else:             b_t = g_t
            if nesterov:      g_t = g_t + momentum * b_t
            else:             g_t = b_t
        theta_t = theta_{t-1} - lr * g_t

    Args:
        params: iterable of parameters, or of dicts defining parameter groups.
        lr: learning rate (default 1e-3, as PyTorch 2.13).
        momentum: momentum factor (default 0).
        dampening: dampening of the momentum (default 0).
        weight_decay: L2 penalty added to the gradient (default 0).
        nesterov: use Nesterov momentum (needs momentum > 0 and dampening 0).
        maximize: maximize the objective instead of minimizing it.

    State per parameter: ``momentum_buffer`` (only when momentum != 0).

    Example:
        >>> import glassnet as gn
        >>> from glassnet import optim
        >>> w = gn.tensor([1.0, -1.0], requires_grad=True)
        >>> opt = optim.SGD([w], lr=0.1, momentum=0.9)
        >>> for _ in range(2):
        ...     opt.zero_grad()
        ...     (w * w).sum().backward()
        ...     opt.step()
        >>> w
        tensor([ 0.46, -0.46], requires_grad=True)
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _check_options(self, group: dict[str, Any]) -> None:
        if not group["lr"] >= 0.0:
            self._fail(f"Invalid learning rate: {group['lr']} (must be >= 0)")
        if not group["momentum"] >= 0.0:
            self._fail(f"Invalid momentum value: {group['momentum']} (must be >= 0)")
        if not group["weight_decay"] >= 0.0:
            self._fail(f"Invalid weight_decay value: {group['weight_decay']} (must be >= 0)")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            self._fail(
                "Nesterov momentum requires a momentum and zero dampening, got "
                f"momentum={group['momentum']}, dampening={group['dampening']}"
            )

    def _update(self, p: Tensor, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        needs_grad_work = group["weight_decay"] != 0 or group["maximize"]
        buffer = sgd_update(
            p.data,
            grad,
            state.get("momentum_buffer"),
            self._buffer(p, "work"),
            self._buffer(p, "grad") if needs_grad_work else None,
            lr=group["lr"],
            momentum=group["momentum"],
            dampening=group["dampening"],
            weight_decay=group["weight_decay"],
            nesterov=group["nesterov"],
            maximize=group["maximize"],
        )
        if buffer is not None:
            state["momentum_buffer"] = buffer
