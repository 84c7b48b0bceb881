"""report: one self-contained HTML file of a recorded run (curves, gradients, activations, updates, findings).

The page needs nothing from outside: inline CSS, inline SVG charts (``glassnet.inspect.svg``), no
script, no font, no link. Every name that comes from the model or the user is escaped.
"""

from __future__ import annotations

import os
from html import escape

from glassnet.inspect import fmt, svg
from glassnet.inspect.diagnose import Finding
from glassnet.inspect.explain import ACTIVATION_NAME
from glassnet.inspect.recorder import Recorder

SECTIONS = (
    ("findings", "Findings"),
    ("curves", "Loss and accuracy"),
    ("gradients", "Gradients across depth and time"),
    ("activations", "Activation histograms over time"),
    ("dead-saturated", "Dead and saturated units"),
    ("updates", "Update-to-weight ratios"),
    ("layers", "Layers"),
)
CSS = """
body { font-family: sans-serif; margin: 24px auto; max-width: 1180px; color: #222; }
h1 { font-size: 22px; }
h2 { font-size: 17px; border-bottom: 1px solid #ccc; padding-bottom: 4px; margin-top: 28px; }
nav a { margin-right: 12px; }
.charts { display: flex; flex-wrap: wrap; gap: 8px; }
.finding { border-left: 5px solid #999; padding: 6px 10px; margin: 8px 0; background: #fafafa; }
.finding.error { border-color: #d62728; } .finding.warning { border-color: #ff7f0e; }
.finding.info { border-color: #1f77b4; }
.finding .rule { font-weight: bold; } .finding .fix { color: #225522; }
.finding .evidence { font-family: monospace; font-size: 12px; color: #555; }
table { border-collapse: collapse; font-size: 13px; }
td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; }
.muted { color: #777; } .intro { color: #444; font-size: 14px; max-width: 900px; }
"""


def _history_series(rec: Recorder, history) -> dict[str, tuple[list, list]]:
    """``{name: (steps, values)}`` from the Recorder's logged scalars and a user's history."""
    series = {name: ([s for s, _ in pairs], [v for _, v in pairs]) for name, pairs in rec.scalars.items()}
    for name, values in (history or {}).items():
        values = list(values)
        if values and isinstance(values[0], (tuple, list)):
            series[name] = ([s for s, _ in values], [float(v) for _, v in values])
        else:
            series[name] = (list(range(len(values))), [float(v) for v in values])
    return series


INTROS = {
    "findings": "What looks wrong, most severe first: where it starts, the numbers judged, and a change to make.",
    "curves": "The loss and accuracy logged at each step (on the training batch unless a history says otherwise).",
    "gradients": (
        "dL/dz is the error signal: the gradient of the loss with respect to a layer's output z (before its "
        "activation). Backpropagation carries it from the last layer to the first; in a healthy network its rms "
        "stays within a factor of about 100 across the layers. Log scales: each gridline is a factor."
    ),
    "activations": (
        "The distribution of each layer's pre-activation z and of its activation a = g(z) at a few steps (older "
        "steps first in the legend). ReLU outputs piled at 0, or Sigmoid/Tanh outputs piled at their bounds, "
        "pass no gradient."
    ),
    "dead-saturated": (
        "A dead ReLU unit outputs 0 for every sample of the batch; a saturated Sigmoid or Tanh output sits "
        "within 0.01 of its bounds. Neither passes a gradient back."
    ),
    "updates": (
        "How much each optimizer step changes a layer's weight W, relative to its size: ||delta W|| / ||W||. "
        "About 1e-3 is healthy; above 1e-1 the steps overshoot, below 1e-6 the layer barely learns."
    ),
    "layers": "The layers the recorder found (modules that own parameters), in forward order.",
}


def _evidence_value(key: str, value, names: dict[str, str]) -> str:
    """An evidence value for a reader: per-layer figures and layer names with the layers' shown names."""
    if isinstance(value, dict):
        return ", ".join(f"{names.get(k, k)} {v}" for k, v in value.items())
    return names.get(value, str(value)) if key == "steepest" else str(value)


def _finding_html(f: Finding, names: dict[str, str]) -> str:
    where = f.label or (fmt.short(f.layer) if f.layer is not None else "the whole model")
    evidence = "; ".join(f"{k}: {_evidence_value(k, v, names)}" for k, v in f.evidence.items())
    return (
        f'<div class="finding {escape(f.severity)}"><span class="rule">{escape(f.rule)}</span> '
        f"<span>[{escape(f.severity)}] at <b>{escape(where)}</b>, first seen at step {escape(str(f.step))}</span>"
        f'<p>{escape(f.explanation)}</p><p class="fix">Fix: {escape(f.suggestion)}</p>'
        f'<div class="evidence">evidence: {escape(evidence)}</div></div>'
    )


def _chosen_steps(steps: list[int], count: int) -> list[int]:
    """Up to ``count`` steps spread evenly from the first to the last, in order."""
    if len(steps) <= count:
        return list(steps)
    return sorted({steps[round(i * (len(steps) - 1) / (count - 1))] for i in range(count)})


def render(rec: Recorder, findings: list[Finding] | None = None, history=None, title: str = "glassnet report") -> str:
    """The report as an HTML string (see ``report``)."""
    if findings is None:
        findings = rec.diagnose()
    layers = sorted(rec.layers.values(), key=lambda info: info.order)
    steps = rec.recorded_steps
    names = {info.name: info.short for info in layers}
    parts = {key: [] for key, _ in SECTIONS}

    parts["findings"].append(
        "".join(_finding_html(f, names) for f in findings) or '<p class="muted">No finding: nothing looks wrong.</p>'
    )

    curves = _history_series(rec, history)
    loss_like = [(n, *v) for n, v in curves.items() if "acc" not in n.lower()]
    acc_like = [(n, *v) for n, v in curves.items() if "acc" in n.lower()]
    parts["curves"].append(
        svg.line_chart(loss_like, "loss", y_label="loss", empty="no loss logged (rec.log(loss=...))")
    )
    parts["curves"].append(
        svg.line_chart(
            acc_like,
            "accuracy",
            y_range=(0.0, 1.0),
            y_label="fraction correct",
            empty="no accuracy logged (rec.log(accuracy=...) or a history)",
        )
    )

    grad = [[_get(rec, step, info.name, lambda r: r.grad_z and r.grad_z.rms) for step in steps] for info in layers]
    labels = [info.label for info in layers]
    parts["gradients"].append(svg.heatmap(labels, steps, grad, "rms of dL/dz per layer (rows) and step (columns)"))
    picks = _chosen_steps(steps, 3)
    depth = [
        (f"step {s}", list(range(len(layers))), [grad[i][steps.index(s)] for i in range(len(layers))]) for s in picks
    ]
    parts["gradients"].append(
        svg.line_chart(
            depth,
            "rms of dL/dz across depth",
            x_label="layer, in forward order (the loss is on the right)",
            log_y=True,
            y_label="rms of dL/dz",
            categories=[info.short for info in layers],
            zero_label="0 (no gradient)",
            empty="no gradient recorded",
        )
    )
    weight_grad = [
        (info.label, *rec.series(info.name, lambda r: r.params.get("weight") and _norm(r.params["weight"].grad)))
        for info in layers
    ]
    parts["gradients"].append(
        svg.line_chart(
            weight_grad,
            "norm of dL/dW over time",
            log_y=True,
            y_label="||dL/dW||",
            zero_label="0 (no gradient)",
            empty="no weight gradient recorded",
        )
    )

    for info in layers:
        for key in ("z", "a"):
            hists, flat = [], []
            for step in _chosen_steps(steps, 6):
                record = rec.records[step].get(info.name)
                stats = getattr(record, key, None) if record else None
                if stats is not None and stats.hist_counts is not None:
                    hists.append((f"step {step}", stats.hist_edges.tolist(), stats.hist_counts.tolist()))
                    if stats.min == stats.max:
                        flat.append(stats.min)
            if not hists:
                continue
            if key == "z":
                name = f"pre-activation z of {info.label}"
            else:
                kind = ACTIVATION_NAME.get(info.activation_kind, info.activation_kind)
                name = f"activation a = {kind}(z) of {info.short}"
            note = ""
            if len(flat) == len(hists):
                note = "every value is " + " / ".join(sorted({fmt.number(v) for v in flat}))
            parts["activations"].append(svg.histogram_lines(hists, name, note=note))

    relu = [info for info in layers if info.activation_kind == "relu"]
    squashing = [info for info in layers if info.activation_kind in ("sigmoid", "tanh")]
    dead = [(info.label, *rec.series(info.name, lambda r: r.a and r.a.frac_dead_units)) for info in relu]
    saturated = [(info.label, *rec.series(info.name, lambda r: r.a and r.a.frac_saturated)) for info in squashing]
    parts["dead-saturated"].append(
        svg.line_chart(
            dead,
            "fraction of dead ReLU units",
            y_range=(0.0, 1.0),
            y_label="fraction of units",
            empty="no layer followed by a ReLU: no unit can die",
        )
    )
    parts["dead-saturated"].append(
        svg.line_chart(
            saturated,
            "fraction of saturated Sigmoid/Tanh outputs",
            y_range=(0.0, 1.0),
            y_label="fraction of outputs",
            empty="no layer followed by a Sigmoid or Tanh: nothing can saturate",
        )
    )

    ratios = [
        (info.label, *rec.series(info.name, lambda r: r.params.get("weight") and r.params["weight"].update_ratio))
        for info in layers
    ]
    parts["updates"].append(
        svg.line_chart(
            ratios,
            "||delta W|| / ||W|| per step (healthy: about 1e-3)",
            log_y=True,
            y_label="||delta W|| / ||W||",
            zero_label="0 (weights unchanged)",
            empty="no update recorded: the run computed gradients only (no optimizer step)",
        )
    )

    rows = []
    for info in layers:
        record = next((rec.records[s][info.name] for s in steps if info.name in rec.records[s]), None)
        params = []
        for pname in info.params:
            param = record.params.get(pname) if record else None
            shape = param.value.shape if param is not None and param.value is not None else None
            params.append(f"{pname} {tuple(shape)}" if shape is not None else pname)
        if info.activation:
            kind = ACTIVATION_NAME.get(info.activation_kind, info.activation_kind)
            activation = f"{fmt.short(info.activation)} ({kind})"
        else:
            activation = "none"
        rows.append(
            f"<tr><td>{escape(info.short)}</td><td>{escape(info.description or info.type)}</td>"
            f"<td>{escape(activation)}</td><td>{escape(', '.join(params))}</td></tr>"
        )
    parts["layers"].append(
        "<table><tr><th>layer</th><th>type and shape</th><th>activation after it</th><th>parameters (shape)</th></tr>"
        f"{''.join(rows)}</table>"
    )

    nav = "".join(f'<a href="#{key}">{escape(name)}</a>' for key, name in SECTIONS)
    counts = {s: sum(f.severity == s for f in findings) for s in ("error", "warning", "info")}
    recorded = "every step" if rec.every == 1 else f"one step in {rec.every}"
    summary = (
        f"{len(steps)} recorded steps ({recorded}) of {rec.current_step} training steps; {len(layers)} layers "
        "with parameters; findings: " + ", ".join(f"{n} {s}" for s, n in counts.items())
    )
    sections = "".join(
        f'<section id="{key}"><h2>{escape(name)}</h2><p class="intro">{escape(INTROS[key])}</p>'
        f'<div class="charts">{"".join(parts[key])}</div></section>'
        for key, name in SECTIONS
    )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{CSS}</style></head><body><h1>{escape(title)}</h1><p>{escape(summary)}</p><nav>{nav}</nav>"
        f"{sections}</body></html>\n"
    )


def report(
    rec: Recorder, path: str | os.PathLike, findings: list[Finding] | None = None, history=None, title: str = ""
) -> str:
    """Write one self-contained HTML report of a recorded run (works offline).

    Args:
        rec: the Recorder of the run.
        path: the HTML file to write.
        findings: the findings to show; None runs ``rec.diagnose()``.
        history: extra curves, ``{name: [value per step]}`` or ``{name: [(step, value), ...]}``
            (names containing "acc" go to the accuracy chart).
        title: the page's title.

    Returns:
        The path written.

    Example:
        ``report(rec, "report.html", history={"val_accuracy": [0.5, 0.7, 0.8]})``
    """
    text = render(rec, findings, history, title or "glassnet report")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return os.fspath(path)


def _get(rec: Recorder, step: int, layer: str, getter):
    record = rec.records[step].get(layer)
    return None if record is None else getter(record)


def _norm(stats) -> float | None:
    return None if stats is None else stats.norm
