"""Elementwise primitives: arithmetic, exp/log/sqrt/abs, maximum/minimum/clamp/where.

Each op's forward and backward sit side by side; the docstring states the derivative.
Binary ops broadcast as NumPy does, and ``unbroadcast`` gives each input a gradient of its shape.
"""

from __future__ import annotations

import math

import numpy as np

from glassnet.autograd.function import Function
from glassnet.ops._util import unbroadcast


class Add(Function):
    """out = a + b;  d/da = 1, d/db = 1."""

    saves_inputs = False

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, grad_out):
        return unbroadcast(grad_out, self.shapes[0]), unbroadcast(grad_out, self.shapes[1])


class Sub(Function):
    """out = a - b;  d/da = 1, d/db = -1."""

    saves_inputs = False

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, grad_out):
        return unbroadcast(grad_out, self.shapes[0]), unbroadcast(-grad_out, self.shapes[1])


class Mul(Function):
    """out = a * b;  d/da = b, d/db = a."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, grad_out):
        a, b = self.a, self.b
        grad_a = unbroadcast(grad_out * b, a.shape) if self.needs_grad(0) else None
        grad_b = unbroadcast(grad_out * a, b.shape) if self.needs_grad(1) else None
        return grad_a, grad_b


class Div(Function):
    """out = a / b;  d/da = 1 / b, d/db = -a / b**2."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, grad_out):
        a, b = self.a, self.b
        grad_a = grad_out / b
        grad_b = unbroadcast(-grad_a * a / b, b.shape) if self.needs_grad(1) else None
        return (unbroadcast(grad_a, a.shape) if self.needs_grad(0) else None), grad_b


class Neg(Function):
    """out = -x;  d/dx = -1."""

    saves_inputs = False

    def forward(self, x):
        return -x

    def backward(self, grad_out):
        return -grad_out


class AddScalar(Function):
    """out = x + c for a Python number c;  d/dx = 1."""

    saves_inputs = False

    def forward(self, x, c):
        return x + c

    def backward(self, grad_out):
        return grad_out


class MulScalar(Function):
    """out = x * c for a Python number c;  d/dx = c."""

    saves_inputs = False

    def forward(self, x, c):
        self.c = c
        return x * c

    def backward(self, grad_out):
        return grad_out * self.c


class RSubScalar(Function):
    """out = c - x for a Python number c;  d/dx = -1."""

    saves_inputs = False

    def forward(self, x, c):
        return c - x

    def backward(self, grad_out):
        return -grad_out


class RDivScalar(Function):
    """out = c / x for a Python number c;  d/dx = -c / x**2 = -out / x."""

    saves_output = True

    def forward(self, x, c):
        self.x = x
        self.out = c / x
        return self.out

    def backward(self, grad_out):
        return -grad_out * self.out / self.x


class PowScalar(Function):
    """out = x ** p for a Python number p;  d/dx = p * x**(p - 1)."""

    def forward(self, x, p):
        self.x, self.p = x, p
        return x**p

    def backward(self, grad_out):
        x, p = self.x, self.p
        if p == 2:
            return grad_out * 2 * x
        if p == 0:  # x**0 is constant 1, also at x == 0 where x**(p - 1) is infinite
            return np.zeros_like(grad_out)
        return grad_out * p * x ** (p - 1)


class RPowScalar(Function):
    """out = c ** x for a Python number c;  d/dx = out * log(c) (0 for c == 0, as PyTorch)."""

    saves_inputs = False
    saves_output = True

    def forward(self, x, c):
        self.out = np.power(c, x, dtype=x.dtype) if x.dtype.kind == "f" else c**x
        # A Python float, so that a float32 gradient stays float32 (a NumPy float64 would promote it).
        self.log_c = math.log(c) if c > 0 else (0.0 if c == 0 else math.nan)
        return self.out

    def backward(self, grad_out):
        return grad_out * self.out * self.log_c


class Pow(Function):
    """out = a ** b;  d/da = b * a**(b - 1) (0 where b == 0), d/db = out * log(a) (0 where a == 0 and b >= 0)."""

    saves_output = True

    def forward(self, a, b):
        self.a, self.b = a, b
        self.out = a**b
        return self.out

    def backward(self, grad_out):
        a, b = self.a, self.b
        with np.errstate(divide="ignore", invalid="ignore"):
            grad_a = np.where(b == 0, 0, grad_out * b * a ** (b - 1)).astype(self.out.dtype, copy=False)
            log_a = np.where((a == 0) & (b >= 0), 0, np.log(np.where(a == 0, 1, a)))
            log_a = np.where(a < 0, np.nan, log_a).astype(self.out.dtype, copy=False)
        return unbroadcast(grad_a, a.shape), unbroadcast(grad_out * self.out * log_a, b.shape)


class Exp(Function):
    """out = exp(x);  d/dx = out."""

    saves_inputs = False
    saves_output = True

    def forward(self, x):
        self.out = np.exp(x)
        return self.out

    def backward(self, grad_out):
        return grad_out * self.out


class Log(Function):
    """out = log(x);  d/dx = 1 / x."""

    def forward(self, x):
        self.x = x
        return np.log(x)

    def backward(self, grad_out):
        return grad_out / self.x


class Sqrt(Function):
    """out = sqrt(x);  d/dx = 1 / (2 * out)."""

    saves_inputs = False
    saves_output = True

    def forward(self, x):
        self.out = np.sqrt(x)
        return self.out

    def backward(self, grad_out):
        return grad_out / (2 * self.out)


class Abs(Function):
    """out = |x|;  d/dx = sign(x) (0 at x == 0, as PyTorch)."""

    def forward(self, x):
        self.x = x
        return np.abs(x)

    def backward(self, grad_out):
        return grad_out * np.sign(self.x)


class Maximum(Function):
    """out = max(a, b) elementwise;  the gradient goes to the larger input, split evenly on ties."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return np.maximum(a, b)

    def backward(self, grad_out):
        return _split_by_winner(grad_out, self.a, self.b, np.greater)


class Minimum(Function):
    """out = min(a, b) elementwise;  the gradient goes to the smaller input, split evenly on ties."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return np.minimum(a, b)

    def backward(self, grad_out):
        return _split_by_winner(grad_out, self.a, self.b, np.less)


def _split_by_winner(grad_out, a, b, wins):
    dtype = grad_out.dtype
    share_a = wins(a, b).astype(dtype) + (a == b).astype(dtype) * 0.5
    grad_a = grad_out * share_a
    return unbroadcast(grad_a, a.shape), unbroadcast(grad_out - grad_a, b.shape)


class Clamp(Function):
    """out = min(max(x, min), max);  d/dx = 1 where min <= x <= max, else 0 (as PyTorch)."""

    def forward(self, x, min=None, max=None):
        self.x, self.min, self.max = x, min, max
        return np.clip(x, min, max)

    def backward(self, grad_out):
        x = self.x
        if self.min is not None and self.max is not None:
            keep = (x >= self.min) & (x <= self.max)
        elif self.min is not None:
            keep = x >= self.min
        else:
            keep = x <= self.max
        return grad_out * keep


class Where(Function):
    """out = a where cond else b (cond is a boolean array, no gradient);  d/da = cond, d/db = !cond."""

    saves_inputs = False

    def forward(self, a, b, condition):
        self.condition = condition
        self.shapes = a.shape, b.shape
        return np.where(condition, a, b)

    def backward(self, grad_out):
        zero = grad_out.dtype.type(0)
        grad_a = np.where(self.condition, grad_out, zero)
        grad_b = np.where(self.condition, zero, grad_out)
        return unbroadcast(grad_a, self.shapes[0]), unbroadcast(grad_b, self.shapes[1])


class Cast(Function):
    """out = x converted to ``dtype``;  the gradient is converted back to the input's dtype."""

    saves_inputs = False

    def forward(self, x, dtype):
        self.dtype = x.dtype
        return x.astype(dtype)

    def backward(self, grad_out):
        return grad_out.astype(self.dtype)


class Clone(Function):
    """out = a copy of x;  d/dx = 1."""

    saves_inputs = False

    def forward(self, x):
        return x.copy()

    def backward(self, grad_out):
        return grad_out
