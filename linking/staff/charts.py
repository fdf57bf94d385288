"""Server-rendered SVG charts: no JavaScript, no CDN, colours from the stylesheet
(static/css/admin-dashboard.css styles the classes used here)."""

from django.utils.formats import date_format
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from linking.staff.stats import Period

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 56, 16, 32
# Presentation attributes (not style=""), so a chart reads without the stylesheet too.
GRID = 'class="chart-grid" stroke="#ddd"'
AXIS = 'class="chart-axis" font-size="11"'
BAR = 'class="chart-bar" fill="#9cc3e6"'
LINE = 'class="chart-line" fill="none" stroke="#1f5f99" stroke-width="2"'


def trend(periods: list[Period], *, title: str, weekly: bool = False) -> SafeString:
    """Bars: links made in each period (right axis). Line: link rate at its end (left)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    count = max(len(periods), 1)
    slot = plot_w / count
    top_links = max([p.links for p in periods] + [1])
    rates = [p.rate for p in periods if p.rate is not None]
    top_rate = _nice_ceiling(max([*rates, 0.01]))
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>',
        f'<rect class="chart-bg" fill="#fff" x="{LEFT}" y="{TOP}" '
        f'width="{plot_w}" height="{plot_h}"/>',
    ]
    for fraction in (0, 0.5, 1):
        y = TOP + plot_h * (1 - fraction)
        parts.append(f'<line {GRID} x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(
            f'<text {AXIS} x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{top_rate * fraction * 100:.1f}%</text>"
        )
        parts.append(
            f'<text {AXIS} x="{LEFT + plot_w + 6}" y="{y + 4:.1f}">'
            f"{round(top_links * fraction):,}</text>"
        )
    points = []
    for i, period in enumerate(periods):
        x = LEFT + slot * i
        bar_h = plot_h * period.links / top_links
        parts.append(
            f'<rect {BAR} x="{x + slot * 0.15:.1f}" y="{TOP + plot_h - bar_h:.1f}" '
            f'width="{max(slot * 0.7, 1):.1f}" height="{bar_h:.1f}">'
            f"<title>{escape(_label(period, weekly))}: {period.links:,}</title></rect>"
        )
        if period.rate is not None:
            y = TOP + plot_h * (1 - period.rate / top_rate)
            points.append(f"{x + slot / 2:.1f},{y:.1f}")
    if points:
        parts.append(f'<polyline {LINE} points="{" ".join(points)}"/>')
    for i in sorted({0, len(periods) // 2, len(periods) - 1}):
        if 0 <= i < len(periods):
            x = LEFT + slot * (i + 0.5)
            parts.append(
                f'<text {AXIS} x="{x:.1f}" y="{HEIGHT - 10}" text-anchor="middle">'
                f"{escape(_label(periods[i], weekly))}</text>"
            )
    parts.append("</svg>")
    # Every interpolated text is escaped above; the rest is numbers.
    return mark_safe("".join(parts))  # noqa: S308


def _label(period: Period, weekly: bool) -> str:
    text = date_format(period.start, "SHORT_DATE_FORMAT")
    return f"{text}〜" if weekly else text


def _nice_ceiling(value: float) -> float:
    for step in (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 0.75, 1.0):
        if value <= step:
            return step
    return value
