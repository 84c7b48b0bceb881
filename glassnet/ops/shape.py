"""Shape primitives: reshape, permute, expand, getitem, cat, stack, pad.

Views (reshape, permute, basic slicing) share memory with their input, and so its version counter.
"""

from __future__ import annotations

import numpy as np

from glassnet.autograd.function import Function, GlassnetError
from glassnet.ops._util import unbroadcast


class Reshape(Function):
    """out = x with a new shape (a view when possible);  dx = grad reshaped back."""

    saves_inputs = False
    is_view = True

    def forward(self, x, shape):
        self.shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise GlassnetError(f"reshape: cannot reshape {x.shape} ({x.size} elements) into {tuple(shape)}") from None

    def backward(self, grad_out):
        return grad_out.reshape(self.shape)


class Permute(Function):
    """out = x with its axes reordered by ``dims``;  dx = grad with the inverse order."""

    saves_inputs = False
    is_view = True

    def forward(self, x, dims):
        if sorted(d % max(x.ndim, 1) for d in dims) != list(range(x.ndim)):
            raise GlassnetError(f"permute: dims {tuple(dims)} is not a permutation of the {x.ndim} axes of {x.shape}")
        self.dims = dims
        return x.transpose(dims)

    def backward(self, grad_out):
        return grad_out.transpose(np.argsort([d % grad_out.ndim for d in self.dims]))


class Expand(Function):
    """out = x broadcast to ``shape`` (a read-only view);  dx = grad summed over the broadcast axes."""

    saves_inputs = False
    is_view = True

    def forward(self, x, shape):
        self.shape = x.shape
        shape = tuple(x.shape[i - (len(shape) - x.ndim)] if n == -1 else n for i, n in enumerate(shape))
        return np.broadcast_to(x, shape)

    def backward(self, grad_out):
        return unbroadcast(grad_out, self.shape)


def _is_basic(index) -> bool:
    """True for an index of ints, slices, None and Ellipsis only (NumPy returns a view)."""
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, (int, slice, np.integer)) for i in items)


class GetItem(Function):
    """out = x[index];  dx = zeros with grad added at index (scatter-add: repeated indices sum)."""

    saves_inputs = False
    is_view = True

    def forward(self, x, index):
        self.shape, self.dtype, self.index = x.shape, x.dtype, index
        self.basic = _is_basic(index)
        return np.asarray(x[index])

    def backward(self, grad_out):
        grad = np.zeros(self.shape, dtype=grad_out.dtype)
        if self.basic:
            grad[self.index] = grad_out
        else:
            np.add.at(grad, self.index, grad_out)
        return grad


class Cat(Function):
    """out = inputs joined along ``dim``;  each input's gradient is its slice of grad."""

    saves_inputs = False

    def forward(self, *arrays, dim=0):
        self.dim = dim
        self.splits = np.cumsum([a.shape[dim] for a in arrays])[:-1]
        return np.concatenate(arrays, axis=dim)

    def backward(self, grad_out):
        return tuple(np.split(grad_out, self.splits, axis=self.dim))


class Stack(Function):
    """out = inputs stacked along a new axis ``dim``;  each input's gradient is grad's slice there."""

    saves_inputs = False

    def forward(self, *arrays, dim=0):
        self.dim = dim
        return np.stack(arrays, axis=dim)

    def backward(self, grad_out):
        return tuple(np.moveaxis(grad_out, self.dim, 0))


class Pad(Function):
    """out = x padded with ``value``; ``pad`` lists (left, right) pairs from the last axis backwards,
    as ``torch.nn.functional.pad``;  dx = the central slice of grad."""

    saves_inputs = False

    def forward(self, x, pad, value=0.0):
        if len(pad) % 2 or len(pad) // 2 > x.ndim:
            raise GlassnetError(
                f"pad: expected an even number of at most {2 * x.ndim} pads for shape {x.shape}, got {tuple(pad)}"
            )
        widths = [(0, 0)] * x.ndim
        for i in range(len(pad) // 2):
            widths[x.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
        if any(lo < 0 or hi < 0 for lo, hi in widths):
            raise GlassnetError(f"pad: negative padding {tuple(pad)} is not supported (input shape {x.shape})")
        self.slices = tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, x.shape))
        return np.pad(x, widths, constant_values=value)

    def backward(self, grad_out):
        return grad_out[self.slices]
