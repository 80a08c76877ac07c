"""Horizontal bar charts as plain geometry, which the report's template draws as inline
SVG (no script, no external asset: the report opens offline, in an isolated network).

A chart has rows (a label each) of one or more series: stacked end to end in one bar
(``stacked``: parts of a whole, e.g. published and rejected) or one thin bar a series
under each other (e.g. p50 and p95). Values scale to the largest bar, or to ``scale``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

WIDTH = 720
LABEL_W = 230  # the row labels' column
VALUE_W = 90  # room for the value after the longest bar
BAR_AREA = WIDTH - LABEL_W - VALUE_W
ROW_GAP = 8
BAR_H = 16
TOP = 28  # the legend's line
PALETTE = ("#2b6cb0", "#c05621", "#718096", "#2f855a", "#b83280", "#d69e2e")


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    color: str
    title: str  # shown on hover: "<row> · <series>: <value>"


@dataclass(frozen=True, slots=True)
class Text:
    x: float
    y: float
    text: str
    anchor: str = "start"


@dataclass
class Chart:
    title: str
    width: int = WIDTH
    height: float = 0
    bars: list[Bar] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    legend: list[tuple[str, str, float]] = field(default_factory=list)  # (series, color, x)
    empty: bool = False


def bar_chart(
    title: str,
    series: list[str],
    rows: list[tuple[str, list[float | None]]],
    *,
    stacked: bool,
    unit: str = "",
    scale: float | None = None,
    decimals: int = 0,
) -> Chart:
    """A chart of ``rows`` (label, one value a series; None: nothing to show)."""
    chart = Chart(title)
    colors = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(series)}
    x = 0.0
    for name in series:
        chart.legend.append((name, colors[name], x))
        x += 28 + 7.5 * len(name)
    if not rows:
        chart.empty = True
        chart.height = TOP + 30
        chart.texts.append(Text(0, TOP + 18, "nothing in this period"))
        return chart
    totals = [
        sum(v or 0 for v in values) if stacked else max((v or 0 for v in values), default=0)
        for _, values in rows
    ]
    top = scale or max(totals) or 1.0
    row_h = BAR_H if stacked else BAR_H * len(series) * 0.75
    y = float(TOP)
    for (label, values), total in zip(rows, totals, strict=True):
        chart.texts.append(Text(LABEL_W - 8, y + row_h / 2 + 4, _clip(label), "end"))
        start = float(LABEL_W)
        for i, (name, value) in enumerate(zip(series, values, strict=True)):
            if value is None:
                continue
            width = max(0.0, value / top * BAR_AREA)
            text = f"{label} · {name}: {_number(value, decimals)}{unit}"
            if stacked:
                chart.bars.append(Bar(start, y, width, row_h, colors[name], text))
                start += width
            else:
                height = row_h / len(series)
                bar = Bar(LABEL_W, y + i * height, width, height - 1, colors[name], text)
                chart.bars.append(bar)
        if stacked and len(series) == 1:
            shown = _number(total, decimals) + unit
        else:  # each series' value, in the legend's order
            shown = " / ".join("n/a" if v is None else _number(v, decimals) for v in values) + unit
        end = LABEL_W + (total / top * BAR_AREA)
        chart.texts.append(Text(min(end, LABEL_W + BAR_AREA) + 6, y + row_h / 2 + 4, shown))
        y += row_h + ROW_GAP
    chart.height = y + 4
    return chart


def _number(value: float, decimals: int) -> str:
    return f"{value:,.{decimals}f}"


def _clip(label: str, limit: int = 34) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


COLUMN_H = 160  # the columns' area
AXIS_W = 56  # the value axis' labels
COLUMN_TOP = TOP + 14  # the top value's label


def column_chart(
    title: str,
    series: list[str],
    columns: list[tuple[str, list[int]]],
    *,
    label_every: int = 1,
) -> Chart:
    """A timeline: one column a label (a day), its series stacked bottom up; every
    ``label_every``-th label written under its column."""
    chart = Chart(title)
    colors = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(series)}
    x = 0.0
    for name in series:
        chart.legend.append((name, colors[name], x))
        x += 28 + 7.5 * len(name)
    top = max((sum(values) for _, values in columns), default=0)
    if not columns or top == 0:
        chart.empty = True
        chart.height = TOP + 30
        chart.texts.append(Text(0, TOP + 18, "nothing in this period"))
        return chart
    base = COLUMN_TOP + COLUMN_H
    chart.texts.append(Text(AXIS_W - 6, COLUMN_TOP + 4, f"{top:,}", "end"))
    chart.texts.append(Text(AXIS_W - 6, base, "0", "end"))
    step = (WIDTH - AXIS_W) / len(columns)
    width = max(1.0, step * 0.75)
    for n, (label, values) in enumerate(columns):
        left = AXIS_W + n * step
        height_so_far = 0.0
        for name, value in zip(series, values, strict=True):
            if not value:
                continue
            height = value / top * COLUMN_H
            y = base - height_so_far - height
            chart.bars.append(
                Bar(left, y, width, height, colors[name], f"{label} · {name}: {value:,}")
            )
            height_so_far += height
        if n % label_every == 0:
            chart.texts.append(Text(left + width / 2, base + 14, label, "middle"))
    chart.height = base + 22
    return chart
