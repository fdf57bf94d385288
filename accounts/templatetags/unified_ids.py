"""{{ value|unified_id }}: a unified ID the way the member card prints it."""

from django import template

from accounts import unified_id as ids

register = template.Library()


@register.filter(name="unified_id")
def unified_id(value: str) -> str:
    return ids.display(str(value or ""))
