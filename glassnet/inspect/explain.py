"""explain_step: one training step told layer by layer (forward, loss, backward, update), as text and HTML."""

from __future__ import annotations

import html
from dataclasses import dataclass

from glassnet import nn
from glassnet.inspect import fmt
from glassnet.inspect.diagnose import _as_tensor, train_step
from glassnet.inspect.recorder import Recorder
from glassnet.inspect.stats import summarize

COLUMNS = ("phase", "layer", "quantity", "shape", "formula", "figures")
ACTIVATION_FORMULA = {
    "relu": "a = max(z, 0)",
    "leaky_relu": "a = max(z, slope*z)",
    "sigmoid": "a = 1 / (1 + exp(-z))",
    "tanh": "a = tanh(z)",
    "gelu": "a = z * Phi(z)",
    "silu": "a = z * sigmoid(z)",
}
ACTIVATION_NAME = {
    "relu": "ReLU",
    "leaky_relu": "LeakyReLU",
    "sigmoid": "Sigmoid",
    "tanh": "Tanh",
    "gelu": "GELU",
    "silu": "SiLU",
}
PARAM_SYMBOL = {"weight": "W", "bias": "b"}
LAYER_FORMULA = {
    "Linear": "z = x W^T + b",
    "Conv2d": "z = W * x + b (convolution)",
    "BatchNorm1d": "z = gamma (x - mean) / sqrt(var + eps) + beta",
    "BatchNorm2d": "z = gamma (x - mean) / sqrt(var + eps) + beta",
}


def update_rule(optimizer) -> str:
    """The optimizer's update rule in words and symbols, with its hyper-parameters.

    Example:
        >>> import glassnet as gn
        >>> from glassnet import optim
        >>> update_rule(optim.SGD([gn.zeros(1, requires_grad=True)], lr=0.1))
        'W <- W - lr*g  (SGD, lr=0.1)'
    """
    group = optimizer.param_groups[0]
    name = type(optimizer).__name__
    lr = group.get("lr")
    if name == "SGD":
        if group.get("momentum", 0):
            return f"v <- mu*v + g; W <- W - lr*v  (SGD, lr={lr:g}, momentum={group['momentum']:g})"
        return f"W <- W - lr*g  (SGD, lr={lr:g})"
    if name in ("Adam", "AdamW"):
        b1, b2 = group.get("betas", (0.9, 0.999))
        decay = f" - lr*wd*W, wd={group.get('weight_decay', 0):g}" if name == "AdamW" else ""
        return (
            f"m <- b1*m + (1-b1)*g; v <- b2*v + (1-b2)*g^2; W <- W - lr*m_hat/(sqrt(v_hat)+eps){decay}  "
            f"({name}, lr={lr:g}, betas=({b1:g}, {b2:g}))"
        )
    if name == "RMSprop":
        return f"v <- alpha*v + (1-alpha)*g^2; W <- W - lr*g/(sqrt(v)+eps)  (RMSprop, lr={lr:g})"
    return f"{name}.step() (lr={lr})"


@dataclass
class ExplainedStep:
    """One step, told as rows of ``COLUMNS``; ``str()`` is the text table, ``to_html()`` an HTML table."""

    rows: list[dict]
    loss: float

    @property
    def text(self) -> str:
        widths = {c: max(len(c), *(len(str(r[c])) for r in self.rows)) for c in COLUMNS}
        line = "  ".join(c.ljust(widths[c]) for c in COLUMNS)
        out = [line.rstrip(), "  ".join("-" * widths[c] for c in COLUMNS)]
        phase = None
        for r in self.rows:
            if phase is not None and r["phase"] != phase:
                out.append("")
            phase = r["phase"]
            out.append("  ".join(str(r[c]).ljust(widths[c]) for c in COLUMNS).rstrip())
        return "\n".join(out)

    def __str__(self) -> str:
        return self.text

    def to_html(self) -> str:
        """An HTML ``<table>`` (names escaped), one ``<tbody>`` per phase."""
        head = "".join(f"<th>{c}</th>" for c in COLUMNS)
        bodies, phase = [], None
        for r in self.rows:
            if r["phase"] != phase:
                bodies.append(f'<tbody class="phase-{html.escape(r["phase"])}">')
                phase = r["phase"]
            bodies.append("<tr>" + "".join(f"<td>{html.escape(str(r[c]))}</td>" for c in COLUMNS) + "</tr>")
        return f'<table class="explain-step"><thead><tr>{head}</tr></thead>{"".join(bodies)}</table>'


def _figures(stats, extra: str = "") -> str:
    n = fmt.number
    return f"mean={n(stats.mean)} std={n(stats.std)} min={n(stats.min)} max={n(stats.max)}" + extra


def explain_step(model: nn.Module, x, y, loss_fn, optimizer=None) -> ExplainedStep:
    """Run one training step and tell it in order: forward per layer, loss, backward per layer, update.

    The model is trained in place by one step when an optimizer is given (that is the step told).

    Args:
        model: the model.
        x, y: one batch (Tensors or arrays).
        loss_fn: ``loss_fn(output, y) -> scalar Tensor``.
        optimizer: the optimizer whose update is shown; None shows forward and backward only.

    Returns:
        An ``ExplainedStep``: print it for the terminal table, ``to_html()`` for HTML.

    Example:
        >>> import glassnet as gn
        >>> from glassnet import nn, optim
        >>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        >>> step = explain_step(model, gn.randn(8, 4), gn.randint(0, 2, (8,)), nn.CrossEntropyLoss())
        >>> [r["phase"] for r in step.rows][:3]
        ['forward', 'forward', 'forward']
    """
    x, y = _as_tensor(x), _as_tensor(y)
    shapes: dict[str, tuple] = {}
    hooks = []
    for name, module in model.named_modules():
        if any(True for _ in module.parameters(recurse=False)):

            def remember(mod, inputs, output, name=name):
                if name not in shapes and inputs and hasattr(inputs[0], "shape"):
                    shapes[name] = tuple(inputs[0].shape)

            hooks.append(module.register_forward_hook(remember))
    try:
        with Recorder(model, optimizer=optimizer, keep_steps=[0]) as rec:
            output, loss = train_step(rec, model, loss_fn, optimizer, x, y)
    finally:
        for h in hooks:
            h.remove()
    records = rec.records[0]
    layers = sorted(rec.layers.values(), key=lambda info: info.order)
    rows = [_row("forward", "(input)", "input x", x.shape, "", _figures(summarize(x.data)))]
    for info in layers:
        record = records[info.name]
        rows.append(
            _row(
                "forward",
                info.label,
                f"pre-activation z ({info.type})",
                record.z.shape,
                LAYER_FORMULA.get(info.type, f"z = {info.type}(x)"),
                f"input {shapes.get(info.name, '?')}; " + _figures(record.z),
            )
        )
        if record.a is not None:
            extra = ""
            if record.a.frac_dead_units is not None:
                extra = (
                    f"; zeros: {fmt.percent(record.a.frac_zero)} of values, dead units (0 for every sample): "
                    f"{fmt.percent(record.a.frac_dead_units)}"
                )
            elif record.a.frac_saturated is not None:
                extra = f"; saturated (flat tails): {fmt.percent(record.a.frac_saturated)}"
            kind = ACTIVATION_NAME.get(info.activation_kind, info.activation_kind)
            rows.append(
                _row(
                    "forward",
                    f"{fmt.short(info.activation)} ({kind})",
                    f"activation a ({kind})",
                    record.a.shape,
                    ACTIVATION_FORMULA.get(info.activation_kind, "a = g(z)"),
                    _figures(record.a, extra),
                )
            )
    loss_name = type(loss_fn).__name__ if isinstance(loss_fn, nn.Module) else getattr(loss_fn, "__name__", "loss_fn")
    loss_text = f"L={fmt.number(loss.item(), 5)}"
    rows.append(_row("loss", "(model output)", f"loss L ({loss_name})", (), "L = loss(output, y)", loss_text))
    n = fmt.number
    for info in reversed(layers):
        record = records[info.name]
        if record.grad_z is not None:
            if record.a is not None:
                formula = "dL/dz = dL/da * g'(z)"
            elif info is layers[-1]:
                formula = "dL/dz from the loss"
            else:
                formula = "dL/dz = dL/d(next layer's input)"
            rows.append(
                _row(
                    "backward",
                    info.label,
                    "error signal dL/dz",
                    record.grad_z.shape,
                    formula,
                    f"norm={n(record.grad_z.norm)} rms={n(record.grad_z.rms)} mean|g|={n(record.grad_z.mean_abs)}",
                )
            )
        for pname, param in record.params.items():
            if param.grad is None:
                continue
            symbol = PARAM_SYMBOL.get(pname, pname)
            formula = {"weight": "dL/dW = dL/dz^T x", "bias": "dL/db = sum over batch of dL/dz"}.get(pname, "")
            rows.append(
                _row(
                    "backward",
                    f"{fmt.code(info.name)}.{pname}",
                    f"gradient dL/d{symbol}",
                    param.grad.shape,
                    formula,
                    f"norm={n(param.grad.norm)} mean|g|={n(param.grad.mean_abs)} ({pname} norm={n(param.value.norm)})",
                )
            )
    if optimizer is not None:
        rows.append(_row("update", "(optimizer)", "update rule", None, update_rule(optimizer), ""))
        for info in layers:
            for pname, param in records[info.name].params.items():
                if param.update_norm is None:
                    continue
                symbol = PARAM_SYMBOL.get(pname, pname)
                rows.append(
                    _row(
                        "update",
                        f"{fmt.code(info.name)}.{pname}",
                        f"update of {pname} {symbol}",
                        param.value.shape,
                        f"delta = {symbol} after - {symbol} before",
                        f"||delta||={n(param.update_norm)} ||delta||/||{symbol}||={n(param.update_ratio)}",
                    )
                )
    return ExplainedStep(rows, float(loss.item()))


def _row(phase: str, layer: str, quantity: str, shape, formula: str, figures: str) -> dict:
    return {
        "phase": phase,
        "layer": layer,
        "quantity": quantity,
        "shape": "" if shape is None else str(tuple(shape)),
        "formula": formula,
        "figures": figures,
    }
