"""The campaign's emails-per-minute limit, shared by every sender on every worker.

A token bucket kept on the campaign row and changed under a row lock (SELECT ...
FOR UPDATE on PostgreSQL; SQLite serializes writers anyway). It refills at
rate/60 tokens a second and holds at most five seconds' worth, so in any minute a
campaign sends at most its rate plus that burst. Celery's own rate_limit would count
per worker process, not for the campaign.
"""

import math
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from linking.campaigns.models import Campaign

BURST_SECONDS = 5


@dataclass(frozen=True)
class Grant:
    count: int
    wait_seconds: float


def burst(rate_per_minute: int) -> float:
    return float(
        max(1, min(settings.CAMPAIGN_CHUNK_SIZE, math.ceil(rate_per_minute * BURST_SECONDS / 60)))
    )


def take(campaign_id: int, wanted: int) -> Grant:
    """Take up to `wanted` emails from the bucket; when it is empty, say how long to
    wait for the next one."""
    now = timezone.now()
    with transaction.atomic():
        row = (
            Campaign.objects.select_for_update()
            .values("rate_per_minute", "rate_tokens", "rate_updated_at")
            .get(pk=campaign_id)
        )
        rate, capacity = row["rate_per_minute"], burst(row["rate_per_minute"])
        if row["rate_updated_at"] is None:
            tokens = capacity
        else:
            elapsed = max(0.0, (now - row["rate_updated_at"]).total_seconds())
            tokens = min(capacity, row["rate_tokens"] + elapsed * rate / 60)
        count = max(0, min(wanted, math.floor(tokens)))
        Campaign.objects.filter(pk=campaign_id).update(
            rate_tokens=tokens - count, rate_updated_at=now
        )
    wait = 0.0 if count else (1 - tokens) * 60 / rate
    return Grant(count=count, wait_seconds=wait)


def give_back(campaign_id: int, count: int) -> None:
    """Return tokens taken but not used (fewer deliveries were left than taken)."""
    if count <= 0:
        return
    with transaction.atomic():
        row = (
            Campaign.objects.select_for_update()
            .values("rate_per_minute", "rate_tokens")
            .get(pk=campaign_id)
        )
        tokens = min(burst(row["rate_per_minute"]), row["rate_tokens"] + count)
        Campaign.objects.filter(pk=campaign_id).update(rate_tokens=tokens)
