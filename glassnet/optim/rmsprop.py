"""RMSprop: gradient divided by a running root-mean-square, optionally centered and with momentum."""

from __future__ import annotations

from typing import Any

import numpy as np

from glassnet.optim._util import effective_grad, lerp_, step_kernels
from glassnet.optim.optimizer import Optimizer, ParamsT
from glassnet.tensor import Tensor


def rmsprop_update(
    param: np.ndarray,
    grad: np.ndarray,
    state: dict[str, Any],
    work: np.ndarray,
    grad_work: np.ndarray | None,
    *,
    lr: float,
    alpha: float,
    eps: float,
    weight_decay: float,
    momentum: float,
    centered: bool,
    maximize: bool,
) -> None:
    """One RMSprop step on ``param`` in place (PyTorch's ``_single_tensor_rmsprop``, same order of operations).

    Args:
        param: the parameter array, updated in place.
        grad: its gradient (left untouched).
        state: ``step``, ``square_avg``, and ``momentum_buffer`` / ``grad_avg`` when used; updated in place.
        work: a scratch array shaped like ``param``.
        grad_work: a second scratch array, needed when ``weight_decay != 0`` or ``maximize``.
    """
    # Python floats, as PyTorch takes a NumPy scalar: a float64 one would turn float32 arithmetic into float64
    lr, alpha, eps, weight_decay, momentum = float(lr), float(alpha), float(eps), float(weight_decay), float(momentum)
    grad = effective_grad(param, grad, grad_work, weight_decay=weight_decay, maximize=maximize)
    state["step"] += 1
    square_avg = state["square_avg"]
    grad_avg = state["grad_avg"] if centered else square_avg  # unused by the kernel when not centered
    buffer = state["momentum_buffer"] if momentum > 0 else square_avg  # likewise
    kernels = step_kernels(param, grad, square_avg, grad_avg, buffer)
    if kernels is not None:  # one compiled pass: the operations below, in their order
        weight = 1 - alpha
        small = abs(weight) < 0.5  # lerp_'s formula
        kernels.rmsprop(
            *(param, grad, square_avg, grad_avg, buffer, small, bool(centered), bool(momentum > 0)),
            *(alpha, 1 - alpha, weight if small else 1 - weight, eps, momentum, -lr),
        )
        return
    square_avg *= alpha
    np.multiply(grad, 1 - alpha, out=work)  # addcmul: (value * g) * g
    work *= grad
    square_avg += work
    if centered:
        lerp_(grad_avg, grad, 1 - alpha, work)
        np.multiply(grad_avg, grad_avg, out=work)
        np.subtract(square_avg, work, out=work)
        np.sqrt(work, out=work)
    else:
        np.sqrt(square_avg, out=work)
    work += eps  # work is now the denominator `avg`
    if momentum > 0:
        buf = state["momentum_buffer"]
        buf *= momentum
        np.divide(grad, work, out=work)
        buf += work
        np.multiply(buf, -lr, out=work)
    else:
        np.divide(grad, work, out=work)
        work *= -lr
    param += work


class RMSprop(Optimizer):
    r"""RMSprop (Hinton's lecture 6e), as in PyTorch: the step is the gradient divided by a running RMS.

    The update for each parameter :math:`\theta` with gradient :math:`g_t`::

        if maximize:          g_t = -g_t
        if weight_decay != 0: g_t = g_t + weight_decay * theta_{t-1}
        v_t = alpha * v_{t-1} + (1 - alpha) * g_t^2                  # square_avg
        if centered:
            a_t = a_{t-1} + (1 - alpha) * (g_t - a_{t-1})           # grad_avg (lerp)
            avg = sqrt(v_t - a_t^2) + eps
        else:
            avg = sqrt(v_t) + eps
        if momentum > 0:
            b_t = momentum * b_{t-1} + g_t / avg                     # momentum_buffer
            theta_t = theta_{t-1} - lr * b_t
        else:
            theta_t = theta_{t-1} - lr * g_t / avg

    Args:
        params: iterable of parameters, or of dicts defining parameter groups.
        lr: learning rate (default 1e-2).
        alpha: smoothing constant of the squared-gradient average (default 0.99).
        eps: added to the denominator for numerical stability (default 1e-8).
        weight_decay: L2 penalty added to the gradient (default 0).
        momentum: momentum factor (default 0).
        centered: normalize by an estimate of the gradient's variance instead of its second moment.
        maximize: maximize the objective instead of minimizing it.

    State per parameter: ``step``, ``square_avg``, ``momentum_buffer`` (momentum > 0), ``grad_avg`` (centered).

    Example:
        >>> import glassnet as gn
        >>> from glassnet import optim
        >>> w = gn.tensor([1.0, -1.0], requires_grad=True)
        >>> opt = optim.RMSprop([w], lr=0.01)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> w.data.round(4)
        array([ 0.9, -0.9], dtype=float32)
    """

    _scalar_state = ("step",)

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "alpha": alpha,
            "eps": eps,
            "centered": centered,
            "weight_decay": weight_decay,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _check_options(self, group: dict[str, Any]) -> None:
        for key in ("lr", "eps", "momentum", "weight_decay", "alpha"):
            if not group[key] >= 0.0:
                label = {"lr": "learning rate", "eps": "epsilon value"}.get(key, f"{key} value")
                self._fail(f"Invalid {label}: {group[key]} (must be >= 0)")

    def _init_state(self, param: np.ndarray, group: dict[str, Any], state: dict[str, Any]) -> None:
        state["step"] = 0.0
        state["square_avg"] = np.zeros_like(param)
        if group["momentum"] > 0:
            state["momentum_buffer"] = np.zeros_like(param)
        if group["centered"]:
            state["grad_avg"] = np.zeros_like(param)

    def _update(self, p: Tensor, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        needs_grad_work = group["weight_decay"] != 0 or group["maximize"]
        rmsprop_update(
            p.data,
            grad,
            state,
            self._buffer(p, "work"),
            self._buffer(p, "grad") if needs_grad_work else None,
            lr=group["lr"],
            alpha=group["alpha"],
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            momentum=group["momentum"],
            centered=group["centered"],
            maximize=group["maximize"],
        )
