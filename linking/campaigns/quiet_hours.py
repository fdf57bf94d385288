"""Quiet hours: local hours (CAMPAIGN_QUIET_HOURS, e.g. "21:00-08:00") in which no
campaign message goes out, by email or by LINE. A sender that meets them stops and
is started again at their end."""

from datetime import datetime, time, timedelta

from django.conf import settings
from django.utils import timezone


def _bounds() -> tuple[time, time] | None:
    if not settings.CAMPAIGN_QUIET_HOURS:
        return None
    start, end = settings.CAMPAIGN_QUIET_HOURS.split("-")
    return time.fromisoformat(start), time.fromisoformat(end)


def seconds_left(now: datetime) -> float:
    """0 outside quiet hours; inside, the seconds until they end."""
    bounds = _bounds()
    if bounds is None or bounds[0] == bounds[1]:
        return 0.0
    start, end = bounds
    local = timezone.localtime(now)
    clock = local.time()
    inside = start <= clock < end if start < end else clock >= start or clock < end
    if not inside:
        return 0.0
    ends = datetime.combine(local.date(), end, tzinfo=local.tzinfo)
    if ends <= local:
        ends += timedelta(days=1)
    return (ends - local).total_seconds()
