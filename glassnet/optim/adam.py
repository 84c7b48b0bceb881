"""Adam: adaptive moment estimation, with optional AMSGrad and L2 (or decoupled, see AdamW) weight decay."""

from __future__ import annotations

from typing import Any

import numpy as np

from glassnet.optim._util import effective_grad, lerp_, step_kernels
from glassnet.optim.optimizer import Optimizer, ParamsT
from glassnet.tensor import Tensor


def adam_update(
    param: np.ndarray,
    grad: np.ndarray,
    state: dict[str, Any],
    work: np.ndarray,
    grad_work: np.ndarray | None,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    amsgrad: bool,
    maximize: bool,
    decoupled_weight_decay: bool,
) -> None:
    """One Adam/AdamW step on ``param`` in place (PyTorch's ``_single_tensor_adam``, same order of operations).

    Args:
        param: the parameter array, updated in place.
        grad: its gradient (left untouched).
        state: ``step``, ``exp_avg``, ``exp_avg_sq`` and ``max_exp_avg_sq`` (amsgrad); updated in place.
        work: a scratch array shaped like ``param``.
        grad_work: a second scratch array, needed for coupled weight decay or ``maximize``.
    """
    # Python floats, as PyTorch takes a NumPy scalar: a float64 one would turn float32 arithmetic into float64
    lr, beta1, beta2, eps, weight_decay = float(lr), float(beta1), float(beta2), float(eps), float(weight_decay)
    coupled_decay = 0 if decoupled_weight_decay else weight_decay
    grad = effective_grad(param, grad, grad_work, weight_decay=coupled_decay, maximize=maximize)
    state["step"] += 1
    step = state["step"]

    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    step_size = lr / bias_correction1
    bias_correction2_sqrt = bias_correction2**0.5
    max_exp_avg_sq = state["max_exp_avg_sq"] if amsgrad else exp_avg_sq
    kernels = step_kernels(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq)
    if kernels is not None:  # one compiled pass: the operations below, in their order
        weight, decoupled = 1 - beta1, weight_decay != 0 and decoupled_weight_decay
        small = abs(weight) < 0.5  # lerp_'s formula
        kernels.adam(
            *(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, small, bool(amsgrad), decoupled),
            *(1 - lr * weight_decay, weight if small else 1 - weight, beta2, 1 - beta2),
            *(bias_correction2_sqrt, eps, -step_size),
        )
        return
    if weight_decay != 0 and decoupled_weight_decay:
        param *= 1 - lr * weight_decay
    lerp_(exp_avg, grad, 1 - beta1, work)
    exp_avg_sq *= beta2
    np.multiply(grad, 1 - beta2, out=work)  # addcmul: (value * g) * g
    work *= grad
    exp_avg_sq += work

    second_moment = exp_avg_sq
    if amsgrad:
        second_moment = max_exp_avg_sq
        np.maximum(second_moment, exp_avg_sq, out=second_moment)
    np.sqrt(second_moment, out=work)
    work /= bias_correction2_sqrt
    work += eps  # work is now the denominator
    np.divide(exp_avg, work, out=work)
    work *= -step_size
    param += work


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2014), as in PyTorch, with optional AMSGrad.

    The update for each parameter :math:`\theta` with gradient :math:`g_t` at step :math:`t`::

        if maximize:          g_t = -g_t
        if weight_decay != 0:
            if decoupled_weight_decay: theta_{t-1} = theta_{t-1} * (1 - lr * weight_decay)   # AdamW
            else:                      g_t = g_t + weight_decay * theta_{t-1}
        m_t = m_{t-1} + (1 - beta1) * (g_t - m_{t-1})        # exp_avg (lerp)
        v_t = beta2 * v_{t-1} + (1 - beta2) * g_t^2           # exp_avg_sq
        if amsgrad: v_max_t = max(v_max_{t-1}, v_t); v = v_max_t else v = v_t
        denom = sqrt(v) / sqrt(1 - beta2^t) + eps             # eps added after the bias correction
        theta_t = theta_{t-1} - (lr / (1 - beta1^t)) * m_t / denom

    Args:
        params: iterable of parameters, or of dicts defining parameter groups.
        lr: learning rate (default 1e-3).
        betas: coefficients of the running averages of the gradient and its square (default (0.9, 0.999)).
        eps: added to the denominator for numerical stability (default 1e-8).
        weight_decay: L2 penalty added to the gradient (default 0).
        amsgrad: use the maximum of past second moments (Reddi et al., 2018).
        maximize: maximize the objective instead of minimizing it.
        decoupled_weight_decay: shrink the weights directly (AdamW) instead of adding an L2 gradient.

    State per parameter: ``step``, ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq`` (amsgrad).

    Example:
        >>> import glassnet as gn
        >>> from glassnet import optim
        >>> w = gn.tensor([1.0, -1.0], requires_grad=True)
        >>> opt = optim.Adam([w], lr=0.1)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> w.data.round(4)
        array([ 0.9, -0.9], dtype=float32)
    """

    _scalar_state = ("step",)

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults)

    def _check_options(self, group: dict[str, Any]) -> None:
        if not group["lr"] >= 0.0:
            self._fail(f"Invalid learning rate: {group['lr']} (must be >= 0)")
        if not group["eps"] >= 0.0:
            self._fail(f"Invalid epsilon value: {group['eps']} (must be >= 0)")
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            self._fail(f"betas must be a pair (beta1, beta2), got {betas!r}")
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                self._fail(f"Invalid beta parameter at index {i}: {beta} (must be in [0, 1))")
        group["betas"] = tuple(betas)
        if not group["weight_decay"] >= 0.0:
            self._fail(f"Invalid weight_decay value: {group['weight_decay']} (must be >= 0)")

    def _init_state(self, param: np.ndarray, group: dict[str, Any], state: dict[str, Any]) -> None:
        state["step"] = 0.0
        state["exp_avg"] = np.zeros_like(param)
        state["exp_avg_sq"] = np.zeros_like(param)
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = np.zeros_like(param)

    def _update(self, p: Tensor, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        decoupled = group["decoupled_weight_decay"]
        needs_grad_work = (group["weight_decay"] != 0 and not decoupled) or group["maximize"]
        beta1, beta2 = group["betas"]
        adam_update(
            p.data,
            grad,
            state,
            self._buffer(p, "work"),
            self._buffer(p, "grad") if needs_grad_work else None,
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            amsgrad=group["amsgrad"],
            maximize=group["maximize"],
            decoupled_weight_decay=decoupled,
        )
