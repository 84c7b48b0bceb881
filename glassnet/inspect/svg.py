"""Small inline-SVG charts for the HTML report (line charts, a heatmap, histogram lines); no dependency.

Every text that reaches the SVG (a title, a layer's name) is escaped here, so a model's names cannot
break the page.
"""

from __future__ import annotations

import math
from html import escape

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
WIDTH, HEIGHT = 560, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 150, 28, 36


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e4 or abs(value) < 1e-2:
        return f"{value:.0e}"
    return f"{value:.3g}"


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    step = 10 ** math.floor(math.log10((hi - lo) / count))
    for mult in (1, 2, 5, 10):
        if (hi - lo) / (step * mult) <= count:
            step *= mult
            break
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _frame(title: str, body: list[str], width: int = WIDTH, height: int = HEIGHT) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}" font-family="sans-serif" font-size="11">'
        f'<text x="{LEFT}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>' + "".join(body) + "</svg>"
    )


def line_chart(series, title: str, x_label: str = "step", log_y: bool = False, y_range=None) -> str:
    """A line chart of ``series``: a list of ``(label, xs, ys)``; non-finite (or, in log, non-positive) y skipped.

    Example:
        >>> line_chart([("loss", [0, 1, 2], [2.3, 1.5, 0.9])], "loss").startswith("<svg")
        True
    """

    def ok(y):
        return y is not None and math.isfinite(y) and (y > 0 or not log_y)

    clean = [(label, [(x, math.log10(y) if log_y else y) for x, y in zip(xs, ys) if ok(y)]) for label, xs, ys in series]
    clean = [(label, pts) for label, pts in clean if pts]
    body = []
    if not clean:
        body.append(f'<text x="{LEFT}" y="{HEIGHT // 2}">no data</text>')
        return _frame(title, body)
    xs = [x for _, pts in clean for x, _ in pts]
    ys = [y for _, pts in clean for _, y in pts]
    x0, x1 = min(xs), max(xs)
    y0, y1 = y_range if y_range else (min(ys), max(ys))
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        y0, y1 = y0 - 1, y1 + 1
    pw, ph = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x):
        return LEFT + (x - x0) / (x1 - x0) * pw

    def py(y):
        return TOP + (1 - (y - y0) / (y1 - y0)) * ph

    body.append(f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>')
    for t in _ticks(y0, y1):
        label = _fmt(10**t) if log_y else _fmt(t)
        body.append(f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{py(t):.1f}" y2="{py(t):.1f}" stroke="#eee"/>')
        body.append(f'<text x="{LEFT - 4}" y="{py(t) + 4:.1f}" text-anchor="end">{label}</text>')
    for t in _ticks(x0, x1):
        body.append(f'<text x="{px(t):.1f}" y="{TOP + ph + 14}" text-anchor="middle">{_fmt(t)}</text>')
    body.append(f'<text x="{LEFT + pw / 2}" y="{HEIGHT - 4}" text-anchor="middle">{escape(x_label)}</text>')
    for i, (label, pts) in enumerate(clean):
        color = PALETTE[i % len(PALETTE)]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        body.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.6"/>')
        if len(pts) == 1:
            body.append(f'<circle cx="{px(pts[0][0]):.1f}" cy="{py(pts[0][1]):.1f}" r="2.5" fill="{color}"/>')
        ly = TOP + 12 + 14 * i
        if ly < HEIGHT - 8:
            body.append(f'<rect x="{WIDTH - RIGHT + 8}" y="{ly - 8}" width="10" height="3" fill="{color}"/>')
            body.append(f'<text x="{WIDTH - RIGHT + 22}" y="{ly - 4}">{escape(str(label))[:22]}</text>')
    return _frame(title, body)


def heatmap(row_labels, col_labels, values, title: str, log: bool = True) -> str:
    """A heatmap (rows: layers, columns: steps) of ``values[row][col]`` (None for missing), log10-coloured.

    Example:
        >>> heatmap(["fc1"], [0, 1], [[1e-3, 1e-2]], "grad").count("<rect") >= 2
        True
    """

    def transform(v):
        if v is None or not math.isfinite(v) or (log and v <= 0):
            return None
        return math.log10(v) if log else v

    grid = [[transform(v) for v in row] for row in values]
    finite = [v for row in grid for v in row if v is not None]
    height = TOP + BOTTOM + 18 * max(len(row_labels), 1)
    body = []
    if not finite:
        body.append(f'<text x="{LEFT}" y="{TOP + 14}">no data</text>')
        return _frame(title, body, height=height)
    lo, hi = min(finite), max(finite)
    span = (hi - lo) or 1.0
    left = LEFT + 40
    pw = WIDTH - left - RIGHT
    cw = pw / max(len(col_labels), 1)
    for r, label in enumerate(row_labels):
        y = TOP + 18 * r
        body.append(f'<text x="{left - 4}" y="{y + 13}" text-anchor="end">{escape(str(label))[:16]}</text>')
        for c, v in enumerate(grid[r]):
            if v is None:
                color = "#ddd"
            else:
                t = (v - lo) / span  # blue (small) to red (large)
                color = f"rgb({int(40 + 215 * t)},{int(90 + 60 * (1 - abs(2 * t - 1)))},{int(255 - 215 * t)})"
            body.append(f'<rect x="{left + c * cw:.1f}" y="{y}" width="{cw + 0.5:.1f}" height="17" fill="{color}"/>')
    for t in _ticks(0, len(col_labels) - 1):
        i = int(t)
        body.append(
            f'<text x="{left + (i + 0.5) * cw:.1f}" y="{TOP + 18 * len(row_labels) + 14}" text-anchor="middle">'
            f"{escape(str(col_labels[i]))}</text>"
        )
    legend_x = WIDTH - RIGHT + 12
    fmt = (lambda v: _fmt(10**v)) if log else _fmt
    body.append(f'<text x="{legend_x}" y="{TOP + 10}">red: {fmt(hi)}</text>')
    body.append(f'<text x="{legend_x}" y="{TOP + 26}">blue: {fmt(lo)}</text>')
    body.append(f'<text x="{legend_x}" y="{TOP + 42}">grey: 0 or none</text>')
    return _frame(title, body, height=height)


def histogram_lines(histograms, title: str) -> str:
    """Histograms as lines, one per step: ``histograms`` is a list of ``(label, edges, counts)``, oldest first.

    Example:
        >>> histogram_lines([("step 0", [0, 1, 2], [3, 1])], "a").startswith("<svg")
        True
    """
    series = []
    for label, edges, counts in histograms:
        total = max(float(sum(counts)), 1.0)
        centres = [(edges[i] + edges[i + 1]) / 2 for i in range(len(counts))]
        series.append((label, centres, [c / total for c in counts]))
    return line_chart(series, title, x_label="value", y_range=(0.0, max((max(s[2]) for s in series), default=1.0)))
