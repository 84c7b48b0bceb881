"""The backward engine: an iterative topological sort, then the chain rule from the output back.

No recursion anywhere, so a chain of any length backpropagates. Gradients flow as raw arrays and
are summed when a tensor feeds several ops; leaf tensors accumulate them in ``.grad`` as PyTorch
does. Unless ``retain_graph`` is set, each node's saved arrays are released once used.

Tensors hash by identity, so they key the engine's sets and dicts directly.
"""

from __future__ import annotations

import sys

import glassnet.tensor as _tensor_module
from glassnet.autograd import grad_mode

_getrefcount = sys.getrefcount


def topological_order(root) -> list:
    """Tensors reachable from ``root`` through recorded ops that need a gradient, inputs first.

    A depth-first search with an explicit stack: a tensor is pushed once to be expanded (its inputs
    pushed above it) and once more, wrapped in a 1-tuple, to be emitted after all of its inputs.
    """
    order = []
    visited = set()
    stack = [root]
    push = stack.append
    while stack:
        t = stack.pop()
        if type(t) is tuple:  # every input of t[0] is already in order
            order.append(t[0])
            continue
        if t in visited:
            continue
        visited.add(t)
        fn = t._ctx
        if fn is None:
            order.append(t)
            continue
        if fn.released:
            raise RuntimeError(
                f"backward: trying to go through the graph a second time ({fn!r} already "
                "released its saved arrays); pass retain_graph=True to the first backward call"
            )
        push((t,))
        for p in fn.parents:
            if p.requires_grad and p not in visited:
                push(p)
    return order


def backward(root, grad, retain_graph: bool = False) -> None:
    """Backpropagate ``grad`` (an array shaped like ``root``) to every leaf that requires a gradient."""
    order = topological_order(root)
    grads = {root: grad}
    prev_mode = grad_mode.enabled
    grad_mode.enabled = False
    try:
        while order:
            t = order.pop()  # outputs first; popping lets each activation be freed once it is used
            g = grads.pop(t, None)
            if g is None:
                continue
            if t._hooks:
                g = _run_hooks(t, g)
            fn = t._ctx
            if fn is None:
                _accumulate(t, g)
                continue
            if t._retains_grad:
                _accumulate(t, g)
            fn.check_versions(t)
            parents = fn.parents
            in_grads = fn.backward(g)
            if type(in_grads) is not tuple:
                in_grads = (in_grads,)
            for p, pg in zip(parents, in_grads):
                if pg is None or not p.requires_grad:
                    continue
                if pg.shape != p.data.shape:
                    raise RuntimeError(
                        f"{type(fn).__name__}.backward returned a gradient of shape {pg.shape} "
                        f"for an input of shape {p.data.shape}"
                    )
                prev = grads.get(p)
                grads[p] = pg if prev is None else prev + pg
            # Drop this frame's references to the gradients just handed on, so that a leaf reached
            # next sees the dict's reference alone and adopts its array instead of copying it.
            in_grads = pg = prev = g = None
            if not retain_graph:
                fn.release()
    finally:
        grad_mode.enabled = prev_mode


def _run_hooks(t, g):
    """Call ``t``'s hooks in order; a hook returning a Tensor or array replaces the gradient."""
    for hook in list(t._hooks):
        result = hook(_tensor_module.Tensor(g))
        if result is not None:
            g = result.data if isinstance(result, _tensor_module.Tensor) else result
    return g


def _accumulate(t, g) -> None:
    """Add ``g`` into ``t.grad``; adopt the array itself when nothing else holds it, else copy it.

    Adopting saves a copy per leaf; copying whenever the array is shared (one array sent to both
    inputs of an Add, the caller's ``gradient``, a retained grad) keeps every ``.grad`` its own memory.
    """
    if g.dtype != t.data.dtype:
        g = g.astype(t.data.dtype)
    if t.grad is None:
        # Refcount 3 = the caller's local + this frame's argument + getrefcount's own argument.
        if g.base is not None or _getrefcount(g) > 3 or not g.flags.writeable:
            g = g.copy(order="K")  # keeps a column-major gradient column-major
        t.grad = _tensor_module.Tensor(g)
    else:
        t.grad.data = t.grad.data + g
