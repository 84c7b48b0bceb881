"""AdamW: Adam with decoupled weight decay (the weights shrink directly; the decay never enters the moments)."""

from __future__ import annotations

from glassnet.optim.adam import Adam
from glassnet.optim.optimizer import ParamsT


class AdamW(Adam):
    r"""AdamW (Loshchilov & Hutter, 2019): Adam whose weight decay multiplies the weights instead of the gradient.

    The update for each parameter :math:`\theta` with gradient :math:`g_t` at step :math:`t`::

        if maximize: g_t = -g_t
        theta_{t-1} = theta_{t-1} * (1 - lr * weight_decay)   # decoupled decay, before the Adam step
        m_t = m_{t-1} + (1 - beta1) * (g_t - m_{t-1})
        v_t = beta2 * v_{t-1} + (1 - beta2) * g_t^2
        if amsgrad: v_max_t = max(v_max_{t-1}, v_t); v = v_max_t else v = v_t
        denom = sqrt(v) / sqrt(1 - beta2^t) + eps
        theta_t = theta_{t-1} - (lr / (1 - beta1^t)) * m_t / denom

    Args:
        params: iterable of parameters, or of dicts defining parameter groups.
        lr: learning rate (default 1e-3).
        betas: coefficients of the running averages of the gradient and its square (default (0.9, 0.999)).
        eps: added to the denominator for numerical stability (default 1e-8).
        weight_decay: decoupled weight decay coefficient (default 1e-2).
        amsgrad: use the maximum of past second moments.
        maximize: maximize the objective instead of minimizing it.

    Example:
        >>> import glassnet as gn
        >>> from glassnet import optim
        >>> w = gn.tensor([1.0, -1.0], requires_grad=True)
        >>> opt = optim.AdamW([w], lr=0.1, weight_decay=0.5)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> w
        tensor([ 0.85, -0.85], requires_grad=True)
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize, decoupled_weight_decay=True)

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the state saved by ``state_dict()``; the groups keep ``decoupled_weight_decay=True``."""
        super().load_state_dict(state_dict)
        for group in self.param_groups:  # AdamW always decouples, whatever the saved dict says (as PyTorch)
            group["decoupled_weight_decay"] = True
