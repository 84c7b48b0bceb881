"""report: one self-contained HTML file of a recorded run (curves, gradients, activations, updates, findings).

The page needs nothing from outside: inline CSS, inline SVG charts (``glassnet.inspect.svg``), no
script, no font, no link. Every name that comes from the model or the user is escaped.
"""

from __future__ import annotations

import os
from html import escape

from glassnet.inspect import svg
from glassnet.inspect.diagnose import Finding
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
.muted { color: #777; }
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


def _finding_html(f: Finding) -> str:
    layer = escape(f.layer) if f.layer is not None else "model"
    evidence = escape(", ".join(f"{k}: {v}" for k, v in f.evidence.items()))
    return (
        f'<div class="finding {escape(f.severity)}"><span class="rule">{escape(f.rule)}</span> '
        f"<span>[{escape(f.severity)}] at <b>{layer}</b>, step {escape(str(f.step))}</span>"
        f'<p>{escape(f.explanation)}</p><p class="fix">Fix: {escape(f.suggestion)}</p>'
        f'<div class="evidence">{evidence}</div></div>'
    )


def render(rec: Recorder, findings: list[Finding] | None = None, history=None, title: str = "glassnet report") -> str:
    """The report as an HTML string (see ``report``)."""
    if findings is None:
        findings = rec.diagnose()
    layers = sorted(rec.layers.values(), key=lambda info: info.order)
    steps = rec.recorded_steps
    parts = {key: [] for key, _ in SECTIONS}

    parts["findings"].append(
        "".join(_finding_html(f) for f in findings) or '<p class="muted">No finding: nothing looks wrong.</p>'
    )

    curves = _history_series(rec, history)
    loss_like = [(n, *v) for n, v in curves.items() if "acc" not in n.lower()]
    acc_like = [(n, *v) for n, v in curves.items() if "acc" in n.lower()]
    parts["curves"].append(svg.line_chart(loss_like, "loss"))
    parts["curves"].append(svg.line_chart(acc_like, "accuracy", y_range=(0.0, 1.0)))

    grad = [[_get(rec, step, info.name, lambda r: r.grad_z and r.grad_z.rms) for step in steps] for info in layers]
    labels = [info.label for info in layers]
    parts["gradients"].append(svg.heatmap(labels, steps, grad, "rms of dL/dz per layer (rows) and step (columns)"))
    picks = sorted({steps[0], steps[len(steps) // 2], steps[-1]}) if steps else []
    depth = [
        (f"step {s}", list(range(len(layers))), [grad[i][steps.index(s)] for i in range(len(layers))]) for s in picks
    ]
    parts["gradients"].append(svg.line_chart(depth, "rms of dL/dz across depth", x_label="layer index", log_y=True))
    weight_grad = [
        (info.label, *rec.series(info.name, lambda r: r.params.get("weight") and _norm(r.params["weight"].grad)))
        for info in layers
    ]
    parts["gradients"].append(svg.line_chart(weight_grad, "norm of dL/dW over time", log_y=True))

    for info in layers:
        for key, what in (("z", "z"), ("a", "a")):
            hists = []
            chosen = steps if len(steps) <= 6 else [steps[round(i * (len(steps) - 1) / 5)] for i in range(6)]
            for step in chosen:
                record = rec.records[step].get(info.name)
                stats = getattr(record, key, None) if record else None
                if stats is not None and stats.hist_counts is not None:
                    hists.append((f"step {step}", stats.hist_edges.tolist(), stats.hist_counts.tolist()))
            if hists:
                name = info.label if key == "z" else f"{info.activation} ({info.activation_kind})"
                parts["activations"].append(svg.histogram_lines(hists, f"{what} of {name}"))

    dead = [(info.label, *rec.series(info.name, lambda r: r.a and r.a.frac_dead_units)) for info in layers]
    saturated = [(info.label, *rec.series(info.name, lambda r: r.a and r.a.frac_saturated)) for info in layers]
    parts["dead-saturated"].append(svg.line_chart(dead, "fraction of dead ReLU units", y_range=(0.0, 1.0)))
    parts["dead-saturated"].append(svg.line_chart(saturated, "fraction of saturated outputs", y_range=(0.0, 1.0)))

    ratios = [
        (info.label, *rec.series(info.name, lambda r: r.params.get("weight") and r.params["weight"].update_ratio))
        for info in layers
    ]
    parts["updates"].append(svg.line_chart(ratios, "||delta W|| / ||W|| (healthy: about 1e-3)", log_y=True))

    rows = "".join(
        f"<tr><td>{escape(info.label)}</td><td>{escape(info.type)}</td><td>{escape(info.activation or '')}</td>"
        f"<td>{escape(info.activation_kind or '')}</td><td>{escape(', '.join(info.params))}</td></tr>"
        for info in layers
    )
    parts["layers"].append(
        "<table><tr><th>layer</th><th>type</th><th>activation module</th><th>kind</th><th>parameters</th></tr>"
        f"{rows}</table>"
    )

    nav = "".join(f'<a href="#{key}">{escape(name)}</a>' for key, name in SECTIONS)
    counts = {s: sum(f.severity == s for f in findings) for s in ("error", "warning", "info")}
    summary = (
        f"{len(steps)} recorded steps (of {rec.current_step} steps), {len(layers)} layers; findings: "
        + ", ".join(f"{n} {s}" for s, n in counts.items())
    )
    sections = "".join(
        f'<section id="{key}"><h2>{escape(name)}</h2><div class="charts">{"".join(parts[key])}</div></section>'
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
