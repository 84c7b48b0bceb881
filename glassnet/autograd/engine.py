"""The backward engine: an iterative topological sort, then the chain rule from the output back.

No recursion anywhere, so a chain of any length backpropagates. Gradients flow as raw arrays and
are summed when a tensor feeds several ops; leaf tensors accumulate them in ``.grad`` as PyTorch
does. Unless ``retain_graph`` is set, each node's saved arrays are released once used.

The graph's nodes (Functions and leaf tensors) hash by identity, so they key the engine's sets
and dicts directly.
"""

from __future__ import annotations

import sys

import glassnet.tensor as _tensor_module  # tensor.py imports this module first: read Tensor at call time
from glassnet.autograd import grad_mode

_getrefcount = sys.getrefcount


def topological_order(root) -> list:
    """Graph nodes reachable from ``root`` (a node) along edges that need a gradient, inputs first.

    A node is a Function (an op's record) or a leaf tensor. A depth-first search with an explicit
    stack: a node is pushed once to be expanded (its inputs pushed above it) and once more, wrapped
    in a 1-tuple, to be emitted after all of its inputs.
    """
    Tensor = _tensor_module.Tensor
    if isinstance(root, Tensor) and root._ctx is not None:  # a non-leaf tensor: start from its node
        root = root._ctx
    order = []
    visited = set()
    stack = [root]
    push = stack.append
    while stack:
        node = stack.pop()
        if type(node) is tuple:  # every input of node[0] is already in order
            order.append(node[0])
            continue
        if node in visited:
            continue
        visited.add(node)
        if isinstance(node, Tensor):
            order.append(node)
            continue
        if node.released:
            raise RuntimeError(
                f"backward: trying to go through the graph a second time ({node!r} already "
                "released its saved arrays); pass retain_graph=True to the first backward call"
            )
        push((node,))
        for p in node.edges:
            if p is not None and p not in visited:
                push(p)
    return order


def backward(root, grad, retain_graph: bool = False) -> None:
    """Backpropagate ``grad`` (an array shaped like tensor ``root``) to every leaf that requires a gradient."""
    Tensor = _tensor_module.Tensor
    root_node = root if root._ctx is None else root._ctx
    order = topological_order(root_node)
    grads = {root_node: grad}
    prev_mode = grad_mode.enabled
    grad_mode.enabled = False
    try:
        while order:
            fn = order.pop()  # outputs first; popping lets each saved array be freed once it is used
            g = grads.pop(fn, None)
            if g is None:
                continue
            if isinstance(fn, Tensor):  # a leaf
                if not fn.requires_grad:  # frozen after the forward pass: no gradient, as PyTorch
                    continue
                if fn._hooks:
                    g = _run_hooks(fn._hooks, g)
                _accumulate(fn, g)
                continue
            if fn.hooks:
                g = _run_hooks(fn.hooks, g)
            if fn.retained is not None:
                t = fn.retained()
                if t is not None:
                    _accumulate(t, g)
                t = None
            fn.check_versions()
            in_grads = fn.backward(g)
            if type(in_grads) is not tuple:
                in_grads = (in_grads,)
            for p, pg in zip(fn.edges, in_grads):
                if pg is None or p is None:
                    continue
                shape = p.data.shape if isinstance(p, Tensor) else p.out_shape
                if pg.shape != shape:
                    raise RuntimeError(
                        f"{type(fn).__name__}.backward returned a gradient of shape {pg.shape} "
                        f"for an input of shape {shape}"
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


def _run_hooks(hooks, g):
    """Call the hooks in order; a hook returning a Tensor or array replaces the gradient."""
    Tensor = _tensor_module.Tensor
    for hook in list(hooks):
        result = hook(Tensor(g))
        if result is not None:
            g = result.data if isinstance(result, Tensor) else result
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
