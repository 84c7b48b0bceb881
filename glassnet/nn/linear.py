"""Linear (fully connected) layer, Identity, Flatten and Unflatten."""

from __future__ import annotations

import math

import numpy as np

from glassnet import _backend
from glassnet.autograd.function import GlassnetError
from glassnet.nn import init
from glassnet.nn.module import Module, Parameter
from glassnet.ops.linalg import Linear as _LinearOp
from glassnet.tensor import Tensor


class Identity(Module):
    """Returns its input unchanged."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:
        return input


class Linear(Module):
    """z = x W^T + b: the affine map of the seeds' z = W a + b, applied to rows of x.

    Args:
        in_features: size of each input row.
        out_features: size of each output row.
        bias: learn an additive bias.

    Shape:
        input (..., in_features) -> output (..., out_features); weight (out_features, in_features).

    Initialisation as PyTorch: weight kaiming_uniform_(a=sqrt(5)), i.e. U(-1/sqrt(in), 1/sqrt(in)),
    bias U(-1/sqrt(in), 1/sqrt(in)).

    Example:
        >>> import glassnet as gn
        >>> gn.nn.Linear(784, 256)(gn.zeros(32, 784)).shape
        (32, 256)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=None) -> None:
        super().__init__()
        if in_features <= 0 or out_features <= 0:
            raise ValueError(
                f"Linear: in_features and out_features must be positive, got {in_features}, {out_features}"
            )
        dtype = dtype or _backend.get_default_dtype()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dtype))
        self.bias = Parameter(np.empty(out_features, dtype=dtype)) if bias else None
        if not bias:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:
        if input.data.shape[-1:] != (self.in_features,):
            raise GlassnetError(f"{self._name()}: expected input (..., {self.in_features}), got {tuple(input.shape)}")
        if self.bias is None:
            return _LinearOp.apply(input, self.weight)
        return _LinearOp.apply(input, self.weight, self.bias)

    def _name(self) -> str:
        return f"Linear(in_features={self.in_features}, out_features={self.out_features})"

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Flatten(Module):
    """Flattens axes start_dim..end_dim (by default all but the batch axis)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input: Tensor) -> Tensor:
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Expands axis ``dim`` into ``unflattened_size``."""

    def __init__(self, dim: int, unflattened_size) -> None:
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, input: Tensor) -> Tensor:
        dim = self.dim % input.ndim
        return input.reshape(input.shape[:dim] + self.unflattened_size + input.shape[dim + 1 :])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
