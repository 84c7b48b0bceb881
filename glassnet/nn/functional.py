"""nn.functional: the layers, activations and losses as functions of tensors (PyTorch's signatures).

Layers with parameters call fused primitives (linear, conv2d, batch_norm, the losses); the rest are
compositions of primitives and need no backward code of their own.
"""

from __future__ import annotations

import numpy as np

from glassnet import _backend
from glassnet.autograd.function import GlassnetError
from glassnet.ops import activation as _act
from glassnet.ops import conv as _conv
from glassnet.ops import linalg as _linalg
from glassnet.ops import loss as _loss
from glassnet.ops import norm as _norm
from glassnet.ops import pool as _pool
from glassnet.ops import shape as _shape
from glassnet.tensor import Tensor

_REDUCTIONS = ("mean", "sum", "none")


def _pair(value, name: str, op: str) -> tuple:
    if isinstance(value, (int, np.integer)):
        return (int(value), int(value))
    value = tuple(int(v) for v in value)
    if len(value) != 2:
        raise ValueError(f"{op}: {name} must be an int or a pair, got {value}")
    return value


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x W^T + b, with x (..., in), W (out, in), b (out,).

    Example:
        >>> import glassnet as gn
        >>> gn.nn.functional.linear(gn.ones(2, 3), gn.ones(4, 3)).shape
        (2, 4)
    """
    if input.shape[-1:] != weight.shape[1:]:
        raise GlassnetError(f"linear: input {tuple(input.shape)} does not match weight {tuple(weight.shape)}")
    if bias is None:
        return _linalg.Linear.apply(input, weight)
    return _linalg.Linear.apply(input, weight, bias)


def conv2d(
    input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1, groups=1
) -> Tensor:
    """2-D cross-correlation: input (N, C, H, W), weight (O, C / groups, kh, kw), bias (O,) -> (N, O, Ho, Wo).

    ``padding`` is an int, a pair, or 'valid' / 'same' (PyTorch's forms); the op checks the shapes.
    """
    options = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    if bias is None:
        return _conv.Conv2d.apply(input, weight, **options)
    return _conv.Conv2d.apply(input, weight, bias, **options)


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0) -> Tensor:
    """Max over kh x kw windows of (N, C, H, W); stride defaults to kernel_size."""
    kernel = _pair(kernel_size, "kernel_size", "max_pool2d")
    stride = kernel if stride is None else _pair(stride, "stride", "max_pool2d")
    return _pool.MaxPool2d.apply(
        input, kernel_size=kernel, stride=stride, padding=_pair(padding, "padding", "max_pool2d")
    )


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0) -> Tensor:
    """Mean over kh x kw windows of (N, C, H, W) (zero padding counted, as PyTorch's default)."""
    kernel = _pair(kernel_size, "kernel_size", "avg_pool2d")
    stride = kernel if stride is None else _pair(stride, "stride", "avg_pool2d")
    return _pool.AvgPool2d.apply(
        input, kernel_size=kernel, stride=stride, padding=_pair(padding, "padding", "avg_pool2d")
    )


def batch_norm(
    input: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise over every axis but 1; in training with batch statistics (updating the running ones)."""
    if not training and (running_mean is None or running_var is None):
        raise GlassnetError("batch_norm: running_mean and running_var are required when training=False")
    rm = None if running_mean is None else running_mean.data
    rv = None if running_var is None else running_var.data
    params = () if weight is None else (weight, bias)
    return _norm.BatchNorm.apply(
        input, *params, running_mean=rm, running_var=rv, training=training, momentum=momentum, eps=eps
    )


def dropout(input: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Inverted dropout: zero each element with probability p and scale the rest by 1 / (1 - p)."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: probability has to be between 0 and 1, got {p}")
    if not training or p == 0:
        return input
    if p == 1:
        return input * 0.0
    keep = _backend.default_generator().random(input.shape, dtype=np.float32) >= p
    return input * Tensor((keep * (1.0 / (1.0 - p))).astype(input.dtype))


def relu(input: Tensor) -> Tensor:
    return _act.ReLU.apply(input)


def leaky_relu(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    return _act.LeakyReLU.apply(input, negative_slope=negative_slope)


def sigmoid(input: Tensor) -> Tensor:
    return _act.Sigmoid.apply(input)


def tanh(input: Tensor) -> Tensor:
    return _act.Tanh.apply(input)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    return _act.GELU.apply(input, approximate=approximate)


def silu(input: Tensor) -> Tensor:
    return input * input.sigmoid()


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, linear above ``threshold`` as PyTorch."""
    from glassnet.factory import where

    scaled = input * beta
    soft = (scaled.clamp(max=threshold).exp() + 1.0).log() / beta
    return where(scaled.data > threshold, input, soft)


def softmax(input: Tensor, dim: int) -> Tensor:
    return input.softmax(dim)


def log_softmax(input: Tensor, dim: int) -> Tensor:
    return input.log_softmax(dim)


def pad(input: Tensor, pad, mode: str = "constant", value: float = 0.0) -> Tensor:
    """Pad the last axes: ``pad`` = (left, right, top, bottom, ...) as torch.nn.functional.pad."""
    if mode != "constant":
        raise NotImplementedError(f"pad: only mode='constant' is implemented, got {mode!r}")
    return _shape.Pad.apply(input, pad=tuple(int(p) for p in pad), value=value)


def flatten(input: Tensor, start_dim: int = 1, end_dim: int = -1) -> Tensor:
    return input.flatten(start_dim, end_dim)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    labels = np.asarray(tensor.data if isinstance(tensor, Tensor) else tensor)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expected integer labels, got {labels.dtype}")
    n = int(labels.max()) + 1 if num_classes < 0 else num_classes
    return Tensor(np.eye(n, dtype=np.int64)[labels])


def _check_reduction(reduction: str, op: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _same_shape(input: Tensor, target: Tensor, op: str) -> None:
    if input.shape != target.shape:
        raise GlassnetError(f"{op}: input {tuple(input.shape)} and target {tuple(target.shape)} differ in shape")


def _as_target(target, like: Tensor) -> Tensor:
    if not isinstance(target, Tensor):
        target = Tensor(np.asarray(target, dtype=like.dtype))
    elif target.dtype != like.dtype and target.dtype.kind != "f":
        target = Tensor(target.data.astype(like.dtype))
    return target


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean (or sum, or none) of (input - target)**2."""
    _check_reduction(reduction, "mse_loss")
    target = _as_target(target, input)
    _same_shape(input, target, "mse_loss")
    diff = input - target
    return _reduce(diff * diff, reduction)


def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean (or sum, or none) of |input - target|."""
    _check_reduction(reduction, "l1_loss")
    target = _as_target(target, input)
    _same_shape(input, target, "l1_loss")
    return _reduce((input - target).abs(), reduction)


def _array_or_none(value):
    """A class-weight argument (Tensor, array or None) as an array (weights get no gradient)."""
    if value is None:
        return None
    return np.asarray(value.data if isinstance(value, Tensor) else value)


def _labels(target) -> np.ndarray:
    return np.asarray(target.data if isinstance(target, Tensor) else target)


def cross_entropy(
    input: Tensor,
    target,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross-entropy of logits (N, C[, d...]) and integer class labels (N[, d...]), fused and stable.

    Example:
        >>> import glassnet as gn
        >>> logits = gn.tensor([[2.0, 0.0, -1.0]])
        >>> round(gn.nn.functional.cross_entropy(logits, gn.tensor([0])).item(), 4)
        0.1698
    """
    _check_reduction(reduction, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    return _loss.CrossEntropy.apply(
        input,
        target=_labels(target),
        weight=_array_or_none(weight),
        ignore_index=ignore_index,
        reduction=reduction,
        label_smoothing=label_smoothing,
    )


def nll_loss(input: Tensor, target, weight: Tensor | None = None, ignore_index: int = -100, reduction: str = "mean"):
    """Negative log-likelihood of log-probabilities (N, C[, d...]) and integer labels."""
    _check_reduction(reduction, "nll_loss")
    return _loss.NLL.apply(
        input,
        target=_labels(target),
        weight=_array_or_none(weight),
        ignore_index=ignore_index,
        reduction=reduction,
    )


def binary_cross_entropy(input: Tensor, target, weight: Tensor | None = None, reduction: str = "mean") -> Tensor:
    """-(t log p + (1 - t) log(1 - p)) for probabilities p, with logs clamped at -100 as PyTorch.

    Fused, so that p = 0 or 1 (a saturated sigmoid) gives finite gradients, as in PyTorch.
    """
    target = _as_target(target, input)  # the op checks the reduction and the shapes
    return _loss.BCE.apply(input, target, weight=_array_or_none(weight), reduction=reduction)


def binary_cross_entropy_with_logits(
    input: Tensor, target, weight: Tensor | None = None, reduction: str = "mean", pos_weight: Tensor | None = None
) -> Tensor:
    """Sigmoid + binary cross-entropy in one stable step (no overflow for logits of +-1e4)."""
    target = _as_target(target, input)  # the op checks the reduction and the shapes
    return _loss.BCEWithLogits.apply(
        input,
        target,
        weight=_array_or_none(weight),
        pos_weight=_array_or_none(pos_weight),
        reduction=reduction,
    )
