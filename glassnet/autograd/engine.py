"""The backward engine: an iterative topological sort, then the chain rule from the output back.

No recursion anywhere, so a chain of any length backpropagates. Gradients flow as raw arrays and
are summed when a tensor feeds several ops; leaf tensors accumulate them in ``.grad`` as PyTorch
does. Unless ``retain_graph`` is set, each node's saved arrays are released once used.
"""

from __future__ import annotations

import sys

from glassnet.autograd import grad_mode

_getrefcount = sys.getrefcount


def topological_order(root) -> list:
    """Tensors reachable from ``root`` through recorded ops that need a gradient, inputs first."""
    order = []
    visited = set()
    stack = [(root, False)]
    while stack:
        t, expanded = stack.pop()
        if expanded:
            order.append(t)
            continue
        if id(t) in visited:
            continue
        visited.add(id(t))
        stack.append((t, True))
        fn = t._ctx
        if fn is not None:
            if fn.released:
                raise RuntimeError(
                    f"backward: trying to go through the graph a second time ({fn!r} already "
                    "released its saved arrays); pass retain_graph=True to the first backward call"
                )
            for p in fn.parents:
                if p.requires_grad and id(p) not in visited:
                    stack.append((p, False))
    return order


def backward(root, grad, retain_graph: bool = False) -> None:
    """Backpropagate ``grad`` (an array shaped like ``root``) to every leaf that requires a gradient."""
    from glassnet.tensor import Tensor

    order = topological_order(root)
    grads = {id(root): grad}
    prev_mode = grad_mode.enabled
    grad_mode.enabled = False
    try:
        for t in reversed(order):
            g = grads.pop(id(t), None)
            if g is None:
                continue
            if t._hooks:
                for hook in t._hooks:
                    result = hook(Tensor(g))
                    if result is not None:
                        g = result.data if isinstance(result, Tensor) else result
            fn = t._ctx
            if fn is None or t._retains_grad:
                _accumulate(t, g)
                if fn is None:
                    continue
            fn.check_versions(t)
            parents = fn.parents
            in_grads = fn.backward(g)
            if len(parents) == 1 and not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            for p, pg in zip(parents, in_grads):
                if pg is None or not p.requires_grad:
                    continue
                if pg.shape != p.data.shape:
                    raise RuntimeError(
                        f"{type(fn).__name__}.backward returned a gradient of shape {pg.shape} "
                        f"for an input of shape {p.data.shape}"
                    )
                key = id(p)
                prev = grads.get(key)
                grads[key] = pg if prev is None else prev + pg
            if not retain_graph:
                fn.release()
    finally:
        grad_mode.enabled = prev_mode


def _accumulate(t, g) -> None:
    """Add ``g`` into ``t.grad``; take the array itself when nothing else holds it, else copy it."""
    from glassnet.tensor import Tensor

    if g.dtype != t.data.dtype:
        g = g.astype(t.data.dtype)
    if t.grad is None:
        # Refcount 3 = the caller's local + this frame's argument + getrefcount's own argument.
        if g.base is not None or _getrefcount(g) > 3 or not g.flags.writeable:
            g = g.copy()
        t.grad = Tensor(g)
    else:
        t.grad.data = t.grad.data + g
