"""Charts as inline SVG, drawn in Python: the report needs no script, no CDN,
no font download, and its text stays real text (CJK titles render with the
system's fonts).

Two kinds: ``line_chart`` (numeric or categorical x, optional log y) and
``bar_chart`` (grouped bars per category). Missing values (None) are skipped,
never drawn as zero; a chart with nothing to draw says so in words.
"""
from __future__ import annotations

import math
from html import escape

WIDTH, HEIGHT = 720, 300
MARGIN = {"left": 70, "right": 20, "top": 48, "bottom": 48}
COLORS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#c026d3")


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks, value = [], start
    while value <= high + step * 0.5:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _log_ticks(low: float, high: float) -> list[float]:
    ticks = []
    for exponent in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
        for mantissa in (1, 2, 5):
            value = mantissa * 10 ** exponent
            if low <= value <= high:
                ticks.append(value)
    return ticks or [low, high]


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value / 1000:g}k"
    if abs(value) >= 1:
        return f"{value:g}"
    return f"{value:.3g}"


def _frame(title: str, chart_id: str, body: list[str], legend: list[tuple[str, str]]) -> str:
    parts = [f'<svg class="chart" id="{escape(chart_id)}" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'width="100%" preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(title)}</title>",
             f'<text x="{MARGIN["left"]}" y="18" class="chart-title">{escape(title)}</text>', *body]
    x = MARGIN["left"]  # the legend: one row under the title
    for label, color in legend:
        parts.append(f'<g class="legend-item"><rect x="{x}" y="27" width="10" height="10" fill="{color}"/>'
                     f'<text x="{x + 14}" y="36" class="legend">{escape(label)}</text></g>')
        x += 14 + 6.5 * len(label) + 16
    parts.append("</svg>")
    return "\n".join(parts)


def empty_chart(title: str, chart_id: str, message: str) -> str:
    body = [f'<rect x="{MARGIN["left"]}" y="{MARGIN["top"]}" width="{WIDTH - MARGIN["left"] - MARGIN["right"]}" '
            f'height="{HEIGHT - MARGIN["top"] - MARGIN["bottom"]}" class="plot-area"/>',
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" class="no-data">{escape(message)}</text>']
    return _frame(title, chart_id, body, [])


def _plot_size() -> tuple[float, float]:
    return WIDTH - MARGIN["left"] - MARGIN["right"], HEIGHT - MARGIN["top"] - MARGIN["bottom"]


def _y_scale(values: list[float], log_y: bool, low: float | None = 0.0):
    """The y axis covering ``values``: (ticks, value -> y). Log: whole decades;
    linear: nice ticks from ``low`` (None: from the smallest value)."""
    _, plot_h = _plot_size()
    bottom = MARGIN["top"] + plot_h
    if log_y:
        y_low = 10 ** math.floor(math.log10(min(values)))
        y_high = 10 ** math.ceil(math.log10(max(values)))
        if y_high <= y_low:
            y_high = y_low * 10
        span = math.log10(y_high) - math.log10(y_low)
        return _log_ticks(y_low, y_high), lambda y: bottom - (math.log10(y) - math.log10(y_low)) / span * plot_h
    ticks = _nice_ticks(min(values) if low is None else low, max(values))
    y_low, y_high = ticks[0], ticks[-1]
    return ticks, lambda y: bottom - (y - y_low) / ((y_high - y_low) or 1) * plot_h


def _x_scale(series, points, categorical_x: bool):
    """The x axis: (value -> x, the ticks to label, how a tick reads)."""
    plot_w, _ = _plot_size()
    if categorical_x:
        categories: list = []
        for _, data in series:
            for x, _y in data:
                if x not in categories:
                    categories.append(x)
        step = plot_w / max(1, len(categories))
        return (lambda x: MARGIN["left"] + step * (categories.index(x) + 0.5)), categories, str
    xs = [float(x) for x, _ in points]
    x_low, x_high = min(xs), max(xs)
    if x_high == x_low:
        x_low, x_high = x_low - 1, x_high + 1
    ticks = [tick for tick in _nice_ticks(x_low, x_high, 6) if x_low <= tick <= x_high]
    return (lambda x: MARGIN["left"] + (float(x) - x_low) / (x_high - x_low) * plot_w), ticks, _fmt


def _plot_area(ticks: list[float], sy) -> list[str]:
    """The plot's frame and its horizontal grid with the y tick labels."""
    plot_w, plot_h = _plot_size()
    body = [f'<rect x="{MARGIN["left"]}" y="{MARGIN["top"]}" width="{plot_w}" height="{plot_h}" class="plot-area"/>']
    for tick in ticks:
        y = sy(tick)
        body.append(f'<line x1="{MARGIN["left"]}" x2="{MARGIN["left"] + plot_w}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                    f'<text x="{MARGIN["left"] - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{_fmt(tick)}</text>')
    return body


def _y_label(y_label: str, log_y: bool) -> str:
    _, plot_h = _plot_size()
    return (f'<text transform="translate(14 {MARGIN["top"] + plot_h / 2}) rotate(-90)" text-anchor="middle" '
            f'class="axis-label">{escape(y_label)}{" (log)" if log_y else ""}</text>')


def _lines(series, sx, sy, log_y: bool) -> tuple[list[str], list[tuple[str, str]]]:
    """Each series as a path with a dot (and its value as a tooltip) per point; and the legend."""
    body, legend = [], []
    for index, (name, data) in enumerate(series):
        color = COLORS[index % len(COLORS)]
        legend.append((name, color))
        valid = [(x, y) for x, y in data if y is not None and (not log_y or y > 0)]
        if not valid:
            continue
        path = " ".join(f"{'M' if i == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for i, (x, y) in enumerate(valid))
        body.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="2" class="series"/>')
        for x, y in valid:
            body.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{color}">'
                        f'<title>{escape(name)}: {escape(str(x))} → {_fmt(y)}</title></circle>')
    return body, legend


def line_chart(title: str, chart_id: str, series: list[tuple[str, list[tuple[float | str, float | None]]]],
               x_label: str = "", y_label: str = "", log_y: bool = False, categorical_x: bool = False,
               empty_message: str = "no data measured", y_min_zero: bool = True,
               reference: tuple[str, float] | None = None) -> str:
    """series: [(name, [(x, y|None), ...]), ...]. ``reference``: a labelled horizontal line (a target)."""
    points = [(x, y) for _, data in series for x, y in data if y is not None and (not log_y or y > 0)]
    if not points:
        return empty_chart(title, chart_id, empty_message)
    plot_w, plot_h = _plot_size()
    sx, x_ticks, x_text = _x_scale(series, points, categorical_x)
    show_reference = reference is not None and (not log_y or reference[1] > 0)
    ys = [y for _, y in points] + ([reference[1]] if show_reference else [])
    ticks, sy = _y_scale(ys, log_y, 0.0 if y_min_zero else None)
    body = _plot_area(ticks, sy)
    for tick in x_ticks:
        body.append(f'<text x="{sx(tick):.1f}" y="{MARGIN["top"] + plot_h + 16}" text-anchor="middle" class="tick">'
                    f'{escape(x_text(tick))}</text>')
    body.append(f'<text x="{MARGIN["left"] + plot_w / 2}" y="{HEIGHT - 8}" text-anchor="middle" class="axis-label">'
                f'{escape(x_label)}</text>')
    body.append(_y_label(y_label, log_y))
    if show_reference:
        y = sy(reference[1])
        body.append(f'<line x1="{MARGIN["left"]}" x2="{MARGIN["left"] + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
                    f'class="reference"/><text x="{MARGIN["left"] + plot_w - 4}" y="{y - 4:.1f}" text-anchor="end" '
                    f'class="reference-label">{escape(reference[0])}</text>')
    lines, legend = _lines(series, sx, sy, log_y)
    return _frame(title, chart_id, body + lines, legend)


def bar_chart(title: str, chart_id: str, categories: list[str], series: list[tuple[str, list[float | None]]],
              y_label: str = "", log_y: bool = False, empty_message: str = "no data measured") -> str:
    """Grouped bars: one group per category, one bar per series. Labels are shortened, full text in a tooltip."""
    values = [v for _, data in series for v in data if v is not None and (not log_y or v > 0)]
    if not values or not categories:
        return empty_chart(title, chart_id, empty_message)
    plot_w, plot_h = _plot_size()
    ticks, sy = _y_scale(values, log_y)
    base = MARGIN["top"] + plot_h if log_y else sy(0.0)
    body = _plot_area(ticks, sy)
    group_w = plot_w / len(categories)
    bar_w = max(2.0, group_w * 0.8 / max(1, len(series)))
    legend = []
    for s_index, (name, data) in enumerate(series):
        color = COLORS[s_index % len(COLORS)]
        legend.append((name, color))
        for c_index, value in enumerate(data):
            if value is None or (log_y and value <= 0):
                continue
            x = MARGIN["left"] + group_w * c_index + group_w * 0.1 + bar_w * s_index
            y = sy(value)
            body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{max(0.5, base - y):.1f}" '
                        f'fill="{color}" class="bar"><title>{escape(categories[c_index])} · {escape(name)}: '
                        f'{_fmt(value)}</title></rect>')
    for c_index, category in enumerate(categories):
        short = category if len(category) <= 14 else category[:13] + "…"
        x = MARGIN["left"] + group_w * (c_index + 0.5)
        body.append(f'<text x="{x:.1f}" y="{MARGIN["top"] + plot_h + 16}" text-anchor="middle" class="tick">'
                    f'<title>{escape(category)}</title>{escape(short)}</text>')
    body.append(_y_label(y_label, log_y))
    return _frame(title, chart_id, body, legend)
