"""Flatten parameters into one vector and back (parameters_to_vector, vector_to_parameters)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from glassnet.factory import cat
from glassnet.tensor import Tensor

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """Concatenate the parameters, each flattened, into one 1-D Tensor (differentiable, as in PyTorch).

    Args:
        parameters: an iterable of Tensors.

    Returns:
        A Tensor of shape ``(sum of numel,)``.

    Example:
        >>> import glassnet as gn
        >>> from glassnet.nn.utils import parameters_to_vector
        >>> parameters_to_vector([gn.ones(2, 2), gn.zeros(1)])
        tensor([1., 1., 1., 1., 0.])
    """
    params = list(parameters)
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"parameters_to_vector: parameters must be Tensors, but item {i} is a {type(p).__name__}")
    if not params:
        raise ValueError("parameters_to_vector: got no parameters")
    return cat([p.reshape(-1) for p in params])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of the 1-D ``vec`` into the parameters, in place (the inverse of the above).

    Unlike PyTorch, which rebinds ``param.data`` to views of ``vec``, the values are copied into each
    parameter's own array (so optimizer state and hooks keep pointing at the same memory).

    Args:
        vec: a 1-D Tensor with exactly as many elements as the parameters together.
        parameters: an iterable of Tensors.

    Example:
        >>> import glassnet as gn
        >>> from glassnet.nn.utils import vector_to_parameters
        >>> w, b = gn.zeros(2, 2), gn.zeros(1)
        >>> vector_to_parameters(gn.arange(5.0), [w, b])
        >>> w
        tensor([[0., 1.],
                [2., 3.]])
    """
    if not isinstance(vec, Tensor):
        raise TypeError(f"vector_to_parameters: expected a glassnet Tensor, but got {type(vec).__name__}")
    params = list(parameters)
    total = sum(p.data.size for p in params)
    if vec.ndim != 1 or vec.data.size != total:
        raise ValueError(
            f"vector_to_parameters: vec has shape {vec.shape}, but the parameters hold {total} elements "
            f"(shapes {[p.shape for p in params]}); expected shape ({total},)"
        )
    pointer = 0
    for p in params:
        n = p.data.size
        np.copyto(p.data, vec.data[pointer : pointer + n].reshape(p.data.shape), casting="same_kind")
        p._vc[0] += 1
        pointer += n
