"""Tensor: an array, its gradient, and its place in the graph; operators delegate to the ops.

``t.data`` is the NumPy array itself (glassnet hides nothing); ``t.grad`` is a Tensor or None;
``t._ctx`` is the Function that produced ``t`` when the graph was recorded (None for a leaf).
"""

from __future__ import annotations

import collections
import weakref
from numbers import Number

import numpy as np

from glassnet import _backend
from glassnet.autograd import engine, grad_mode

_FLOAT_KINDS = "f"
MaxResult = collections.namedtuple("MaxResult", ["values", "indices"])


def _to_array(data, dtype=None):
    """Convert ``data`` (array, Tensor, number, nested list) to an array with glassnet's dtype rules."""
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.ndarray):
        return data if dtype is None else data.astype(dtype, copy=False)
    if dtype is not None:
        return np.asarray(data, dtype=dtype)
    array = np.asarray(data)
    if array.dtype == np.float64 and not isinstance(data, np.floating):
        # Python floats become the default dtype (float32), as torch.tensor does.
        return array.astype(_backend.get_default_dtype())
    if array.dtype.kind in "iu" and not isinstance(data, np.integer):
        return array.astype(np.int64)
    if array.dtype.kind not in "fiub":
        raise TypeError(f"tensor: cannot make a tensor from data of dtype {array.dtype}")
    return array


def _scalar(value):
    """A Python number as a weak scalar (so float32 stays float32), or None if not a number."""
    kind = type(value)
    if kind is float or kind is int:
        return value
    if kind is Tensor or isinstance(value, (Tensor, np.ndarray)):  # the common case, before the slow ABC check
        return None
    if isinstance(value, (Number, np.number)) and not isinstance(value, (complex, np.complexfloating)):
        return value.item() if isinstance(value, np.generic) else value
    return None


class Tensor:
    """A multi-dimensional array that records the ops applied to it, for reverse-mode autograd.

    Args:
        data: an array, a number or nested lists.
        dtype: float32 (default for Python floats), float64, int64 or bool; NumPy dtypes work.
        requires_grad: record ops on this tensor so that ``backward`` fills its ``grad``.

    Example:
        >>> import glassnet as gn
        >>> w = gn.tensor([1.0, 2.0], requires_grad=True)
        >>> (w * w).sum().backward()
        >>> w.grad
        tensor([2., 4.])
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_vc", "_hooks", "__weakref__")
    __array_priority__ = 1000  # NumPy defers `array + tensor` to Tensor.__radd__

    def __init__(self, data, dtype=None, requires_grad: bool = False) -> None:
        self.data = _to_array(data, dtype)
        self.grad = None
        self._ctx = None
        self._vc = [0]
        self._hooks = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # ---- properties
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def device(self) -> str:
        return "cpu"

    @property
    def is_leaf(self) -> bool:
        """True for a tensor made by the user rather than by a recorded op."""
        return self._ctx is None

    @property
    def grad_fn(self):
        """The op that produced this tensor (None for a leaf)."""
        return self._ctx

    @property
    def T(self) -> Tensor:
        return self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self) -> Tensor:
        return self.transpose(-2, -1)

    @property
    def _version(self) -> int:
        return self._vc[0]

    def dim(self) -> int:
        return self.data.ndim

    def size(self, dim: int | None = None):
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self) -> int:
        return self.data.size

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    # ---- conversion
    def numpy(self) -> np.ndarray:
        """The underlying array (shares memory, as torch's ``numpy()`` does)."""
        return self.data

    def __array__(self, dtype=None, copy=None):
        if dtype is not None and dtype != self.data.dtype:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item(): only a tensor with one element can be converted, got shape {self.shape}")
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous")
        return bool(self.data)

    def __index__(self) -> int:
        if self.data.dtype.kind not in "iu" or self.data.size != 1:
            raise TypeError("only integer tensors of one element can be used as an index")
        return int(self.data)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extras = []
        if self.data.dtype not in (_backend.get_default_dtype(), np.int64, np.bool_):
            extras.append(f"dtype={self.data.dtype}")
        if self._ctx is not None:
            extras.append(f"grad_fn={self._ctx!r}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return f"tensor({body}{''.join(', ' + e for e in extras)})"

    # Identity hashing (as torch.Tensor), kept in C: the engine keys its sets and dicts by tensor.
    __hash__ = object.__hash__

    def to(self, *args, **kwargs) -> Tensor:
        """``to(dtype)`` converts (differentiably); ``to('cpu')`` is the tensor itself."""
        dtype = kwargs.get("dtype")
        for a in args:
            if isinstance(a, str) or a is None:
                if a not in (None, "cpu"):
                    raise ValueError(f"to(): only the 'cpu' device is available, got {a!r}")
            else:
                dtype = a
        if dtype is None or np.dtype(dtype) == self.data.dtype:
            return self
        return _ops.Cast.apply(self, dtype=np.dtype(dtype))

    def type(self, dtype) -> Tensor:
        return self.to(dtype)

    def float(self) -> Tensor:
        return self.to(np.float32)

    def double(self) -> Tensor:
        return self.to(np.float64)

    def long(self) -> Tensor:
        return self.to(np.int64)

    def int(self) -> Tensor:
        return self.to(np.int32)

    def bool(self) -> Tensor:
        return self.to(np.bool_)

    def cpu(self) -> Tensor:
        return self

    def contiguous(self) -> Tensor:
        return self

    def is_floating_point(self) -> bool:
        return self.data.dtype.kind == "f"

    # ---- autograd
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and self.data.dtype.kind not in _FLOAT_KINDS:
            raise TypeError(f"only floating point tensors can require gradients, got dtype {self.data.dtype}")
        if not requires_grad and self._ctx is not None:
            raise RuntimeError("requires_grad_(False) is only allowed on leaf tensors; use detach()")
        self.requires_grad = bool(requires_grad)
        return self

    def detach(self) -> Tensor:
        """A new leaf sharing this tensor's data (and version counter), outside the graph."""
        out = Tensor.__new__(Tensor)
        out.data, out.grad, out.requires_grad, out._ctx = self.data, None, False, None
        out._vc, out._hooks = self._vc, None
        return out

    def retain_grad(self) -> None:
        """Keep ``grad`` on this non-leaf tensor after backward (leaves always keep theirs)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad() on a tensor that does not require grad")
        if self._ctx is not None:  # the graph holds no tensors: its node keeps a weak reference
            self._ctx.retained = weakref.ref(self)

    def register_hook(self, hook):
        """Call ``hook(grad) -> Tensor or None`` with this tensor's gradient during backward.

        Returns a handle whose ``remove()`` unregisters the hook.
        """
        if not self.requires_grad:
            raise RuntimeError("register_hook on a tensor that does not require grad")
        fn = self._ctx
        if fn is None:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        else:  # a non-leaf's hooks live on its graph node, which backward reaches without the tensor
            if fn.hooks is None:
                fn.hooks = []
            hooks = fn.hooks
        hooks.append(hook)
        return _HookHandle(hooks, hook)

    def backward(self, gradient=None, retain_graph: bool = False) -> None:
        """Backpropagate from this tensor: every leaf that requires a gradient gets ``.grad`` added.

        Args:
            gradient: dL/dself, shaped like self; may be omitted for a one-element tensor.
            retain_graph: keep the saved arrays so that backward can run through the graph again.
        """
        if not self.requires_grad:
            raise RuntimeError(
                f"backward: this tensor (shape {self.shape}) does not require grad and has no grad_fn; "
                "create its inputs with requires_grad=True, and do not compute it under no_grad()"
            )
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward: gradient can be omitted only for a one-element output, got shape {self.shape}; "
                    "pass gradient= (dL/d output) or reduce the output first, e.g. loss.sum()"
                )
            grad = np.ones_like(self.data)
        else:
            grad = _to_array(gradient)
            if grad.shape != self.data.shape:
                raise ValueError(f"backward: gradient has shape {grad.shape}, but the tensor has shape {self.shape}")
            grad = grad.astype(self.data.dtype, copy=False)
        engine.backward(self, grad, retain_graph=retain_graph)

    # ---- in-place (no graph: for updates under no_grad and for tensors that need no gradient)
    def _check_inplace(self, op: str) -> None:
        if grad_mode.enabled and self.requires_grad:
            raise RuntimeError(
                f"{op}: in-place change of a tensor that requires grad (shape {self.shape}); "
                "wrap it in `with glassnet.no_grad():` (parameter updates) or use the out-of-place op"
            )
        self._vc[0] += 1

    def _inplace(self, op: str, ufunc, other) -> Tensor:
        self._check_inplace(op)
        value = other.data if isinstance(other, Tensor) else other
        try:
            ufunc(self.data, value, out=self.data, casting="same_kind")
        except (ValueError, TypeError) as exc:
            shape = getattr(value, "shape", ())
            raise ValueError(f"{op}: cannot apply to shape {self.shape} with operand shape {shape}: {exc}") from None
        return self

    def add_(self, other, alpha=1) -> Tensor:
        return self._inplace("add_", np.add, other if alpha == 1 else _unwrap(other) * alpha)

    def sub_(self, other, alpha=1) -> Tensor:
        return self._inplace("sub_", np.subtract, other if alpha == 1 else _unwrap(other) * alpha)

    def mul_(self, other) -> Tensor:
        return self._inplace("mul_", np.multiply, other)

    def div_(self, other) -> Tensor:
        return self._inplace("div_", np.true_divide, other)

    def clamp_(self, min=None, max=None) -> Tensor:
        self._check_inplace("clamp_")
        np.clip(self.data, min, max, out=self.data)
        return self

    def zero_(self) -> Tensor:
        return self.fill_(0)

    def fill_(self, value) -> Tensor:
        self._check_inplace("fill_")
        self.data.fill(value)
        return self

    def copy_(self, src) -> Tensor:
        self._check_inplace("copy_")
        src = _unwrap(src)
        try:
            np.copyto(self.data, src, casting="unsafe")
        except ValueError:
            raise ValueError(
                f"copy_: source of shape {np.shape(src)} does not fit a tensor of shape {self.shape}"
            ) from None
        return self

    def __setitem__(self, index, value) -> None:
        self._check_inplace("__setitem__")
        self.data[_index(index)] = _unwrap(value)

    def __iadd__(self, other):
        return self + other if self._needs_graph(other) else self.add_(other)

    def __isub__(self, other):
        return self - other if self._needs_graph(other) else self.sub_(other)

    def __imul__(self, other):
        return self * other if self._needs_graph(other) else self.mul_(other)

    def __itruediv__(self, other):
        return self / other if self._needs_graph(other) else self.div_(other)

    def _needs_graph(self, other) -> bool:
        return grad_mode.enabled and (self.requires_grad or (isinstance(other, Tensor) and other.requires_grad))

    # ---- arithmetic
    def __add__(self, other):
        c = _scalar(other)
        if c is not None:
            return _ops.AddScalar.apply(self, c=c)
        return _ops.Add.apply(*_pair("add", self, other))

    __radd__ = __add__

    def __sub__(self, other):
        c = _scalar(other)
        if c is not None:
            return _ops.AddScalar.apply(self, c=-c)
        return _ops.Sub.apply(*_pair("sub", self, other))

    def __rsub__(self, other):
        c = _scalar(other)
        if c is not None:
            return _ops.RSubScalar.apply(self, c=c)
        return _ops.Sub.apply(*_pair("sub", other, self))

    def __mul__(self, other):
        c = _scalar(other)
        if c is not None:
            return _ops.MulScalar.apply(self, c=c)
        return _ops.Mul.apply(*_pair("mul", self, other))

    __rmul__ = __mul__

    def __truediv__(self, other):
        c = _scalar(other)
        if c is not None:
            return _ops.MulScalar.apply(self, c=1.0 / c) if c != 0 else _ops.Div.apply(*_pair("div", self, other))
        return _ops.Div.apply(*_pair("div", self, other))

    def __rtruediv__(self, other):
        c = _scalar(other)
        if c is not None:
            return _ops.RDivScalar.apply(self, c=c)
        return _ops.Div.apply(*_pair("div", other, self))

    def __pow__(self, exponent):
        c = _scalar(exponent)
        if c is not None:
            return _ops.PowScalar.apply(self, p=c)
        return _ops.Pow.apply(*_pair("pow", self, exponent))

    def __rpow__(self, base):
        c = _scalar(base)
        if c is not None:
            return _ops.RPowScalar.apply(self, c=c)
        return _ops.Pow.apply(*_pair("pow", base, self))

    def __matmul__(self, other):
        return _ops.MatMul.apply(*_pair("matmul", self, other))

    def __rmatmul__(self, other):
        return _ops.MatMul.apply(*_pair("matmul", other, self))

    def __neg__(self):
        return _ops.Neg.apply(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _ops.Abs.apply(self)

    add = __add__
    sub = __sub__
    mul = __mul__
    div = __truediv__
    pow = __pow__
    matmul = __matmul__
    neg = __neg__

    # ---- comparisons (no gradient)
    def _compare(self, other, ufunc) -> Tensor:
        return Tensor(ufunc(self.data, _unwrap(other)))

    def __eq__(self, other):  # type: ignore[override]
        return self._compare(other, np.equal)

    def __ne__(self, other):  # type: ignore[override]
        return self._compare(other, np.not_equal)

    def __lt__(self, other):
        return self._compare(other, np.less)

    def __le__(self, other):
        return self._compare(other, np.less_equal)

    def __gt__(self, other):
        return self._compare(other, np.greater)

    def __ge__(self, other):
        return self._compare(other, np.greater_equal)

    eq, ne, lt, le, gt, ge = __eq__, __ne__, __lt__, __le__, __gt__, __ge__

    def __invert__(self):
        return Tensor(~self.data)

    def __and__(self, other):
        return self._compare(other, np.logical_and)

    def __or__(self, other):
        return self._compare(other, np.logical_or)

    def all(self) -> Tensor:
        return Tensor(self.data.all())

    def any(self) -> Tensor:
        return Tensor(self.data.any())

    def isfinite(self) -> Tensor:
        return Tensor(np.isfinite(self.data))

    def isnan(self) -> Tensor:
        return Tensor(np.isnan(self.data))

    def argmax(self, dim=None, keepdim: bool = False, axis=None) -> Tensor:
        dim = axis if dim is None else dim
        out = self.data.argmax(axis=dim, keepdims=keepdim) if dim is not None else self.data.argmax()
        return Tensor(np.asarray(out, dtype=np.int64))

    def argmin(self, dim=None, keepdim: bool = False, axis=None) -> Tensor:
        dim = axis if dim is None else dim
        out = self.data.argmin(axis=dim, keepdims=keepdim) if dim is not None else self.data.argmin()
        return Tensor(np.asarray(out, dtype=np.int64))

    # ---- elementwise functions
    def exp(self) -> Tensor:
        return _ops.Exp.apply(self)

    def log(self) -> Tensor:
        return _ops.Log.apply(self)

    def sqrt(self) -> Tensor:
        return _ops.Sqrt.apply(self)

    def abs(self) -> Tensor:
        return _ops.Abs.apply(self)

    def clamp(self, min=None, max=None) -> Tensor:
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must be given")
        return _ops.Clamp.apply(self, min=_unwrap(min), max=_unwrap(max))

    clip = clamp

    def maximum(self, other) -> Tensor:
        return _ops.Maximum.apply(*_pair("maximum", self, other))

    def minimum(self, other) -> Tensor:
        return _ops.Minimum.apply(*_pair("minimum", self, other))

    def relu(self) -> Tensor:
        return _ops.ReLU.apply(self)

    def leaky_relu(self, negative_slope: float = 0.01) -> Tensor:
        return _ops.LeakyReLU.apply(self, negative_slope=negative_slope)

    def sigmoid(self) -> Tensor:
        return _ops.Sigmoid.apply(self)

    def tanh(self) -> Tensor:
        return _ops.Tanh.apply(self)

    def softmax(self, dim: int, axis=None) -> Tensor:
        return _ops.Softmax.apply(self, dim=_one_dim(dim if axis is None else axis, self.ndim, "softmax"))

    def log_softmax(self, dim: int, axis=None) -> Tensor:
        return _ops.LogSoftmax.apply(self, dim=_one_dim(dim if axis is None else axis, self.ndim, "log_softmax"))

    def clone(self) -> Tensor:
        return _ops.Clone.apply(self)

    # ---- reductions
    def sum(self, dim=None, keepdim: bool = False, axis=None) -> Tensor:
        dim = _dims(dim if axis is None else axis, self.ndim, "sum")
        return _ops.Sum.apply(self, dim=dim, keepdim=keepdim)

    def mean(self, dim=None, keepdim: bool = False, axis=None) -> Tensor:
        if self.data.dtype.kind != "f":
            raise TypeError(f"mean(): expected a floating point tensor, got {self.data.dtype}; use .float() first")
        dim = _dims(dim if axis is None else axis, self.ndim, "mean")
        return _ops.Mean.apply(self, dim=dim, keepdim=keepdim)

    def var(self, dim=None, unbiased=None, keepdim: bool = False, correction=None, axis=None) -> Tensor:
        """Variance over ``dim``; unbiased (correction=1) by default, as PyTorch."""
        if correction is None:
            correction = 0 if unbiased is False else 1
        dim = _dims(dim if axis is None else axis, self.ndim, "var")
        return _ops.Var.apply(self, dim=dim, correction=correction, keepdim=keepdim)

    def std(self, dim=None, unbiased=None, keepdim: bool = False, correction=None, axis=None) -> Tensor:
        return self.var(dim, unbiased, keepdim, correction, axis).sqrt()

    def max(self, dim=None, keepdim: bool = False, axis=None):
        """The largest element, or with ``dim`` the pair (values, indices) along it, as PyTorch."""
        dim = dim if axis is None else axis
        if isinstance(dim, Tensor):
            return self.maximum(dim)
        if dim is None:
            return _ops.MaxAll.apply(self, largest=True)
        return self._max_dim(dim, keepdim, True)

    def min(self, dim=None, keepdim: bool = False, axis=None):
        """The smallest element, or with ``dim`` the pair (values, indices) along it, as PyTorch."""
        dim = dim if axis is None else axis
        if isinstance(dim, Tensor):
            return self.minimum(dim)
        if dim is None:
            return _ops.MaxAll.apply(self, largest=False)
        return self._max_dim(dim, keepdim, False)

    def _max_dim(self, dim, keepdim, largest) -> MaxResult:
        dim = _one_dim(dim, self.ndim, "max" if largest else "min")
        if self.shape[dim] == 0:
            raise IndexError(f"{'max' if largest else 'min'}: dim {dim} of shape {self.shape} is empty")
        indices = np.expand_dims(self.data.argmax(axis=dim) if largest else self.data.argmin(axis=dim), dim)
        values = _ops.MaxDim.apply(self, dim=dim, indices=indices, keepdim=keepdim)
        return MaxResult(values, Tensor(indices if keepdim else np.squeeze(indices, axis=dim)))

    def amax(self, dim=None, keepdim: bool = False) -> Tensor:
        """The largest values over ``dim`` (an int or a tuple); ties share the gradient evenly."""
        return _ops.MaxAll.apply(self, largest=True, dim=_dims(dim, self.ndim, "amax"), keepdim=keepdim)

    def amin(self, dim=None, keepdim: bool = False) -> Tensor:
        """The smallest values over ``dim`` (an int or a tuple); ties share the gradient evenly."""
        return _ops.MaxAll.apply(self, largest=False, dim=_dims(dim, self.ndim, "amin"), keepdim=keepdim)

    # ---- shape
    def reshape(self, *shape) -> Tensor:
        shape = _shape_args(shape)
        if shape == self.data.shape:
            return self if not grad_mode.enabled or not self.requires_grad else _ops.Reshape.apply(self, shape=shape)
        return _ops.Reshape.apply(self, shape=shape)

    view = reshape

    def view_as(self, other: Tensor) -> Tensor:
        return self.reshape(other.shape)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        if self.ndim == 0:
            return self.reshape(1)
        start = _one_dim(start_dim, self.ndim, "flatten")
        end = _one_dim(end_dim, self.ndim, "flatten")
        shape = self.shape[:start] + (-1,) + self.shape[end + 1 :]
        return self.reshape(shape)

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        dims = list(range(self.ndim))
        d0, d1 = _one_dim(dim0, self.ndim, "transpose"), _one_dim(dim1, self.ndim, "transpose")
        dims[d0], dims[d1] = dims[d1], dims[d0]
        return _ops.Permute.apply(self, dims=tuple(dims))

    swapaxes = transpose

    def t(self) -> Tensor:
        if self.ndim > 2:
            raise ValueError(f"t(): expects a tensor with at most 2 dimensions, got shape {self.shape}")
        return self.T

    def permute(self, *dims) -> Tensor:
        return _ops.Permute.apply(self, dims=_shape_args(dims))

    def expand(self, *shape) -> Tensor:
        return _ops.Expand.apply(self, shape=_shape_args(shape))

    def expand_as(self, other: Tensor) -> Tensor:
        return self.expand(other.shape)

    def unsqueeze(self, dim: int) -> Tensor:
        dim = dim + self.ndim + 1 if dim < 0 else dim
        if not 0 <= dim <= self.ndim:
            raise IndexError(f"unsqueeze: dim {dim} is out of range for a tensor with {self.ndim} dimensions")
        return self.reshape(self.shape[:dim] + (1,) + self.shape[dim:])

    def squeeze(self, dim=None) -> Tensor:
        if dim is None:
            return self.reshape(tuple(n for n in self.shape if n != 1))
        dims = _dims(dim, self.ndim, "squeeze") or ()
        return self.reshape(tuple(n for i, n in enumerate(self.shape) if not (i in dims and n == 1)))

    def __getitem__(self, index) -> Tensor:
        return _ops.GetItem.apply(self, index=_index(index))

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]


class _HookHandle:
    """Removes a hook from the list it was added to."""

    def __init__(self, hooks: list, hook) -> None:
        self.hooks, self.hook = hooks, hook

    def remove(self) -> None:
        if self.hook in self.hooks:
            self.hooks.remove(self.hook)


def _unwrap(value):
    return value.data if isinstance(value, Tensor) else value


def _pair(op: str, a, b) -> tuple:
    """Make both operands Tensors of one dtype; mixing float32 and float64 is an error."""
    if not isinstance(a, Tensor):
        a = Tensor(_to_array(a, b.data.dtype if b.data.dtype.kind == "f" else None))
    if not isinstance(b, Tensor):
        b = Tensor(_to_array(b, a.data.dtype if a.data.dtype.kind == "f" else None))
    da, db = a.data.dtype, b.data.dtype
    if da is not db and da != db:
        if da.kind == "f" and db.kind == "f":
            raise TypeError(
                f"{op}: dtype mismatch: {da} {tuple(a.shape)} and {db} {tuple(b.shape)}; "
                "convert one operand with .float() or .double()"
            )
        if da.kind == "f":
            b = Tensor(b.data.astype(da))
        elif db.kind == "f":
            a = Tensor(a.data.astype(db))
    return a, b


def _index(index):
    """Replace Tensors inside an index by their arrays."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    if isinstance(index, list):
        return np.asarray(index)
    return index


def _shape_args(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(n) for n in shape)


def _one_dim(dim, ndim: int, op: str) -> int:
    if not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{op}: dim must be an integer, got {dim!r}")
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        raise IndexError(f"{op}: dim {dim} is out of range for a tensor with {ndim} dimensions")
    return int(dim) % max(ndim, 1)


def _dims(dim, ndim: int, op: str):
    from glassnet.ops._util import normalize_dim

    return normalize_dim(dim, ndim, op)


from glassnet import ops as _ops  # noqa: E402  (the ops import Tensor from this module)
