from django import template

register = template.Library()


@register.filter
def percent(value: float | None) -> str:
    """0.4567 -> "45.67%"; no figure -> "–"."""
    return "–" if value is None else f"{value * 100:.2f}%"
