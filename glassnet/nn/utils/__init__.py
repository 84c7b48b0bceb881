"""Utilities over parameters: gradient clipping and conversion between parameters and one flat vector.

Example:
    >>> import glassnet as gn
    >>> from glassnet.nn.utils import clip_grad_norm_
    >>> w = gn.tensor([3.0, 4.0], requires_grad=True)
    >>> (w * w).sum().backward()
    >>> float(clip_grad_norm_([w], max_norm=5.0))
    10.0
"""

from glassnet.nn.utils.clip_grad import clip_grad_norm_, clip_grad_value_
from glassnet.nn.utils.convert_parameters import parameters_to_vector, vector_to_parameters

__all__ = ["clip_grad_norm_", "clip_grad_value_", "parameters_to_vector", "vector_to_parameters"]
