"""The autograd core: Function (graph node), the backward engine, and grad mode."""

from glassnet.autograd.function import Function, GlassnetError
from glassnet.autograd.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled

__all__ = ["Function", "GlassnetError", "enable_grad", "is_grad_enabled", "no_grad", "set_grad_enabled"]
