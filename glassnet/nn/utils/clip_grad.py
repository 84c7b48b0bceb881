"""Gradient clipping: clip_grad_norm_ (rescale all gradients to a maximum total norm) and clip_grad_value_."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from glassnet.tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _as_list(parameters: Tensor | Iterable[Tensor], fn: str) -> list[Tensor]:
    if isinstance(parameters, Tensor):
        return [parameters]
    params = list(parameters)
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"{fn}: parameters must be Tensors, but item {i} is a {type(p).__name__}")
    return params


def _sum_of_squares(flat: np.ndarray) -> float:
    """sum(x**2) without overflow or underflow (BLAS dot first, a rescaled dot when it over/underflows)."""
    with np.errstate(over="ignore", under="ignore"):
        squares = float(np.dot(flat, flat))
    info = np.finfo(flat.dtype)
    if math.isfinite(squares) and squares > info.tiny / info.eps:
        return squares
    largest = float(max(flat.max(), -flat.min()))
    if largest == 0.0 or not math.isfinite(largest):
        return largest * largest if not math.isnan(largest) else largest
    scaled = flat / largest
    return float(np.dot(scaled, scaled)) * largest * largest


def _vector_norm(array: np.ndarray, norm_type: float) -> float:
    """The p-norm of all elements of ``array`` (p = inf, -inf, 0 or any positive number), as a Python float."""
    flat = array.reshape(-1)
    if flat.size == 0:
        return 0.0
    if norm_type == 2.0:
        squares = _sum_of_squares(flat)
        return math.sqrt(squares) if not math.isinf(squares) else math.inf
    if norm_type == math.inf:
        return float(max(flat.max(), -flat.min()))  # no |x| temporary; NaN propagates
    if norm_type == -math.inf:
        return float(np.abs(flat).min())
    if norm_type == 0.0:
        return float(np.count_nonzero(flat))
    if norm_type == 1.0:
        return float(np.abs(flat).sum(dtype=np.float64))
    return float((np.abs(flat).astype(np.float64) ** norm_type).sum() ** (1.0 / norm_type))


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> Tensor:
    """Scale the gradients of ``parameters`` in place so that their total norm is at most ``max_norm``.

    The total norm is the ``norm_type``-norm of the vector of per-gradient norms (as if all gradients were
    concatenated). The gradients are multiplied by ``min(1, max_norm / (total_norm + 1e-6))``, as in
    PyTorch. Parameters whose grad is None are ignored.

    Args:
        parameters: a Tensor or an iterable of Tensors whose ``.grad`` is clipped.
        max_norm: largest allowed total norm.
        norm_type: the p of the p-norm: 2.0 (default), 1.0, ``float('inf')`` (largest absolute value), ...
        error_if_nonfinite: raise a RuntimeError if the total norm is NaN or infinite, instead of
            scaling the gradients by it (which makes them NaN or zero).

    Returns:
        The total norm of the gradients before clipping, a 0-d Tensor of the gradients' dtype.

    Example:
        >>> import glassnet as gn
        >>> from glassnet.nn.utils import clip_grad_norm_
        >>> w = gn.tensor([3.0, 4.0], requires_grad=True)
        >>> (w * w).sum().backward()             # grad (6, 8), norm 10
        >>> clip_grad_norm_([w], max_norm=1.0)
        tensor(10.)
        >>> w.grad.data.round(4)
        array([0.6, 0.8], dtype=float32)
    """
    params = _as_list(parameters, "clip_grad_norm_")
    max_norm = float(max_norm)
    norm_type = float(norm_type)
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return Tensor(np.array(0.0, dtype=np.float32))
    dtype = np.result_type(*[g.data.dtype for g in grads])
    norms = np.array([_vector_norm(g.data, norm_type) for g in grads], dtype=dtype)
    total_norm = dtype.type(_vector_norm(norms, norm_type))
    if error_if_nonfinite and not np.isfinite(total_norm):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} for gradients from `parameters` is "
            f"{total_norm}, so it cannot be clipped. To scale the gradients by the non-finite norm anyway, "
            "set `error_if_nonfinite=False`; to find the parameter, look for NaN/inf in each p.grad"
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        clip_coef = np.minimum(dtype.type(max_norm) / (total_norm + dtype.type(1e-6)), dtype.type(1.0))
        for g in grads:  # a NaN or inf norm makes the gradients NaN or zero, as in PyTorch
            g.data *= clip_coef.astype(g.data.dtype)
            g._vc[0] += 1
    return Tensor(np.asarray(total_norm, dtype=dtype))


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient of ``parameters`` in place to ``[-clip_value, clip_value]``.

    Args:
        parameters: a Tensor or an iterable of Tensors whose ``.grad`` is clipped (None grads are skipped).
        clip_value: the largest allowed absolute value of a gradient element.

    Example:
        >>> import glassnet as gn
        >>> from glassnet.nn.utils import clip_grad_value_
        >>> w = gn.tensor([3.0, -4.0, 0.1], requires_grad=True)
        >>> (w * w).sum().backward()             # grad (6, -8, 0.2)
        >>> clip_grad_value_([w], clip_value=1.0)
        >>> w.grad
        tensor([ 1. , -1. ,  0.2])
    """
    params = _as_list(parameters, "clip_grad_value_")
    clip_value = float(clip_value)
    for p in params:
        if p.grad is None:
            continue
        np.clip(p.grad.data, -clip_value, clip_value, out=p.grad.data)
        p.grad._vc[0] += 1
