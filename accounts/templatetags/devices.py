"""{{ user_agent|device_name }}: the device a user agent names (accounts.devices)."""

from django import template

from accounts import devices

register = template.Library()


@register.filter
def device_name(user_agent: str) -> str:
    return devices.name(str(user_agent or ""))
