"""Activation primitives: relu, leaky_relu, sigmoid, tanh, gelu, softmax, log_softmax.

Sigmoid, softmax and log-softmax use their numerically stable forms: no overflow for logits of
+-1e4, and log_softmax never takes the log of an underflowed zero.
"""

from __future__ import annotations

import math

import numpy as np

from glassnet.autograd.function import Function


class ReLU(Function):
    """out = max(x, 0);  d/dx = 1 where x > 0, else 0."""

    saves_inputs = False

    def forward(self, x):
        self.mask = x > 0
        return x * self.mask if x.size < 256 else np.maximum(x, 0, dtype=x.dtype)

    def backward(self, grad_out):
        return grad_out * self.mask


class LeakyReLU(Function):
    """out = x if x > 0 else slope * x;  d/dx = 1 where x > 0, else slope."""

    saves_inputs = False

    def forward(self, x, negative_slope=0.01):
        self.mask = x > 0
        self.slope = negative_slope
        return np.where(self.mask, x, x * negative_slope)

    def backward(self, grad_out):
        return np.where(self.mask, grad_out, grad_out * self.slope)


class Sigmoid(Function):
    """out = 1 / (1 + exp(-x)), computed from exp(-|x|) so it never overflows;  d/dx = out (1 - out)."""

    saves_inputs = False
    saves_output = True

    def forward(self, x):
        self.out = sigmoid_array(x)
        return self.out

    def backward(self, grad_out):
        out = self.out
        return grad_out * out * (1 - out)


def sigmoid_array(x):
    """The stable sigmoid of an array (shared with the fused BCE-with-logits loss)."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


class Tanh(Function):
    """out = tanh(x);  d/dx = 1 - out**2."""

    saves_inputs = False
    saves_output = True

    def forward(self, x):
        self.out = np.tanh(x)
        return self.out

    def backward(self, grad_out):
        out = self.out
        return grad_out * (1 - out * out)


_erf = np.frompyfunc(math.erf, 1, 1)


class GELU(Function):
    """out = x * Phi(x), Phi the standard normal CDF ('none'), or its tanh approximation ('tanh').

    d/dx = Phi(x) + x * phi(x) for the exact form, phi the normal density.
    """

    def forward(self, x, approximate="none"):
        self.x, self.approximate = x, approximate
        if approximate == "tanh":
            self.inner = np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))
            return 0.5 * x * (1 + self.inner)
        if approximate != "none":
            raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
        self.cdf = (0.5 * (1 + _erf(x / math.sqrt(2)).astype(x.dtype))).astype(x.dtype)
        return x * self.cdf

    def backward(self, grad_out):
        x = self.x
        if self.approximate == "tanh":
            k = math.sqrt(2 / math.pi)
            inner = self.inner
            d_inner = (1 - inner * inner) * k * (1 + 3 * 0.044715 * x * x)
            return grad_out * (0.5 * (1 + inner) + 0.5 * x * d_inner)
        pdf = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        return grad_out * (self.cdf + x * pdf)


class Softmax(Function):
    """out = exp(x - max) / sum(exp(x - max)) along ``dim``;  dx = out * (g - sum(g * out))."""

    saves_inputs = False
    saves_output = True

    def forward(self, x, dim):
        self.dim = dim
        e = np.exp(x - x.max(axis=dim, keepdims=True))
        e /= e.sum(axis=dim, keepdims=True)
        self.out = e
        return e

    def backward(self, grad_out):
        out = self.out
        gy = grad_out * out
        return gy - out * gy.sum(axis=self.dim, keepdims=True)


class LogSoftmax(Function):
    """out = x - max - log(sum(exp(x - max))) along ``dim``;  dx = g - exp(out) * sum(g)."""

    saves_inputs = False
    saves_output = True

    def forward(self, x, dim):
        self.dim = dim
        self.out = log_softmax_array(x, dim)
        return self.out

    def backward(self, grad_out):
        return grad_out - np.exp(self.out) * grad_out.sum(axis=self.dim, keepdims=True)


def log_softmax_array(x, dim):
    """The stable log-softmax of an array (shared with the fused cross-entropy loss)."""
    shifted = x - x.max(axis=dim, keepdims=True)
    shifted -= np.log(np.exp(shifted).sum(axis=dim, keepdims=True))
    return shifted
