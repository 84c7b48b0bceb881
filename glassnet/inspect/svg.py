"""Small inline-SVG charts for the HTML report (line charts, a heatmap, histogram lines); no dependency.

Every text that reaches the SVG (a title, a layer's name) is escaped here, so a model's names cannot
break the page.
"""

from __future__ import annotations

import math
from html import escape

from glassnet.inspect import fmt

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
WIDTH, HEIGHT = 580, 250
LEFT, RIGHT, TOP, BOTTOM = 78, 190, 36, 40
LEGEND_CHARS = 30


def _labels(values: list[float]) -> list[str]:
    """Tick labels with ``fmt.number``'s digits, more (up to 7) when fewer would make two ticks read the same."""
    for digits in range(3, 8):
        labels = [fmt.number(v, digits) for v in values]
        if len(set(labels)) == len(labels):
            break
    return labels


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


def _log_ticks(lo: float, hi: float) -> list[float]:
    """Ticks in log10 space: whole decades when the range spans more than one, else ``_ticks``."""
    if hi - lo < 1.5:
        return _ticks(lo, hi)
    stride = max(1, math.ceil((hi - lo) / 5))
    first = math.ceil(lo / stride) * stride
    return [float(t) for t in range(int(first), int(math.floor(hi)) + 1, stride)]


def _frame(title: str, body: list[str], width: int = WIDTH, height: int = HEIGHT) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}" font-family="sans-serif" font-size="11">'
        f'<text x="{LEFT}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>' + "".join(body) + "</svg>"
    )


def _legend(labels: list[str], body: list[str], height: int = HEIGHT) -> None:
    for i, label in enumerate(labels):
        ly = TOP + 12 + 14 * i
        if i >= 10 or ly >= height - 8:
            body.append(f'<text x="{WIDTH - RIGHT + 8}" y="{ly - 4}">... {len(labels) - i} more</text>')
            return
        text = str(label) if len(str(label)) <= LEGEND_CHARS else str(label)[: LEGEND_CHARS - 1] + "~"
        body.append(f'<rect x="{WIDTH - RIGHT + 8}" y="{ly - 8}" width="10" height="3" fill="{PALETTE[i % 10]}"/>')
        body.append(f'<text x="{WIDTH - RIGHT + 22}" y="{ly - 4}">{escape(text)}</text>')


def line_chart(
    series,
    title: str,
    x_label: str = "step",
    log_y: bool = False,
    y_range=None,
    y_label: str = "",
    categories: list[str] | None = None,
    zero_label: str | None = None,
    empty: str = "no data",
    note: str = "",
) -> str:
    """A line chart of ``series``: a list of ``(label, xs, ys)``; None and non-finite y are skipped.

    Args:
        series: ``(label, xs, ys)`` per line.
        title, x_label, y_label: the texts around the plot.
        log_y: a log10 y axis. Exact zeros, which it cannot place, are drawn on a line of their own at the
            bottom, marked with a cross and labelled ``zero_label`` (without one they are skipped).
        y_range: ``(low, high)`` of a linear y axis; None fits the data.
        categories: names of the x positions 0, 1, 2, ... (the layers of a depth chart) instead of numbers.
        empty: the text shown when there is nothing to draw: say why.
        note: one line under the title.

    Example:
        >>> line_chart([("loss", [0, 1, 2], [2.3, 1.5, 0.9])], "loss").startswith("<svg")
        True
    """
    zeros = log_y and zero_label is not None

    def ok(y):
        return y is not None and math.isfinite(y) and (y > 0 or not log_y or (zeros and y == 0))

    clean = [(label, [(x, y) for x, y in zip(xs, ys) if ok(y)]) for label, xs, ys in series]
    clean = [(label, pts) for label, pts in clean if pts]
    body = []
    if note:
        body.append(f'<text x="{LEFT}" y="{TOP - 6}" fill="#555">{escape(note)}</text>')
    if not clean:
        body.append(f'<text x="{LEFT}" y="{HEIGHT // 2}" fill="#555">{escape(empty)}</text>')
        return _frame(title, body)
    positive = [math.log10(y) if log_y else y for _, pts in clean for _, y in pts if not (log_y and y == 0)]
    has_zero = zeros and any(y == 0 for _, pts in clean for _, y in pts)
    if y_range:
        y0, y1 = y_range
    elif positive:
        y0, y1 = min(positive), max(positive)
    else:
        y0, y1 = -1.0, 0.0  # only zeros: a band for the zero line
    if y1 == y0:
        y0, y1 = (y0 - 0.5, y1 + 0.5) if log_y else (y0 - 1, y1 + 1)
    if log_y and not y_range and y1 - y0 < 0.5:  # less than a factor of 3: widen, or ticks need 7 digits
        middle = (y0 + y1) / 2
        y0, y1 = middle - 0.25, middle + 0.25
    floor = None
    if has_zero:
        floor = y0 - 0.15 * (y1 - y0)
    lowest = floor - 0.04 * (y1 - floor) if floor is not None else y0
    xs = [x for _, pts in clean for x, _ in pts]
    x0, x1 = (min(xs), max(xs)) if categories is None else (-0.3, len(categories) - 0.7)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    pw, ph = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x):
        return LEFT + (x - x0) / (x1 - x0) * pw

    def py(y):
        return TOP + (1 - (y - lowest) / (y1 - lowest)) * ph

    def place(y):
        if not log_y:
            return y
        return floor if y == 0 else math.log10(y)

    body.append(f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>')
    ticks = (_log_ticks(y0, y1) if log_y else _ticks(y0, y1)) if positive or y_range else []
    for t, label in zip(ticks, _labels([10**t if log_y else t for t in ticks])):
        body.append(f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{py(t):.1f}" y2="{py(t):.1f}" stroke="#eee"/>')
        body.append(f'<text x="{LEFT - 4}" y="{py(t) + 4:.1f}" text-anchor="end">{label}</text>')
    if floor is not None:
        y = py(floor)
        body.append(
            f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#999" stroke-dasharray="3,3"/>'
        )
        body.append(f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">0</text>')
    if categories is None:
        for t, label in zip(_ticks(x0, x1), _labels(_ticks(x0, x1))):
            body.append(f'<text x="{px(t):.1f}" y="{TOP + ph + 14}" text-anchor="middle">{label}</text>')
    else:
        shown = max(1, math.ceil(len(categories) * 60 / pw))  # one label per 60 pixels
        for i, label in enumerate(categories):
            if i % shown == 0:
                body.append(
                    f'<text x="{px(i):.1f}" y="{TOP + ph + 14}" text-anchor="middle">{escape(str(label))}</text>'
                )
    body.append(f'<text x="{LEFT + pw / 2}" y="{HEIGHT - 6}" text-anchor="middle">{escape(x_label)}</text>')
    if y_label:
        body.append(
            f'<text transform="translate(14,{TOP + ph / 2:.1f}) rotate(-90)" text-anchor="middle">'
            f"{escape(y_label)}</text>"
        )
    for i, (_, pts) in enumerate(clean):
        color = PALETTE[i % len(PALETTE)]
        path = " ".join(f"{px(x):.1f},{py(place(y)):.1f}" for x, y in pts)
        body.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.6"/>')
        for x, y in pts:
            cx, cy = px(x), py(place(y))
            if log_y and y == 0:
                body.append(
                    f'<path d="M{cx - 4:.1f},{cy - 4:.1f}L{cx + 4:.1f},{cy + 4:.1f}M{cx - 4:.1f},{cy + 4:.1f}'
                    f'L{cx + 4:.1f},{cy - 4:.1f}" stroke="{color}" stroke-width="1.6"/>'
                )
            elif len(pts) == 1 or categories is not None:
                body.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="2.5" fill="{color}"/>')
    _legend([label for label, _ in clean], body)
    if floor is not None:
        y = TOP + 12 + 14 * min(len(clean), 10) + 6
        body.append(
            f'<path d="M{WIDTH - RIGHT + 9},{y - 9}L{WIDTH - RIGHT + 17},{y - 1}M{WIDTH - RIGHT + 9},{y - 1}'
            f'L{WIDTH - RIGHT + 17},{y - 9}" stroke="#555" stroke-width="1.6"/>'
        )
        body.append(f'<text x="{WIDTH - RIGHT + 22}" y="{y - 1}">= {escape(zero_label)}</text>')
    return _frame(title, body)


def heatmap(row_labels, col_labels, values, title: str, log: bool = True, x_label: str = "step") -> str:
    """A heatmap (rows: layers, columns: steps) of ``values[row][col]`` (None for missing), log10-coloured.

    Exact zeros get a colour of their own (dark grey), apart from missing values (light grey).

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
    height = max(TOP + BOTTOM + 18 * max(len(row_labels), 1), TOP + 90)
    body = []
    if not finite and not any(v == 0 for row in values for v in row):
        body.append(f'<text x="{LEFT}" y="{TOP + 14}" fill="#555">no data</text>')
        return _frame(title, body, height=height)
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 0.0)
    # Colours span at least a factor of 10 (log) so that values equal to 3 digits get the same colour.
    span = max(hi - lo, 1.0) if log else ((hi - lo) or 1.0)
    base = (lo + hi - span) / 2
    left = min(max(LEFT, 8 + 6 * max(len(str(label)) for label in row_labels)), 230)
    pw = WIDTH - left - RIGHT
    cw = pw / max(len(col_labels), 1)

    def colour(t):  # blue (small) to red (large)
        return f"rgb({int(40 + 215 * t)},{int(90 + 60 * (1 - abs(2 * t - 1)))},{int(255 - 215 * t)})"

    for r, label in enumerate(row_labels):
        y = TOP + 18 * r
        body.append(f'<text x="{left - 4}" y="{y + 13}" text-anchor="end">{escape(str(label))}</text>')
        for c, v in enumerate(grid[r]):
            if v is not None:
                color = colour((v - base) / span)
            else:
                color = "#444" if values[r][c] == 0 else "#e8e8e8"
            body.append(f'<rect x="{left + c * cw:.1f}" y="{y}" width="{cw + 0.5:.1f}" height="17" fill="{color}"/>')
    bottom = TOP + 18 * len(row_labels)
    for t in _ticks(0, len(col_labels) - 1):
        i = int(t)
        body.append(
            f'<text x="{left + (i + 0.5) * cw:.1f}" y="{bottom + 14}" text-anchor="middle">'
            f"{escape(str(col_labels[i]))}</text>"
        )
    body.append(f'<text x="{left + pw / 2:.1f}" y="{bottom + 30}" text-anchor="middle">{escape(x_label)}</text>')
    legend_x = WIDTH - RIGHT + 12
    high, low = _labels([10**hi, 10**lo] if log else [hi, lo]) if finite and hi != lo else (None, None)
    entries = []
    if finite:
        entries += [(colour(1.0), f"largest: {high}"), (colour(0.0), f"smallest: {low}")] if high else []
        entries += [] if high else [(colour(0.5), f"all: {fmt.number(10**hi if log else hi)}")]
    entries += [("#444", "0 (no gradient)"), ("#e8e8e8", "not recorded")]
    for i, (color, text) in enumerate(entries):
        y = TOP + 16 * i
        body.append(f'<rect x="{legend_x}" y="{y}" width="10" height="10" fill="{color}" stroke="#999"/>')
        body.append(f'<text x="{legend_x + 14}" y="{y + 9}">{escape(text)}</text>')
    return _frame(title, body, height=height)


def histogram_lines(histograms, title: str, note: str = "") -> str:
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
    top = max((max(s[2]) for s in series), default=1.0)
    return line_chart(series, title, x_label="value", y_range=(0.0, top), y_label="fraction of values", note=note)
