"""gradcheck: compare backprop's gradients with central finite differences in float64, parameter by parameter."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from glassnet import _backend, nn
from glassnet.autograd import GlassnetError
from glassnet.tensor import Tensor


@dataclass
class GradcheckRow:
    """One checked tensor: how many elements were compared and the worst errors among them."""

    name: str
    shape: tuple
    checked: int
    max_abs_error: float
    max_rel_error: float
    ok: bool


@dataclass
class GradcheckResult:
    """The outcome of ``gradcheck``: ``ok``, the worst parameter and its error, and one row per tensor."""

    ok: bool
    worst_parameter: str | None
    max_rel_error: float
    rows: list[GradcheckRow]

    def __str__(self) -> str:
        lines = [f"{'parameter':<28}{'shape':<18}{'checked':>8}{'max abs err':>14}{'max rel err':>14}  ok"]
        for r in self.rows:
            lines.append(
                f"{r.name:<28}{str(r.shape):<18}{r.checked:>8}{r.max_abs_error:>14.2e}{r.max_rel_error:>14.2e}  "
                + ("yes" if r.ok else "NO")
            )
        verdict = "ok" if self.ok else "FAILED"
        lines.append(f"gradcheck {verdict}: worst {self.worst_parameter} (relative error {self.max_rel_error:.2e})")
        return "\n".join(lines)


def _as_float64(value):
    if isinstance(value, Tensor):
        data = value.data.astype(np.float64) if value.data.dtype.kind == "f" else value.data
        return Tensor(data)
    array = np.asarray(value)
    return Tensor(array.astype(np.float64) if array.dtype.kind == "f" else array)


def gradcheck(
    model_or_fn: nn.Module | Callable,
    inputs: Tensor | Sequence,
    loss_fn: Callable | None = None,
    target=None,
    eps: float = 1e-6,
    atol: float = 1e-6,
    rtol: float = 1e-4,
    max_checks: int = 32,
    seed: int = 0,
) -> GradcheckResult:
    """Check backprop against central differences ``(f(x + eps) - f(x - eps)) / (2 eps)`` in float64.

    A model is deep-copied and converted to float64 (the original is not touched); its parameters are
    checked. A plain function is checked with respect to its floating inputs. The scalar checked is
    ``loss_fn(output, target)`` when both are given, else ``(output * R).sum()`` for a fixed random R,
    so that every output element matters. At most ``max_checks`` elements per tensor are compared,
    drawn at random; the random state is reset before each evaluation so that Dropout is repeatable.

    Args:
        model_or_fn: an ``nn.Module`` or a function of the inputs returning a Tensor.
        inputs: a Tensor or a sequence of them (arrays accepted).
        loss_fn, target: optional loss turning the output into a scalar.
        eps: the finite-difference step.
        atol, rtol: an element passes when ``|analytic - numeric| <= atol + rtol * |numeric|``.
        max_checks: elements compared per tensor.
        seed: the seed for the choice of elements and for R.

    Returns:
        A ``GradcheckResult`` (``ok``, ``worst_parameter``, ``max_rel_error``, ``rows``).

    Example:
        >>> import glassnet as gn
        >>> from glassnet import nn
        >>> result = gradcheck(nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)), gn.randn(5, 3))
        >>> result.ok
        True
    """
    inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    inputs = [_as_float64(x) for x in inputs]
    if isinstance(model_or_fn, nn.Module):
        model = copy.deepcopy(model_or_fn).double()
        fn = model
        named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    elif callable(model_or_fn):
        fn = model_or_fn
        named = []
        for i, x in enumerate(inputs):
            if x.data.dtype.kind == "f":
                x.requires_grad_(True)
                named.append((f"input{i}", x))
    else:
        raise TypeError(f"gradcheck: expected an nn.Module or a function, got {type(model_or_fn).__name__}")
    if not named:
        raise GlassnetError("gradcheck: nothing to check (no parameter or floating input requires a gradient)")
    target = None if target is None else _as_float64(target)
    rng = np.random.default_rng(seed)
    rng_state = _backend.get_rng_state()
    projection = {}

    def scalar() -> Tensor:
        _backend.set_rng_state(rng_state)
        output = fn(*inputs)
        if loss_fn is not None and target is not None:
            return loss_fn(output, target)
        if "R" not in projection:
            projection["R"] = Tensor(rng.standard_normal(output.shape))
        return (output * projection["R"]).sum()

    for _, p in named:
        p.grad = None
    scalar().backward()
    checks = []
    for name, p in named:
        analytic = np.zeros_like(p.data) if p.grad is None else p.grad.data
        flat = p.data.reshape(-1)  # a view: the parameters are contiguous float64 arrays
        picks = np.arange(flat.size) if flat.size <= max_checks else rng.choice(flat.size, max_checks, replace=False)
        numeric = np.empty(len(picks))
        for k, index in enumerate(picks):
            original = flat[index]
            flat[index] = original + eps
            plus = scalar().item()
            flat[index] = original - eps
            minus = scalar().item()
            flat[index] = original
            numeric[k] = (plus - minus) / (2 * eps)
        checks.append((name, tuple(p.shape), analytic.reshape(-1)[picks], numeric))
    # Relative to the largest gradient anywhere, so that an element whose gradient is ~0 (a bias before
    # BatchNorm) does not count as a 100% error.
    floor = 1e-3 * max(max(np.abs(a).max(), np.abs(n).max()) for _, _, a, n in checks) + 1e-300
    rows = []
    for name, shape, analytic, numeric in checks:
        abs_errors = np.abs(analytic - numeric)
        rel_errors = abs_errors / np.maximum(np.abs(numeric), floor)
        passed = bool(np.all(abs_errors <= atol + rtol * np.abs(numeric)))
        rows.append(GradcheckRow(name, shape, len(numeric), float(abs_errors.max()), float(rel_errors.max()), passed))
    _backend.set_rng_state(rng_state)
    worst = max(rows, key=lambda r: r.max_rel_error)
    return GradcheckResult(all(r.ok for r in rows), worst.name, worst.max_rel_error, rows)
