"""Charts drawn on the server as inline SVG (the dashboard runs no JavaScript and its
style policy allows no inline styles): the geometry, and the SVG drawn with presentation
attributes only. Written here rather than in a template: a form I page holds a bar per
student of the school, and a template's escaping of every coordinate cost most of the
page's time; every text (labels, the caption) is escaped here instead."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from bookcorner.i18n import _

#: the drawing's own units (the SVG scales to the page's width)
HEIGHT = 220
TOP, BOTTOM, LEFT, RIGHT = 16, 70, 40, 64  # the target is named in the right margin
MIN_BAR_SPACE, MAX_BAR_SPACE = 14, 60


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float
    x: float
    y: float
    width: float
    height: float
    #: the label's anchor (rotated text under the bar)
    label_x: float
    label_y: float
    below: bool


@dataclass(frozen=True, slots=True)
class Tick:
    value: float
    y: float


@dataclass(frozen=True, slots=True)
class BarChart:
    width: float
    height: float
    left: float
    right: float
    base_y: float
    bars: tuple[Bar, ...]
    ticks: tuple[Tick, ...]
    target: float | None
    target_y: float | None


def bar_chart(values: Sequence[tuple[str, float]], target: float | None = None) -> BarChart:
    """Bars for ``(label, value)`` pairs, with a line at ``target`` (bars under it marked)."""
    count = max(len(values), 1)
    space = min(MAX_BAR_SPACE, max(MIN_BAR_SPACE, 720 / count))
    width = LEFT + RIGHT + space * count
    plot = HEIGHT - TOP - BOTTOM
    top_value = max([v for _, v in values] + [target or 0, 1])
    step = _step(top_value)
    scale_top = step * math.ceil(top_value / step)
    base_y = TOP + plot

    def y_of(value: float) -> float:
        return round(base_y - plot * value / scale_top, 1)

    bars = []
    for index, (label, value) in enumerate(values):
        x = LEFT + index * space + space * 0.15
        bar_width = space * 0.7
        y = y_of(value)
        bars.append(Bar(label, value, round(x, 1), y, round(bar_width, 1), round(base_y - y, 1),
                        round(x + bar_width / 2, 1), base_y + 10, target is not None and value < target))
    ticks = tuple(Tick(step * n, y_of(step * n)) for n in range(int(scale_top / step) + 1))
    return BarChart(round(width, 1), HEIGHT, LEFT, round(width - RIGHT, 1), base_y, tuple(bars), ticks,
                    target, y_of(target) if target is not None else None)


def _step(top: float) -> float:
    """A round distance between grid lines giving at most about five of them."""
    raw = top / 5
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for factor in (1, 2, 5, 10):
        if raw <= factor * magnitude:
            return max(factor * magnitude, 1)
    return 10 * magnitude


BAR, BELOW, TARGET = "#2f6f9f", "#c0392b", "#a11919"


def svg(chart: BarChart, label: str) -> Markup:
    """The chart as an ``<svg>`` element (``label`` names it for screen readers)."""
    name = escape(label)
    out = [(f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {chart.width} {chart.height}" '
            f'width="{chart.width}" height="{chart.height}" role="img" aria-label="{name}"><title>{name}</title>')]
    for t in chart.ticks:
        out.append(f'<line x1="{chart.left}" x2="{chart.right}" y1="{t.y}" y2="{t.y}" stroke="#ddd"/>'
                   f'<text x="{chart.left - 5}" y="{t.y + 4}" text-anchor="end" font-size="11" fill="#555">'
                   f'{t.value:g}</text>')
    for b in chart.bars:
        text = escape(b.label)
        colour = BELOW if b.below else BAR
        out.append(f'<g class="bar{" below" if b.below else ""}"><rect x="{b.x}" y="{b.y}" width="{b.width}" '
                   f'height="{b.height}" fill="{colour}"><title>{text}: {b.value:g}</title></rect>'
                   f'<text x="{b.label_x}" y="{b.y - 3}" text-anchor="middle" font-size="10">{b.value:g}</text>'
                   f'<text x="{b.label_x}" y="{b.label_y}" transform="rotate(-45 {b.label_x} {b.label_y})" '
                   f'text-anchor="end" font-size="11" fill="{TARGET if b.below else "#222"}">{text}</text></g>')
    out.append(f'<line x1="{chart.left}" x2="{chart.right}" y1="{chart.base_y}" y2="{chart.base_y}" stroke="#333"/>')
    if chart.target is not None and chart.target_y is not None:
        out.append(f'<line class="target" x1="{chart.left}" x2="{chart.right}" y1="{chart.target_y}" '
                   f'y2="{chart.target_y}" stroke="{TARGET}" stroke-width="2" stroke-dasharray="6 3"/>'
                   f'<text x="{chart.right + 4}" y="{chart.target_y + 4}" font-size="11" '
                   f'fill="{TARGET}">{escape(_("Target"))} {chart.target:g}</text>')
    out.append("</svg>")
    return Markup("".join(out))
