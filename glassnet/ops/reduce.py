"""Reductions: sum, mean, var, and max/min (whole tensor, or along a dim with indices)."""

from __future__ import annotations

import numpy as np

from glassnet.autograd.function import Function


def _expand_like(grad_out, shape, axes, keepdim):
    """Reinsert the reduced axes of ``grad_out`` (when keepdim was False) and broadcast to ``shape``."""
    if axes is None:
        return np.broadcast_to(grad_out, shape)
    if not keepdim:
        grad_out = np.expand_dims(grad_out, axes)
    return np.broadcast_to(grad_out, shape)


class Sum(Function):
    """out = sum of x over ``dim`` (all axes when None);  d/dx = 1 broadcast back."""

    saves_inputs = False

    def forward(self, x, dim=None, keepdim=False):
        self.shape, self.dim, self.keepdim = x.shape, dim, keepdim
        return np.asarray(x.sum(axis=dim, keepdims=keepdim))

    def backward(self, grad_out):
        return _expand_like(grad_out, self.shape, self.dim, self.keepdim)


class Mean(Function):
    """out = mean of x over ``dim``;  d/dx = 1 / count broadcast back."""

    saves_inputs = False

    def forward(self, x, dim=None, keepdim=False):
        self.shape, self.dim, self.keepdim = x.shape, dim, keepdim
        out = np.asarray(x.mean(axis=dim, keepdims=keepdim))
        self.count = x.size // max(out.size, 1) if x.size else 0
        return out

    def backward(self, grad_out):
        return _expand_like(grad_out / self.count, self.shape, self.dim, self.keepdim)


class Var(Function):
    """out = sum((x - mean)**2) / (count - correction);  d/dx = 2 (x - mean) / (count - correction)."""

    saves_inputs = False  # backward reads its own copy, x - mean

    def forward(self, x, dim=None, correction=1, keepdim=False):
        self.shape, self.dim, self.keepdim = x.shape, dim, keepdim
        count = x.size if dim is None else int(np.prod([x.shape[d] for d in dim]))
        self.centered = x - x.mean(axis=dim, keepdims=True)
        self.denom = max(count - correction, 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            sq = (self.centered * self.centered).sum(axis=dim, keepdims=keepdim)
            return np.asarray(sq / x.dtype.type(self.denom) if self.denom else sq * np.nan)

    def backward(self, grad_out):
        grad = _expand_like(grad_out, self.shape, self.dim, self.keepdim)
        return grad * self.centered * (2 / self.denom if self.denom else np.nan)


class MaxAll(Function):
    """out = max (or min) over ``dim`` (all elements when None), as torch.amax / amin;
    the gradient is split evenly among the tied extrema of each reduced slice."""

    saves_output = True

    def forward(self, x, largest=True, dim=None, keepdim=False):
        if x.size == 0:
            raise ValueError("max()/min() of an empty tensor: specify a dim")
        self.x, self.dim, self.keepdim = x, dim, keepdim
        extremum = x.max(axis=dim, keepdims=True) if largest else x.min(axis=dim, keepdims=True)
        self.extremum = extremum  # keepdim-shaped, to find the ties in backward
        if keepdim:
            self.out = extremum
        elif dim is None:
            self.out = extremum.reshape(())
        else:
            self.out = np.squeeze(extremum, axis=dim)
        return self.out

    def backward(self, grad_out):
        mask = self.x == self.extremum
        grad = _expand_like(grad_out, self.x.shape, self.dim, self.keepdim or self.dim is None)
        count = mask.sum(axis=self.dim, keepdims=True)
        return (mask * (grad / count)).astype(self.x.dtype, copy=False)


class MaxDim(Function):
    """out = x at ``indices`` (argmax or argmin along ``dim``, keepdim-shaped);  the gradient goes there."""

    saves_inputs = False

    def forward(self, x, dim, indices, keepdim=False):
        self.shape, self.dim, self.indices, self.keepdim = x.shape, dim, indices, keepdim
        out = np.take_along_axis(x, indices, axis=dim)
        return out if keepdim else np.squeeze(out, axis=dim)

    def backward(self, grad_out):
        grad = np.zeros(self.shape, dtype=grad_out.dtype)
        if not self.keepdim:
            grad_out = np.expand_dims(grad_out, self.dim)
        np.put_along_axis(grad, self.indices, grad_out, axis=self.dim)
        return grad
