from django import template

from linking.staff import labels

register = template.Library()


@register.filter
def percent(value: float | None) -> str:
    """0.4567 -> "45.67%"; no figure -> "–"."""
    return "–" if value is None else f"{value * 100:.2f}%"


@register.filter
def reason_label(value: str) -> str:
    """A reason the system stored in English, in the reader's language."""
    return labels.reason(value)
