"""Activation primitives: relu, leaky_relu, sigmoid, tanh, gelu, softmax, log_softmax.

Sigmoid, softmax and log-softmax use their numerically stable forms: no overflow for logits of
+-1e4, and log_softmax never takes the log of an underflowed zero.
"""

from __future__ import annotations

import math
import mmap

import numpy as np

from glassnet import _parallel as parallel
from glassnet import compiled
from glassnet.autograd.function import Function


class ReLU(Function):
    """out = max(x, 0);  d/dx = 1 where x > 0, else 0.

    Backward reads the output: out > 0 exactly where x > 0 (NaN gives NaN, which is not > 0), and the
    output is usually kept anyway by the next op (pooling, Linear), so no mask is saved: as
    PyTorch's ReLU, one pass forward and none of the memory of a mask.

    Speed: NumPy's maximum of an array and the scalar 0 takes a slow loop; the maximum of two
    arrays is ~2.8x faster (float32 (512, 256): 18 vs 50 us), so large float inputs are compared
    with a read-only array of zeros in their own layout (see ``_zeros_like``). With the compiled
    kernels, forward and backward are one C pass each over contiguous arrays of any size, in their
    own layout (C or Fortran order).
    """

    saves_inputs = False
    saves_output = True

    def forward(self, x):
        kernels = compiled.elementwise_kernels(x)
        if kernels is not None:  # one compiled pass (the C extension), in x's layout
            out = np.empty_like(x)
            xf, of = x.ravel(order="K"), out.ravel(order="K")
            parallel.parallel_rows(x.size, x.nbytes, lambda a, b: kernels.relu(xf[a:b], of[a:b]))
        elif x.ndim > 1 and x.flags.c_contiguous and parallel.parts(x.nbytes) > 1:
            out = np.empty_like(x)
            zeros = _zeros_like(x)
            parallel.parallel_rows(x.shape[0], x.nbytes, lambda a, b: np.maximum(x[a:b], zeros[a:b], out=out[a:b]))
        else:
            zeros = _zeros_like(x) if x.size >= 256 else None
            out = np.maximum(x, 0, dtype=x.dtype) if zeros is None else np.maximum(x, zeros)
        self.out = out
        return out

    def backward(self, grad_out):
        out = self.out
        kernels = compiled.elementwise_kernels(grad_out, out)
        if kernels is not None:  # one compiled pass (the C extension) where NumPy makes the mask first
            grad_x = np.empty_like(grad_out)
            gf, of, dxf = grad_out.ravel(order="K"), out.ravel(order="K"), grad_x.ravel(order="K")
            parallel.parallel_rows(gf.size, gf.nbytes, lambda a, b: kernels.relu_backward(gf[a:b], of[a:b], dxf[a:b]))
            return grad_x
        if grad_out.ndim < 2 or not grad_out.flags.c_contiguous or parallel.parts(grad_out.nbytes) == 1:
            return grad_out * (out > 0)
        grad_x = np.empty_like(grad_out)
        parallel.parallel_rows(
            grad_out.shape[0],
            grad_out.nbytes,
            lambda a, b: np.multiply(grad_out[a:b], out[a:b] > 0, out=grad_x[a:b]),
        )
        return grad_x


_zero_buffers: dict = {}


def _zeros_like(x):
    """A read-only array of zeros with x's shape, dtype and layout, or None (not floating, or strided).

    Views of one buffer per dtype, grown to the largest size asked for. The buffer is an anonymous
    memory map that is never written: every page of it maps the operating system's shared zero page,
    so it costs address space, not memory, and its reads hit the cache.
    """
    if x.dtype.kind != "f":
        return None
    if x.flags.c_contiguous:
        order = "C"
    elif x.flags.f_contiguous:
        order = "F"
    else:
        return None
    buffer = _zero_buffers.get(x.dtype)
    if buffer is None or buffer.size < x.size:
        size = 1 << max(16, (x.size - 1).bit_length())
        buffer = np.frombuffer(mmap.mmap(-1, size * x.dtype.itemsize), dtype=x.dtype)
        buffer.flags.writeable = False
        _zero_buffers[x.dtype] = buffer
    flat = buffer[: x.size]
    return flat.reshape(x.shape) if order == "C" else flat.reshape(x.shape[::-1]).T


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


# Cephes' rational approximations (ndtr.c): erf(x) = x T(x^2) / U(x^2) for |x| <= 1, and
# erfc(x) = exp(-x^2) P(x) / Q(x) for 1 < x < 8 (beyond 8, erf is 1 to double precision).
# Coefficients highest degree first; accurate to 3e-16 in float64, to float32's rounding in float32.
_ERF_T = (
    9.60497373987051638749e0,
    9.00260197203842689217e1,
    2.23200534594684319226e3,
    7.00332514112805075473e3,
    5.55923013010394962768e4,
)
_ERF_U = (
    1.0,
    3.35617141647503099647e1,
    5.21357949780152679795e2,
    4.59432382970980127987e3,
    2.26290000613890934246e4,
    4.92673942608635921086e4,
)
_ERFC_P = (
    2.46196981473530512524e-10,
    5.64189564831068821977e-1,
    7.46321056442269912687e0,
    4.86371970985681366614e1,
    1.96520832956077098242e2,
    5.26445194995477358631e2,
    9.34528527171957607540e2,
    1.02755188689515710272e3,
    5.57535335369399327526e2,
)
_ERFC_Q = (1.0, 1.32281951154744992508e1, 8.67072140885989742329e1, 3.54937778887819891062e2,
           9.75708501743205489753e2, 1.82390916687909736289e3, 2.24633760818710981792e3,
           1.65666309194161350182e3, 5.57535340817727675546e2)  # fmt: skip


def _polyval(coefficients, x):
    """Horner's rule in x's dtype (coefficients highest degree first)."""
    result = np.full_like(x, coefficients[0])
    for c in coefficients[1:]:
        result *= x
        result += c
    return result


def _erf_central(x):
    """erf(x) = x T(x^2) / U(x^2), accurate for |x| <= 1 (garbage, never used, beyond)."""
    with np.errstate(over="ignore", invalid="ignore"):
        z = x * x
        out = _polyval(_ERF_T, z)
        out *= x
        out /= _polyval(_ERF_U, z)
    return out


def _erfc_tail(a):
    """erfc(a) = exp(-a^2) P(a) / Q(a) for a >= 1; past 8 (erfc < 1e-29) the fraction is frozen at 8."""
    b = np.minimum(a, 8)
    return np.exp(-a * a) * _polyval(_ERFC_P, b) / _polyval(_ERFC_Q, b)


def erf_array(x):
    """The error function of a floating array, vectorized in the array's own dtype.

    Example:
        >>> import numpy as np
        >>> float(erf_array(np.array(0.5)))  # math.erf(0.5) = 0.5204998778130465
        0.5204998778130465
    """
    out = _erf_central(x)
    far = np.abs(x) > 1
    if far.any():
        out[far] = np.copysign(1 - _erfc_tail(np.abs(x[far])), x[far])
    return out


def normal_cdf_array(x):
    """Phi(x) = erfc(-x / sqrt(2)) / 2, the standard normal CDF, in x's dtype.

    The left tail comes from erfc directly, not from 1 + erf(x) (which cancels to 0 in float32
    below x = -5), so Phi keeps its relative precision there.

    Example:
        >>> import numpy as np
        >>> float(normal_cdf_array(np.array(0.0)))
        0.5
    """
    t = x * (-1 / math.sqrt(2))
    out = _erf_central(t)  # in place from here: a 0-d array must stay an array
    out *= -0.5
    out += 0.5
    far = np.abs(t) > 1
    if far.any():
        t_far = t[far]
        tail = 0.5 * _erfc_tail(np.abs(t_far))
        out[far] = np.where(t_far > 0, tail, 1 - tail)
    return out


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
        self.cdf = normal_cdf_array(x)
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
