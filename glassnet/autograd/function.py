"""Function: the base of every primitive op; ``apply`` runs forward and records the graph node.

A primitive subclasses Function with ``forward(*arrays, **options) -> array`` that stores on
``self`` what backward needs, and ``backward(grad_out) -> grad or tuple of grads`` (one per tensor
input, ``None`` where none is needed). The node is recorded only when grad mode is on and some
input requires a gradient, so evaluation under ``no_grad`` pays for the NumPy call alone.

The graph is made of these nodes, not of tensors (PyTorch's design): a node links to the nodes of
its inputs (``edges``: an input's own node, the leaf tensor itself, or None where the input needs no
gradient), never to the input tensors. So an intermediate tensor's array is freed as soon as the
caller drops the tensor unless its backward, or its consumers' backward, saved the array: in
``relu(batch_norm(conv(x)))`` the batch norm's output is freed during the forward pass (ReLU's
backward reads ReLU's own output), where a graph of tensors would hold it until backward.
"""

from __future__ import annotations

from glassnet.autograd import grad_mode


class GlassnetError(ValueError):
    """A user mistake caught by glassnet: the message names the op or module and the shapes."""


class Function:
    """Base of the primitive ops (see the module docstring for the contract).

    Class attributes:
        saves_inputs: backward reads the inputs' values, so modifying one in place between
            forward and backward is an error (checked with the tensors' version counters).
        saves_output: backward reads the output's value (exp, sigmoid, tanh, softmax, ...).
        is_view: the output may share memory with the first input (reshape, transpose, slicing),
            so the two share one version counter.
    """

    saves_inputs = True
    saves_output = False
    is_view = False
    released = False
    hooks = None  # gradient hooks registered on the output tensor (Tensor.register_hook)
    retained = None  # weak reference to the output tensor after its retain_grad()

    def forward(self, *arrays, **options):
        raise NotImplementedError

    def backward(self, grad_out):
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **options):
        """Run forward on the inputs' arrays and return a Tensor linked to this node when needed."""
        fn = cls()
        # Unpacking the common arities by hand is ~0.2 us cheaper than a list comprehension.
        n = len(inputs)
        if n == 2:
            arrays = (inputs[0].data, inputs[1].data)
        elif n == 1:
            arrays = (inputs[0].data,)
        else:
            arrays = [t.data for t in inputs]
        try:
            data = fn.forward(*arrays, **options)
        except (ValueError, IndexError, TypeError) as exc:
            raise _explain(cls, exc, inputs) from None
        out = Tensor.__new__(Tensor)
        out.data = data
        out.grad = None
        out._hooks = None
        if cls.is_view and data.base is not None:
            out._vc = inputs[0]._vc
        else:
            out._vc = [0]
        if grad_mode.enabled:
            for t in inputs:
                if t.requires_grad:
                    break
            else:
                out.requires_grad = False
                out._ctx = None
                return out
            # One edge per input: its node (the op that made it, or the leaf tensor itself), None
            # where it needs no gradient. Unrolled for the common arities (~0.3 us a call).
            if n == 2:
                a, b = inputs
                fn.edges = (
                    (a if a._ctx is None else a._ctx) if a.requires_grad else None,
                    (b if b._ctx is None else b._ctx) if b.requires_grad else None,
                )
            elif n == 1:
                a = inputs[0]
                fn.edges = (a if a._ctx is None else a._ctx,)
            else:
                fn.edges = tuple((t if t._ctx is None else t._ctx) if t.requires_grad else None for t in inputs)
            fn.out_shape = data.shape
            if cls.saves_inputs:
                fn.versions = [(t._vc, t._vc[0], t.data.shape) for t in inputs]
            if cls.saves_output:
                fn.out_vc = out._vc
                fn.out_version = out._vc[0]
            out.requires_grad = True
            out._ctx = fn
            return out
        out.requires_grad = False
        out._ctx = None
        return out

    def needs_grad(self, i: int) -> bool:
        """Whether backward must return a gradient for input ``i``."""
        return self.edges[i] is not None

    def check_versions(self) -> None:
        """Raise if an array that backward needs was modified in place after forward."""
        name = type(self).__name__
        if self.saves_inputs:
            for i, (vc, version, shape) in enumerate(self.versions):
                if vc[0] != version:
                    raise RuntimeError(
                        f"{name}.backward: input {i} of shape {shape} was modified in place after the "
                        f"forward pass (version {vc[0]}, expected {version}); backward needs its old value. "
                        "Use an out-of-place op (x = x + 1, not x += 1) or clone()."
                    )
        if self.saves_output and self.out_vc[0] != self.out_version:
            raise RuntimeError(
                f"{name}.backward: its output of shape {self.out_shape} was modified in place "
                f"after the forward pass (version {self.out_vc[0]}, expected {self.out_version}); "
                "backward needs its old value. Use an out-of-place op or clone()."
            )

    def release(self) -> None:
        """Drop the saved arrays and the links to the inputs once backward has used them."""
        self.__dict__.clear()
        self.released = True

    def __repr__(self) -> str:
        return f"<{type(self).__name__}Backward>"


def _explain(cls, exc: Exception, inputs) -> Exception:
    """The forward error ``exc`` of op ``cls``, reworded to name the op and the input shapes.

    A GlassnetError raised by a forward already says both and passes unchanged; NumPy's ValueError
    becomes a GlassnetError; IndexError and TypeError keep their type so that ``except`` clauses
    written for PyTorch still work.
    """
    if isinstance(exc, GlassnetError):
        return exc
    name = cls.__name__
    shapes = ", ".join(str(tuple(t.data.shape)) for t in inputs)
    message = f"{name}: {exc} (input shapes: {shapes})"
    if isinstance(exc, ValueError):
        return GlassnetError(message)
    return type(exc)(message)


from glassnet.tensor import Tensor  # noqa: E402  (tensor.py imports this module first)
