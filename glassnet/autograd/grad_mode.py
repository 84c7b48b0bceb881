"""Grad mode: whether ops record the graph (``no_grad``, ``enable_grad``, ``set_grad_enabled``)."""

from __future__ import annotations

import functools

# Read by Function.apply on every op; a module global is the cheapest flag to read.
enabled = True


def is_grad_enabled() -> bool:
    """True when ops record the graph for backward."""
    return enabled


class set_grad_enabled:
    """Context manager (and decorator) that turns graph recording on or off.

    Example:
        >>> import glassnet as gn
        >>> x = gn.ones(2, requires_grad=True)
        >>> with gn.set_grad_enabled(False):
        ...     y = x * 2
        >>> y.requires_grad
        False
    """

    def __init__(self, mode: bool) -> None:
        self.mode = bool(mode)
        self.prev = enabled

    def __enter__(self) -> None:
        global enabled
        self.prev = enabled
        enabled = self.mode

    def __exit__(self, *exc) -> None:
        global enabled
        enabled = self.prev

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__(self.mode):
                return fn(*args, **kwargs)

        return wrapper


class no_grad(set_grad_enabled):
    """Context manager (and decorator) under which ops record no graph: for evaluation and updates.

    Example:
        >>> import glassnet as gn
        >>> w = gn.ones(2, requires_grad=True)
        >>> with gn.no_grad():
        ...     (w * 3).requires_grad
        False
    """

    def __init__(self) -> None:
        super().__init__(False)

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)

        return wrapper


class enable_grad(set_grad_enabled):
    """Context manager (and decorator) that turns graph recording back on inside ``no_grad``."""

    def __init__(self) -> None:
        super().__init__(True)

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with enable_grad():
                return fn(*args, **kwargs)

        return wrapper
