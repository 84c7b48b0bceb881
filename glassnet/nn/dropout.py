"""Dropout: inverted dropout in training, the identity in eval."""

from __future__ import annotations

from glassnet.nn import functional as F
from glassnet.nn.module import Module
from glassnet.tensor import Tensor


class Dropout(Module):
    """Zero each element with probability ``p`` in training and scale the rest by 1 / (1 - p).

    Example:
        >>> import glassnet as gn
        >>> drop = gn.nn.Dropout(0.5).eval()
        >>> bool((drop(gn.ones(4)) == 1).all())
        True
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: probability has to be between 0 and 1, got {p}")
        self.p = p

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(input, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
