"""Device names from user agents ("Android の Chrome"), for the session list and the
security mails: a customer recognises a phone, not a user-agent string."""

from functools import lru_cache

from django.utils.translation import gettext as _
from ua_parser import parse

_UNKNOWN = {"", "Other"}


@lru_cache(maxsize=1024)
def _parts(user_agent: str) -> tuple[str, str, str]:
    result = parse(user_agent or "")
    browser = getattr(result.user_agent, "family", "") or ""
    os = result.os
    system = ""
    if os and os.family not in _UNKNOWN:
        system = " ".join(filter(None, [os.family, os.major]))
    device = result.device
    model = ""
    if device and device.family not in _UNKNOWN and device.family not in {"K", "Mac"}:
        model = device.family
    return ("" if browser in _UNKNOWN else browser), system, model


def name(user_agent: str) -> str:
    """ "Chrome Mobile (Android 14, Pixel 8)", or "an unknown device"."""
    browser, system, model = _parts(user_agent or "")
    where = ", ".join(filter(None, [system, model]))
    if browser and where:
        return _("%(browser)s (%(where)s)") % {"browser": browser, "where": where}
    return browser or where or _("An unknown device")
