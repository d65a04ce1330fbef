"""Small charts for the overview page, drawn on the server as inline SVG (no script, no library).

Each chart is a list of series over the same time slots; a series is a line
(rates, percentiles) or bars (errors, cost). The SVG scales to its box
(``viewBox``, ``width: 100%``) and uses the page's CSS for colours.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

WIDTH = 360
HEIGHT = 130
_LEFT, _RIGHT, _TOP, _BOTTOM = 52, 6, 10, 18


@dataclass(slots=True)
class Series:
    """One line or set of bars: a value (or None: no data) per slot."""

    label: str
    css: str
    values: Sequence[float | None]
    bars: bool = False


def _nice_max(value: float) -> float:
    """The smallest of 1, 2, 2.5 or 5 times a power of ten not below ``value`` (the y axis' top)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5):
        if step * power >= value:
            return step * power
    return 10 * power


def chart(
    title: str,
    series: Sequence[Series],
    slot_labels: Sequence[str],
    fmt: Callable[[float], str],
) -> SafeString:
    """An SVG chart with a y axis (0 and the top), first/last slot labels on the x axis, and a legend."""
    slots = len(slot_labels)
    top = _nice_max(max((v for s in series for v in s.values if v is not None), default=0.0))
    inner_w, inner_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    step = inner_w / max(slots, 1)

    def y(v: float) -> float:
        return _TOP + inner_h - inner_h * v / top

    shapes: list[SafeString] = []
    bar_series = [s for s in series if s.bars]
    for position, item in enumerate(bar_series):
        width = max(step / max(len(bar_series), 1) - 1, 0.5)
        rects = format_html_join(
            "",
            '<rect x="{}" y="{}" width="{}" height="{}"><title>{}: {}</title></rect>',
            (
                (
                    f"{_LEFT + i * step + position * width:.1f}",
                    f"{y(v):.1f}",
                    f"{width:.1f}",
                    f"{_TOP + inner_h - y(v):.1f}",
                    slot_labels[i],
                    fmt(v),
                )
                for i, v in enumerate(item.values)
                if v
            ),
        )
        shapes.append(format_html('<g class="ao-c-bars {}">{}</g>', item.css, rects))
    for item in series:
        if item.bars:
            continue
        runs: list[list[str]] = [[]]
        for i, v in enumerate(item.values):
            if v is None:
                if runs[-1]:
                    runs.append([])
                continue
            runs[-1].append(f"{_LEFT + (i + 0.5) * step:.1f},{y(v):.1f}")
        for run in runs:
            if len(run) == 1:
                x, yy = run[0].split(",")
                shapes.append(format_html('<circle class="ao-c-dot {}" cx="{}" cy="{}" r="2"/>', item.css, x, yy))
            elif run:
                shapes.append(format_html('<polyline class="ao-c-line {}" points="{}"/>', item.css, " ".join(run)))
    legend = format_html_join(" ", '<span class="ao-c-key {}">{}</span>', ((s.css, s.label) for s in series))
    axis = format_html(
        '<line class="ao-c-axis" x1="{l}" y1="{b}" x2="{r}" y2="{b}"/>'
        '<text class="ao-c-tick" x="{tx}" y="{ty}" text-anchor="end">{top}</text>'
        '<text class="ao-c-tick" x="{tx}" y="{b}" text-anchor="end">0</text>'
        '<text class="ao-c-tick" x="{l}" y="{lb}">{first}</text>'
        '<text class="ao-c-tick" x="{r}" y="{lb}" text-anchor="end">{last}</text>',
        l=_LEFT,
        r=WIDTH - _RIGHT,
        b=_TOP + inner_h,
        tx=_LEFT - 4,
        ty=_TOP + 8,
        top=fmt(top),
        lb=HEIGHT - 4,
        first=slot_labels[0] if slot_labels else "",
        last=slot_labels[-1] if slot_labels else "",
    )
    return format_html(
        '<figure class="ao-chart"><figcaption><strong>{}</strong> {}</figcaption>'
        '<svg viewBox="0 0 {} {}" role="img" aria-label="{}">{}{}</svg></figure>',
        title,
        legend,
        WIDTH,
        HEIGHT,
        title,
        axis,
        mark_safe("".join(shapes)),  # each shape was built with format_html
    )
