"""Tensor creation (zeros, randn, arange, ...) and the free functions (cat, stack, where, exp, ...).

Random functions draw from the one global generator that ``glassnet.manual_seed`` seeds.
"""

from __future__ import annotations

import numpy as np

from glassnet import _backend, ops
from glassnet.tensor import Tensor, _pair, _shape_args, _to_array


def tensor(data, dtype=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data``.

    Example:
        >>> import glassnet as gn
        >>> gn.tensor([[1, 2], [3, 4]]).dtype
        dtype('int64')
    """
    array = _to_array(data, dtype)
    if isinstance(data, (np.ndarray, Tensor)) and (array is data or array is getattr(data, "data", None)):
        array = array.copy()
    return Tensor(array, requires_grad=requires_grad)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with a NumPy array (its dtype kept)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    return Tensor(array)


def as_tensor(data, dtype=None) -> Tensor:
    """``data`` as a tensor, sharing memory when it already is an array of the right dtype."""
    if isinstance(data, Tensor) and (dtype is None or np.dtype(dtype) == data.dtype):
        return data
    return Tensor(_to_array(data, dtype))


def _dtype(dtype):
    return _backend.get_default_dtype() if dtype is None else np.dtype(dtype)


def zeros(*shape, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros(_shape_args(shape), _dtype(dtype)), requires_grad=requires_grad)


def ones(*shape, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones(_shape_args(shape), _dtype(dtype)), requires_grad=requires_grad)


def empty(*shape, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.empty(_shape_args(shape), _dtype(dtype)), requires_grad=requires_grad)


def full(shape, fill_value, dtype=None, requires_grad: bool = False) -> Tensor:
    if dtype is None and isinstance(fill_value, (bool, int)):
        dtype = np.bool_ if isinstance(fill_value, bool) else np.int64
    return Tensor(np.full(_shape_args((shape,)), fill_value, _dtype(dtype)), requires_grad=requires_grad)


def zeros_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros_like(np.asarray(t), dtype=dtype), requires_grad=requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones_like(np.asarray(t), dtype=dtype), requires_grad=requires_grad)


def full_like(t: Tensor, fill_value, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.full_like(np.asarray(t), fill_value, dtype=dtype), requires_grad=requires_grad)


def randn(*shape, dtype=None, requires_grad: bool = False, generator=None) -> Tensor:
    """Samples of the standard normal distribution."""
    rng = generator or _backend.default_generator()
    return Tensor(rng.standard_normal(_shape_args(shape), dtype=_dtype(dtype)), requires_grad=requires_grad)


def rand(*shape, dtype=None, requires_grad: bool = False, generator=None) -> Tensor:
    """Samples of the uniform distribution on [0, 1)."""
    rng = generator or _backend.default_generator()
    return Tensor(rng.random(_shape_args(shape), dtype=_dtype(dtype)), requires_grad=requires_grad)


def randint(low: int, high: int | None = None, size=(), dtype=np.int64, generator=None) -> Tensor:
    """Integers drawn uniformly from [low, high) (or [0, low) when high is omitted)."""
    if high is None:
        low, high = 0, low
    rng = generator or _backend.default_generator()
    return Tensor(rng.integers(low, high, size=_shape_args((size,)), dtype=dtype))


def randn_like(t: Tensor, dtype=None) -> Tensor:
    return randn(t.shape, dtype=dtype or t.dtype)


def rand_like(t: Tensor, dtype=None) -> Tensor:
    return rand(t.shape, dtype=dtype or t.dtype)


def randperm(n: int, generator=None) -> Tensor:
    rng = generator or _backend.default_generator()
    return Tensor(rng.permutation(n).astype(np.int64))


def arange(start, end=None, step=1, dtype=None) -> Tensor:
    """Values from start (0) up to end, excluded; int64 for integer arguments, float32 otherwise."""
    if end is None:
        start, end = 0, start
    if dtype is None and all(isinstance(v, (int, np.integer)) for v in (start, end, step)):
        dtype = np.int64
    return Tensor(np.arange(start, end, step, dtype=_dtype(dtype)))


def linspace(start, end, steps: int, dtype=None) -> Tensor:
    return Tensor(np.linspace(start, end, steps, dtype=_dtype(dtype)))


def eye(n: int, m: int | None = None, dtype=None) -> Tensor:
    return Tensor(np.eye(n, m, dtype=_dtype(dtype)))


def _tensors(op: str, tensors) -> list:
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty sequence of tensors")
    dtypes = {t.dtype for t in tensors}
    if len(dtypes) > 1:
        raise TypeError(f"{op}: tensors have different dtypes {sorted(map(str, dtypes))}")
    return tensors


def cat(tensors, dim: int = 0, axis=None) -> Tensor:
    """Join tensors along an existing axis ``dim``."""
    tensors = _tensors("cat", tensors)
    dim = dim if axis is None else axis
    ndim = tensors[0].ndim
    d = dim % max(ndim, 1)
    for t in tensors:
        if t.ndim != ndim or t.shape[:d] + t.shape[d + 1 :] != tensors[0].shape[:d] + tensors[0].shape[d + 1 :]:
            shapes = [tuple(t.shape) for t in tensors]
            raise ValueError(f"cat: shapes {shapes} differ outside dim {dim}")
    return ops.Cat.apply(*tensors, dim=d)


concat = cat


def stack(tensors, dim: int = 0, axis=None) -> Tensor:
    """Join same-shaped tensors along a new axis ``dim``."""
    tensors = _tensors("stack", tensors)
    dim = dim if axis is None else axis
    if len({t.shape for t in tensors}) > 1:
        raise ValueError(f"stack: expects tensors of one shape, got {[tuple(t.shape) for t in tensors]}")
    return ops.Stack.apply(*tensors, dim=dim % (tensors[0].ndim + 1))


def where(condition, input, other) -> Tensor:
    """Elements of ``input`` where ``condition`` holds, else of ``other`` (both differentiable)."""
    condition = np.asarray(condition.data if isinstance(condition, Tensor) else condition, dtype=bool)
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        input = Tensor(input)
    a, b = _pair("where", input, other)
    return ops.Where.apply(a, b, condition=condition)


def maximum(input: Tensor, other: Tensor) -> Tensor:
    return ops.Maximum.apply(*_pair("maximum", input, other))


def minimum(input: Tensor, other: Tensor) -> Tensor:
    return ops.Minimum.apply(*_pair("minimum", input, other))


def matmul(input: Tensor, other: Tensor) -> Tensor:
    return ops.MatMul.apply(*_pair("matmul", input, other))


def exp(input: Tensor) -> Tensor:
    return input.exp()


def log(input: Tensor) -> Tensor:
    return input.log()


def sqrt(input: Tensor) -> Tensor:
    return input.sqrt()


def abs(input: Tensor) -> Tensor:
    return input.abs()


def clamp(input: Tensor, min=None, max=None) -> Tensor:
    return input.clamp(min, max)


def sum(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return input.sum(dim, keepdim)


def mean(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return input.mean(dim, keepdim)


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    return input.flatten(start_dim, end_dim)


def reshape(input: Tensor, shape) -> Tensor:
    return input.reshape(shape)


def argmax(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return input.argmax(dim, keepdim)


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def numel(input: Tensor) -> int:
    return input.numel()
