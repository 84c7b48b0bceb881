"""In-place array helpers shared by the update functions (PyTorch's lerp, the weight-decayed gradient)."""

from __future__ import annotations

import numpy as np

from glassnet import compiled


def effective_grad(
    param: np.ndarray, grad: np.ndarray, grad_work: np.ndarray | None, *, weight_decay: float, maximize: bool
) -> np.ndarray:
    """``(-grad if maximize else grad) + weight_decay * param``, written into ``grad_work`` when it differs from grad.

    The gradient itself is never modified (an inspector may still be reading it).
    """
    if weight_decay == 0 and not maximize:
        return grad
    if weight_decay != 0:
        np.multiply(param, weight_decay, out=grad_work)
        # wd * p - g == -g + wd * p exactly (IEEE addition is commutative, negation exact)
        (np.subtract if maximize else np.add)(grad_work, grad, out=grad_work)
    else:
        np.negative(grad, out=grad_work)
    return grad_work


def lerp_(target: np.ndarray, end: np.ndarray, weight: float, work: np.ndarray) -> None:
    """``target += weight * (end - target)`` in place, with torch.lerp's two formulas (for its rounding).

    For ``|weight| < 0.5`` PyTorch computes ``target + weight * (end - target)``, otherwise
    ``end - (end - target) * (1 - weight)``; ``work`` is a scratch array shaped like ``target``.
    """
    np.subtract(end, target, out=work)
    if abs(weight) < 0.5:
        work *= weight
        target += work
    else:
        work *= 1 - weight
        np.subtract(end, work, out=target)


def step_kernels(*arrays: np.ndarray):
    """The compiled kernels for a fused optimizer step over ``arrays`` (the parameter first), or None.

    None unless all are C-contiguous arrays of the parameter's shape and dtype, a dtype the kernels
    take: the update functions then run their NumPy operations, which stay the reference.
    """
    if not arrays[0].flags.c_contiguous:
        return None
    return compiled.elementwise_kernels(*arrays)
