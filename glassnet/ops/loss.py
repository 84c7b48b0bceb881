"""Fused loss primitives: cross-entropy on logits, negative log-likelihood, BCE on logits.

Each is one Function for numerical stability and speed: cross-entropy takes a stable log-softmax
and its gradient is softmax minus the (weighted, smoothed) target distribution; BCE-with-logits
uses log(1 + exp(-|x|)) + max(-x, 0), finite for logits of +-1e4. Semantics follow PyTorch 2.x
(class weights, ``ignore_index``, ``label_smoothing``, reductions 'mean' | 'sum' | 'none').
"""

from __future__ import annotations

import numpy as np

from glassnet.autograd.function import Function, GlassnetError
from glassnet.ops.activation import log_softmax_array, sigmoid_array

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction, op):
    if reduction not in _REDUCTIONS:
        raise GlassnetError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _binary_inputs(op, x, target, reduction, **weights):
    """The checks of the binary cross-entropies: the reduction, target and input of one shape and
    floating dtype, weights that broadcast to the input. Returns the target and the weights (None
    where not given) in the input's dtype.
    """
    _check_reduction(reduction, op)
    if target.shape != x.shape:
        raise GlassnetError(f"{op}: target size {target.shape} must be the same as input size {x.shape}")
    if x.dtype.kind != "f" or target.dtype.kind != "f":
        raise GlassnetError(f"{op}: expected floating-point input and target, got {x.dtype} and {target.dtype}")
    arrays = [target.astype(x.dtype, copy=False)]
    for name, a in weights.items():
        if a is not None:
            try:
                np.broadcast_shapes(np.shape(a), x.shape)
            except ValueError:
                raise GlassnetError(
                    f"{op}: {name} of shape {np.shape(a)} does not broadcast to input size {x.shape}"
                ) from None
            a = np.asarray(a).astype(x.dtype, copy=False)
        arrays.append(a)
    return arrays


def _reduce_elementwise(losses, reduction):
    """The binary cross-entropies' reduction of their per-element losses (no ignored elements)."""
    if reduction == "none":
        return losses
    dtype = losses.dtype
    total = losses.sum(dtype=dtype)
    return np.asarray(total if reduction == "sum" else total / dtype.type(losses.size), dtype=dtype)


def _elementwise_grad_factor(grad_out, reduction, x, weight):
    """Each element's upstream gradient for ``_reduce_elementwise``, times the weight when given."""
    a = grad_out if reduction != "mean" else grad_out / x.dtype.type(x.size)
    return a if weight is None else a * weight


def _class_layout(scores, target, weight, ignore_index, op):
    """Check the (N, C, d1, ...) scores against the (N, d1, ...) target; return flat views.

    Returns (scores as (M, C) with the class axis last, target as (M,) int64, weight as (C,) array
    or None, valid mask (M,)).
    """
    if scores.ndim < 1:
        raise GlassnetError(f"{op}: expected input of shape (N, C) or (N, C, d1, ...), got {scores.shape}")
    if target.dtype.kind not in "iu":
        raise GlassnetError(f"{op}: expected integer class labels, got {target.dtype}")
    if scores.dtype.kind != "f":
        raise GlassnetError(f"{op}: expected floating-point input scores, got {scores.dtype}")
    if scores.ndim == 1:  # unbatched (C,) with a 0-d target
        expected = ()
        C = scores.shape[0]
        flat = scores.reshape(1, C)
    else:
        expected = scores.shape[:1] + scores.shape[2:]
        C = scores.shape[1]
        flat = scores if scores.ndim == 2 else np.moveaxis(scores, 1, -1).reshape(-1, C)
    if target.shape != expected:
        raise GlassnetError(
            f"{op}: expected target of shape {expected} for input of shape {scores.shape}, "
            f"got target shape {target.shape}"
        )
    t = target.reshape(-1).astype(np.int64, copy=False)
    valid = t != ignore_index
    bad = valid & ((t < 0) | (t >= C))
    if bad.any():
        raise GlassnetError(
            f"{op}: target label {int(t[bad][0])} is out of range for {C} classes (expected 0 <= label < {C}"
            + (f" or ignore_index={ignore_index})" if ignore_index is not None else ")")
        )
    if weight is not None:
        weight = np.asarray(weight)
        if weight.shape != (C,):
            raise GlassnetError(f"{op}: expected a weight of shape ({C},) for {C} classes, got {weight.shape}")
        weight = weight.astype(scores.dtype, copy=False)
    return flat, t, weight, valid


def _reduce(losses, reduction, denominator):
    """Apply the reduction to per-element losses (M,); returns (value, per-element grad factor)."""
    dtype = losses.dtype
    if reduction == "none":
        return losses, None
    total = losses.sum(dtype=dtype)
    if reduction == "sum":
        return np.asarray(total, dtype=dtype), dtype.type(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.asarray(total / denominator, dtype=dtype)  # nan when every target is ignored
    # Ignored elements get no gradient, even when all are ignored (PyTorch's backward gives zeros).
    return value, dtype.type(1 / denominator if denominator else 0)


def _grad_factor(grad_out, reduction, factor, shape):
    """The upstream gradient of each element's loss, as an (M, 1) column."""
    if reduction == "none":
        return grad_out.reshape(-1, 1)
    return (grad_out * factor).reshape(1, 1)


def _restore_layout(grad_flat, shape):
    """Undo the (M, C) flattening of ``_class_layout`` for a gradient."""
    if len(shape) <= 2:
        return grad_flat.reshape(shape)
    moved = grad_flat.reshape(shape[:1] + shape[2:] + shape[1:2])
    return np.ascontiguousarray(np.moveaxis(moved, -1, 1))


class CrossEntropy(Function):
    """Cross-entropy of logits against integer class labels, fused with a stable log-softmax.

    Per element i (class axis 1), with p = softmax(logits), w the class weights (1 without),
    eps = ``label_smoothing`` and C classes: q_c = (1 - eps) w_t [c == t] + eps / C w_c and
    loss_i = -sum_c q_c log p_c (0 where t == ``ignore_index``). 'mean' divides the sum by the
    summed weights w_t of the non-ignored targets (PyTorch's weighted mean; nan if all are ignored).
    d loss_i / d logits_i = p * sum_c q_c - q.

    Shape: logits (N, C) or (N, C, d1, ...), target (N,) or (N, d1, ...) of integers -> scalar, or
    the target's shape with reduction='none'.

    Example:
        >>> import numpy as np, glassnet as gn
        >>> from glassnet.ops.loss import CrossEntropy
        >>> round(CrossEntropy.apply(gn.zeros(2, 4), target=np.array([0, 3])).item(), 4)  # log(4)
        1.3863
    """

    saves_inputs = False
    plain = False

    def forward(self, logits, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        target = np.asarray(target)
        if (
            weight is None
            and not label_smoothing
            and reduction != "none"
            and logits.ndim == 2
            and target.ndim == 1
            and logits.dtype.kind == "f"
            and target.dtype.kind in "iu"
            and target.shape[0] == logits.shape[0] > 0
            and reduction in _REDUCTIONS
        ):
            # The common case (a batch of class scores, plain labels) skips the weights, the smoothing
            # and the ignore mask; the first out-of-range or ignored label sends it down the general path.
            C = logits.shape[1]
            if target.min() >= 0 and target.max() < C and not 0 <= ignore_index < C:
                return self._forward_plain(logits, target, reduction)
        op = "cross_entropy"
        _check_reduction(reduction, op)
        if not 0.0 <= label_smoothing <= 1.0:
            raise GlassnetError(f"{op}: label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
        z, t, weight, valid = _class_layout(logits, target, weight, ignore_index, op)
        dtype = z.dtype
        M, C = z.shape
        logp = log_softmax_array(z, 1)
        t_safe = np.where(valid, t, 0)
        rows = np.arange(M)
        w_t = (weight[t_safe] if weight is not None else np.ones(M, dtype=dtype)) * valid
        eps = dtype.type(label_smoothing)
        losses = -logp[rows, t_safe] * w_t
        if label_smoothing:
            smooth = -(logp @ weight if weight is not None else logp.sum(axis=1)) * valid
            losses = (1 - eps) * losses + (eps / C) * smooth
        value, self.factor = _reduce(losses.astype(dtype, copy=False), reduction, w_t.sum(dtype=dtype))
        self.logp, self.t, self.w_t, self.valid, self.weight = logp, t_safe, w_t, valid, weight
        self.eps, self.reduction, self.shape = eps, reduction, logits.shape
        return value.reshape(target.shape) if reduction == "none" else value

    def _forward_plain(self, logits, target, reduction):
        """loss = -sum_i logp[i, t_i] (/ M for 'mean'): the general formula with w = 1, eps = 0, no ignored label."""
        M = logits.shape[0]
        dtype = logits.dtype
        logp = log_softmax_array(logits, 1)
        rows = np.arange(M)
        total = -logp[rows, target].sum(dtype=dtype)
        self.logp, self.t, self.rows, self.plain, self.reduction = logp, target, rows, True, reduction
        if reduction == "sum":
            self.factor = dtype.type(1)
            return np.asarray(total, dtype=dtype)
        self.factor = dtype.type(1 / M)
        return np.asarray(total / dtype.type(M), dtype=dtype)

    def backward(self, grad_out):
        if self.plain:
            a = (grad_out * self.factor).astype(self.logp.dtype, copy=False)  # 0-d
            grad = np.exp(self.logp)
            grad *= a
            grad[self.rows, self.t] -= a
            return grad
        logp, t, w_t, valid, weight, eps = self.logp, self.t, self.w_t, self.valid, self.weight, self.eps
        M, C = logp.shape
        dtype = logp.dtype
        a = _grad_factor(grad_out, self.reduction, self.factor, self.shape)  # (M, 1) or (1, 1)
        # q: the target distribution, without its normaliser; total = sum_c q_c.
        total = (1 - eps) * w_t
        if eps:
            smooth_q = (eps / C) * (weight if weight is not None else np.ones(C, dtype=dtype))  # (C,)
            total = total + smooth_q.sum() * valid
        grad = np.exp(logp) * (a * total[:, None]).astype(dtype, copy=False)
        if eps:
            grad -= (a * valid[:, None]).astype(dtype, copy=False) * smooth_q
        rows = np.arange(M)
        grad[rows, t] -= ((1 - eps) * w_t * a[:, 0]).astype(dtype, copy=False)
        return _restore_layout(grad, self.shape)


class NLL(Function):
    """Negative log-likelihood of log-probabilities: loss_i = -w_t log_probs[i, t] (0 where ignored).

    'mean' divides by the summed weights w_t of the non-ignored targets, as PyTorch.
    d loss_i / d log_probs[i, c] = -w_t [c == t].

    Shape: log_probs (N, C) or (N, C, d1, ...), target (N,) or (N, d1, ...) of integers.

    Example:
        >>> import numpy as np, glassnet as gn
        >>> from glassnet.ops.loss import NLL
        >>> NLL.apply(gn.tensor([[-1.0, -2.0]]), target=np.array([1])).item()
        2.0
    """

    saves_inputs = False

    def forward(self, log_probs, target, weight=None, ignore_index=-100, reduction="mean"):
        op = "nll_loss"
        _check_reduction(reduction, op)
        target = np.asarray(target)
        z, t, weight, valid = _class_layout(log_probs, target, weight, ignore_index, op)
        dtype = z.dtype
        M = z.shape[0]
        t_safe = np.where(valid, t, 0)
        w_t = (weight[t_safe] if weight is not None else np.ones(M, dtype=dtype)) * valid
        losses = (-z[np.arange(M), t_safe] * w_t).astype(dtype, copy=False)
        value, self.factor = _reduce(losses, reduction, w_t.sum(dtype=dtype))
        self.t, self.w_t, self.reduction, self.shape, self.dtype = t_safe, w_t, reduction, log_probs.shape, dtype
        return value.reshape(target.shape) if reduction == "none" else value

    def backward(self, grad_out):
        M = self.t.shape[0]
        C = self.shape[1] if len(self.shape) > 1 else self.shape[0]
        a = _grad_factor(grad_out, self.reduction, self.factor, self.shape)[:, 0]
        grad = np.zeros((M, C), dtype=self.dtype)
        grad[np.arange(M), self.t] = -(self.w_t * a)
        return _restore_layout(grad, self.shape)


class BCEWithLogits(Function):
    """Binary cross-entropy on logits x against targets y in [0, 1], in the stable form.

    loss = weight * ((1 - y) x + l (log(1 + exp(-|x|)) + max(-x, 0))), l = 1 + (pos_weight - 1) y.
    d/dx = weight * ((1 - y) - l sigmoid(-x));  d/dy = weight * ((pos_weight - 1) softplus(-x) - x)
    (the target gets a gradient too when it requires one, as in PyTorch). ``weight`` broadcasts
    to the input; ``pos_weight`` broadcasts along the last (class) axis. Both are arrays (no gradient).

    Shape: logits and target of the same shape -> scalar, or that shape with reduction='none'.

    Example:
        >>> import glassnet as gn
        >>> from glassnet.ops.loss import BCEWithLogits
        >>> round(BCEWithLogits.apply(gn.tensor([0.0]), gn.tensor([1.0])).item(), 4)
        0.6931
    """

    def forward(self, logits, target, weight=None, pos_weight=None, reduction="mean"):
        op = "binary_cross_entropy_with_logits"
        target, weight, pos_weight = _binary_inputs(op, logits, target, reduction, weight=weight, pos_weight=pos_weight)
        dtype = logits.dtype
        x, y = logits, target
        softplus_neg = np.log1p(np.exp(-np.abs(x))) + np.maximum(-x, 0)  # log(1 + exp(-x)), stable
        lw = 1 + (pos_weight - 1) * y if pos_weight is not None else None
        losses = (1 - y) * x + (softplus_neg if lw is None else lw * softplus_neg)
        if weight is not None:
            losses = losses * weight
        losses = losses.astype(dtype, copy=False)
        self.x, self.y, self.weight, self.pos_weight, self.lw = x, y, weight, pos_weight, lw
        self.softplus_neg, self.reduction = softplus_neg, reduction
        return _reduce_elementwise(losses, reduction)

    def backward(self, grad_out):
        x, y, pos_weight, lw = self.x, self.y, self.pos_weight, self.lw
        dtype = x.dtype
        a = _elementwise_grad_factor(grad_out, self.reduction, x, self.weight)
        sig_neg = sigmoid_array(-x)
        grad_x = a * ((1 - y) - (sig_neg if lw is None else lw * sig_neg))
        grad_x = np.broadcast_to(grad_x, x.shape).astype(dtype)
        grad_y = None
        if self.needs_grad(1):
            dy = -x if pos_weight is None else (pos_weight - 1) * self.softplus_neg - x
            grad_y = np.broadcast_to(a * dy, y.shape).astype(dtype)
        return grad_x, grad_y


class BCE(Function):
    """Binary cross-entropy of probabilities p in [0, 1] against targets y, as PyTorch computes it.

    loss = -weight * (y max(log p, -100) + (1 - y) max(log(1 - p), -100)).
    d/dp = weight * (p - y) / max(p (1 - p), 1e-12);  d/dy = weight * (max(log(1 - p), -100) - max(log p, -100)).
    The clamps keep p = 0 or 1 (a saturated float32 sigmoid) finite in value and gradient.

    Shape: input and target of the same shape -> scalar, or that shape with reduction='none'.

    Example:
        >>> import glassnet as gn
        >>> from glassnet.ops.loss import BCE
        >>> round(BCE.apply(gn.tensor([0.5]), gn.tensor([1.0])).item(), 4)
        0.6931
    """

    def forward(self, p, target, weight=None, reduction="mean"):
        op = "binary_cross_entropy"
        y, weight = _binary_inputs(op, p, target, reduction, weight=weight)
        if p.size and (p.min() < 0 or p.max() > 1):
            raise GlassnetError(f"{op}: input must hold probabilities in [0, 1] (use *_with_logits for logits)")
        dtype = p.dtype
        with np.errstate(divide="ignore"):
            log_p = np.maximum(np.log(p), dtype.type(-100))
            log_1mp = np.maximum(np.log1p(-p), dtype.type(-100))
        losses = -(y * log_p + (1 - y) * log_1mp)
        if weight is not None:
            losses = losses * weight
        self.p, self.y, self.weight, self.reduction = p, y, weight, reduction
        self.log_p, self.log_1mp = log_p, log_1mp
        return _reduce_elementwise(losses.astype(dtype, copy=False), reduction)

    def backward(self, grad_out):
        p, y = self.p, self.y
        dtype = p.dtype
        a = _elementwise_grad_factor(grad_out, self.reduction, p, self.weight)
        grad_p = (a * (p - y) / np.maximum(p * (1 - p), dtype.type(1e-12))).astype(dtype, copy=False)
        grad_p = np.broadcast_to(grad_p, p.shape)
        grad_y = None
        if self.needs_grad(1):
            grad_y = np.broadcast_to(a * (self.log_1mp - self.log_p), y.shape).astype(dtype)
        return grad_p, grad_y
