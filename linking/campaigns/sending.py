"""Sending a campaign: one sender run claims a chunk of deliveries and sends them in
batches, one email per SMTP connection, with one commit per batch.

Exactly once per delivery:
- claim: pending deliveries (or "sending" ones whose lease ran out, left by a dead
  sender) are taken with SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL (SQLite
  serializes writers) and marked "sending" with a lease and a claim name;
- send: each email of a batch goes to the server up to, not including, the final
  "." of DATA (see transport.py). Then one conditional UPDATE marks "sent" those of
  the batch that are still ours (still "sending", same claim) and may still be sent
  (address not suppressed, marketing email not refused, account not linked meanwhile):
  the suppression is re-checked in the very statement that commits the send. Only the
  emails that UPDATE marked get their "."; the others' connections are closed, which
  discards them at the server;
- so a task that runs twice, or two senders on one delivery, send it once: only one
  UPDATE can turn a row from "sending" to "sent".
- commit point: the batch's COMMIT and its emails' "."s leave together, in one system
  call on PostgreSQL (commit_point.py), so a sender killed at any moment has sent
  the batch and committed it, or neither: then the server discards the unfinished
  emails, the database rolls back, and the batch is sent again once its lease runs
  out. A delivery is confirmed (confirmed_at) once the server answered its "." with
  250.
What is left, where the COMMIT must go before the "."s (SQLite, no io_uring, an
encrypted database connection): a sender that dies between the two loses the
emails still waiting for their "." (marked sent, never resent; at most
CAMPAIGN_SMTP_CONNECTIONS emails per sender process), not silently: staff see them
sent but never confirmed. Should the COMMIT itself fail after the "."s went out, the
batch is recorded as sent once the database answers again.
"""

import hashlib
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Exists,
    ExpressionWrapper,
    F,
    Min,
    OuterRef,
    Q,
    Value,
    When,
)
from django.utils import timezone

from accounts import consent
from linking.campaigns import commit_point, content, rate_limit
from linking.campaigns.models import Campaign, CampaignStep, Delivery, Suppression
from linking.campaigns.transport import ConnectionLost, Item, Transport
from linking.models import LegacyAccount

MAX_ATTEMPTS = 5
# Pauses between tries to record a batch whose COMMIT failed after its "."s went out;
# None: the last try, whose failure is raised (the task is retried; those emails may
# then go out twice).
SETTLE_RETRY_SECONDS = (0.5, 1, 2, 4, 8, None)


@dataclass(frozen=True)
class Run:
    """What a sender run did and what should happen next."""

    sent: int = 0
    again: bool = False  # run again
    wait_seconds: float = 0.0  # ... after this long


class TransportUnavailable(Exception):
    """The mail server could not be reached; the claimed deliveries were released."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def retry_delay(attempts: int) -> timedelta:
    """1, 2, 4, 8 ... minutes, at most an hour."""
    return timedelta(minutes=min(60, 2 ** max(0, attempts - 1)))


def send_chunk(campaign_id: int, transport: Transport | None = None) -> Run:
    """One sender run: check the campaign is sending, take tokens from the shared
    rate limit, claim that many deliveries, send them (over the transport given, so
    a task sending chunk after chunk keeps its connections, or a new one)."""
    now = timezone.now()
    touched = Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.SENDING).update(
        senders_seen_at=now
    )
    if not touched:
        return Run()  # paused, cancelled, finished or gone: stop; resume starts anew
    grant = rate_limit.take(campaign_id, settings.CAMPAIGN_CHUNK_SIZE)
    if not grant.count:
        return Run(again=True, wait_seconds=grant.wait_seconds)
    deliveries = claim(campaign_id, grant.count)
    rate_limit.give_back(campaign_id, grant.count - len(deliveries))
    if not deliveries:
        return _idle(campaign_id)
    campaign = Campaign.objects.get(pk=campaign_id)
    if transport is None:
        with Transport() as own:
            sent = send_claimed(own, campaign, deliveries)
    else:
        sent = send_claimed(transport, campaign, deliveries)
    return Run(sent=sent, again=True)


def claim(campaign_id: int, limit: int) -> list[Delivery]:
    """Take up to `limit` deliveries: first those whose sender's lease ran out, then
    pending ones in the order they came due. Each is a range of the partial index
    delivery_claimable (campaign, status, not_before) read in order and cut at the
    limit, so a claim stays cheap however many deliveries are pending (sorting every
    pending row of a 100,000-email campaign took a fifth of a second per claim)."""
    now = timezone.now()
    name = uuid.uuid4().hex
    campaign_rows = Delivery.objects.filter(campaign_id=campaign_id)
    with transaction.atomic():
        ids = list(
            campaign_rows.filter(status=Delivery.Status.SENDING, lease_until__lt=now)
            .order_by("not_before")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:limit]
        )
        if len(ids) < limit:
            ids += list(
                campaign_rows.filter(status=Delivery.Status.PENDING, not_before__lte=now)
                .order_by("not_before")
                .select_for_update(skip_locked=True)
                .values_list("pk", flat=True)[: limit - len(ids)]
            )
        if ids:
            claimable = Q(status=Delivery.Status.PENDING, not_before__lte=now) | Q(
                status=Delivery.Status.SENDING, lease_until__lt=now
            )
            Delivery.objects.filter(claimable, pk__in=ids).update(
                status=Delivery.Status.SENDING,
                claim=name,
                lease_until=now + timedelta(seconds=settings.CAMPAIGN_LEASE_SECONDS),
            )
    if not ids:
        return []
    return list(
        Delivery.objects.filter(pk__in=ids, claim=name, status=Delivery.Status.SENDING)
        .select_related("account__service")
        .order_by("pk")
    )


def send_claimed(transport: Transport, campaign: Campaign, deliveries: list[Delivery]) -> int:
    """Send claimed deliveries in batches of the transport's size; how many went out.
    Raises TransportUnavailable (the deliveries not yet sent released) when the mail
    server cannot be reached."""
    remaining = _skip_blocked(deliveries)
    composer = content.Composer(campaign) if transport.smtp else None
    sent = 0
    for start in range(0, len(remaining), transport.size):
        batch = remaining[start : start + transport.size]
        try:
            sent += send_batch(transport, campaign, batch, composer=composer)
        except ConnectionLost as lost:
            _release(remaining[start:], error="", count_attempt=False)
            raise TransportUnavailable(str(lost)) from lost
    return sent


def send_batch(
    transport: Transport,
    campaign: Campaign,
    batch: list[Delivery],
    *,
    composer: content.Composer | None = None,
) -> int:
    """Send one batch (at most one email per connection) with one commit; how many
    went out."""
    tokens = {delivery.pk: secrets.token_urlsafe(32) for delivery in batch}
    items = []
    for delivery in batch:
        token = tokens[delivery.pk]
        if transport.smtp:
            composer = composer or content.Composer(campaign)
            out = composer.outgoing(delivery, delivery.account, token=token)
            items.append(
                Item(key=delivery.pk, sender=out.sender, recipient=out.recipient, data=out.data)
            )
        else:
            message = content.build_message(campaign, delivery, delivery.account, token=token)
            items.append(Item(key=delivery.pk, message=message))
    by_pk = {delivery.pk: delivery for delivery in batch}
    sent_at = timezone.now()

    def commit(ready: list[Item]) -> tuple[set[int], commit_point.Pending]:
        return _commit(campaign, [by_pk[item.key] for item in ready], tokens, sent_at)

    outcomes = transport.send(items, commit)
    sent, abandoned, confirmed = 0, [], []
    for delivery in batch:
        outcome = outcomes[delivery.pk]
        if outcome.status == "sent":
            sent += 1
            confirmed.append(delivery.pk)
        elif outcome.status == "abandoned":
            abandoned.append(delivery)
        elif outcome.status == "temporary":
            _retry_later(delivery, outcome.error)
        elif outcome.status == "dropped":  # e.g. the server closed an idle connection
            _retry_later(delivery, outcome.error, delay=timedelta(0))
        elif outcome.status == "permanent":
            _finish(delivery, status=Delivery.Status.FAILED, error=outcome.error, after_commit=True)
            if outcome.rejected_recipient:
                Suppression.objects.get_or_create(
                    email_key=delivery.email_key,
                    defaults={
                        "reason": Suppression.Reason.BOUNCED,
                        "campaign": campaign,
                        "detail": outcome.error,
                    },
                )
        else:  # "unknown": the server may or may not have it; it stays sent
            _note(delivery, outcome.error)
    if confirmed:
        Delivery.objects.filter(pk__in=confirmed, status=Delivery.Status.SENT).update(
            confirmed_at=timezone.now()
        )
    if abandoned:
        # Not committed: suppressed or linked meanwhile (skipped now), or claimed by
        # another sender (left alone: _mine no longer matches).
        _release(_skip_blocked(abandoned), error="", count_attempt=False)
    return sent


def _sendable() -> Q:
    """May still be sent: address not suppressed, marketing email not refused, legacy
    account not linked. Evaluated on the delivery row itself (no join), so it can sit
    in the UPDATE that commits the send."""
    return (
        ~Q(Exists(Suppression.objects.filter(email_key=OuterRef("email_key"))))
        & ~consent.refuses_marketing(OuterRef("email_key"))
        & ~Q(Exists(LegacyAccount.objects.filter(pk=OuterRef("account_id"), owner__isnull=False)))
    )


def _commit(
    campaign: Campaign, deliveries: list[Delivery], tokens: dict[int, str], sent_at
) -> tuple[set[int], commit_point.Pending]:
    """Mark "sent", in one statement, those of the deliveries still ours and still
    sendable: their keys (only these may be finished at the server), and the
    transaction, whose COMMIT goes out with their "."s (commit_point.py)."""
    if not deliveries:
        return set(), commit_point.COMMITTED
    pks = [delivery.pk for delivery in deliveries]
    name = deliveries[0].claim
    ours = Delivery.objects.filter(pk__in=pks, claim=name, status=Delivery.Status.SENDING)
    sent = {
        "status": Delivery.Status.SENT,
        "sent_at": sent_at,
        "attempts": F("attempts") + 1,
        "lease_until": None,
        "error": "",
        "token_hash": Case(
            *(When(pk=pk, then=Value(token_hash(tokens[pk]))) for pk in pks),
            output_field=CharField(),
        ),
        "token_expires_at": sent_at + timedelta(days=campaign.link_valid_days),
    }

    def mark() -> set[int]:
        if ours.filter(_sendable()).update(**sent) == len(pks):
            return set(pks)
        return set(
            Delivery.objects.filter(
                pk__in=pks, claim=name, status=Delivery.Status.SENT, sent_at=sent_at
            ).values_list("pk", flat=True)
        )

    keys, pending = commit_point.begin(mark)
    if not keys:
        return keys, pending
    return keys, _Recorded(pending, lambda: ours.filter(pk__in=keys).update(**sent))


class _Recorded(commit_point.Pending):
    """A batch's transaction. Should its COMMIT fail once the "."s went out (the
    database went away in between), the emails are at the server all the same: they
    are recorded as sent once the database answers again, or they would go out
    twice when their lease runs out."""

    def __init__(self, pending: commit_point.Pending, record: Callable[[], object]) -> None:
        self.pending = pending
        self.record = record

    def send(self, writes):
        return self.pending.send(writes)

    def abandon(self) -> None:
        self.pending.abandon()

    def answer(self) -> None:
        try:
            self.pending.answer()
        except DatabaseError:
            _retrying(self.record)


def _retrying(write: Callable[[], object]) -> None:
    for pause in SETTLE_RETRY_SECONDS:
        connection.close()
        try:
            write()
            return
        except DatabaseError:
            if pause is None:
                raise
            time.sleep(pause)


def _skip_blocked(deliveries: list[Delivery]) -> list[Delivery]:
    """One query for the whole list: mark skipped those suppressed, refusing marketing
    email or linked meanwhile; the others."""
    if not deliveries:
        return []
    blocked = {}
    rows = (
        Delivery.objects.filter(pk__in=[delivery.pk for delivery in deliveries])
        .annotate(
            suppressed=Exists(Suppression.objects.filter(email_key=OuterRef("email_key"))),
            refused=ExpressionWrapper(
                consent.refuses_marketing(OuterRef("email_key")), output_field=BooleanField()
            ),
        )
        .values_list("pk", "suppressed", "refused", "account__owner_id")
    )
    for pk, suppressed, refused, owner_id in rows:
        if suppressed:
            blocked[pk] = "suppressed"
        elif refused:
            blocked[pk] = "marketing email refused"
        elif owner_id is not None:
            blocked[pk] = "linked before sending"
    for reason in set(blocked.values()):
        Delivery.objects.filter(
            pk__in=[pk for pk, why in blocked.items() if why == reason],
            claim=deliveries[0].claim,
            status=Delivery.Status.SENDING,
        ).update(
            status=Delivery.Status.SKIPPED,
            error=reason,
            lease_until=None,
            sent_at=None,
            token_hash=None,
        )
    return [delivery for delivery in deliveries if delivery.pk not in blocked]


def _mine(delivery: Delivery):
    return Delivery.objects.filter(
        pk=delivery.pk, claim=delivery.claim, status=Delivery.Status.SENDING
    )


def _after_commit(delivery: Delivery):
    """The delivery as our commit left it ("sent"), or as claimed if we never got there."""
    return Delivery.objects.filter(
        pk=delivery.pk,
        claim=delivery.claim,
        status__in=[Delivery.Status.SENDING, Delivery.Status.SENT],
    )


def _finish(delivery: Delivery, *, status: str, error: str, after_commit: bool = False) -> None:
    rows = _after_commit(delivery) if after_commit else _mine(delivery)
    rows.update(status=status, error=error[:1000], lease_until=None, sent_at=None, token_hash=None)


def _retry_later(delivery: Delivery, error: str, *, delay: timedelta | None = None) -> None:
    """Back to pending, the attempt counted, after retry_delay (or `delay`)."""
    attempts = delivery.attempts + 1
    if attempts >= MAX_ATTEMPTS:
        _finish(delivery, status=Delivery.Status.FAILED, error=error, after_commit=True)
        return
    _after_commit(delivery).update(
        status=Delivery.Status.PENDING,
        attempts=attempts,
        not_before=timezone.now() + (retry_delay(attempts) if delay is None else delay),
        error=error[:1000],
        lease_until=None,
        claim="",
        sent_at=None,
        token_hash=None,
        token_expires_at=None,
    )


def _release(deliveries: list[Delivery], *, error: str, count_attempt: bool) -> None:
    if count_attempt:
        for delivery in deliveries:
            _retry_later(delivery, error)
    elif deliveries:
        Delivery.objects.filter(
            pk__in=[delivery.pk for delivery in deliveries],
            claim=deliveries[0].claim,
            status=Delivery.Status.SENDING,
        ).update(status=Delivery.Status.PENDING, lease_until=None, claim="")


def _note(delivery: Delivery, error: str) -> None:
    Delivery.objects.filter(pk=delivery.pk, claim=delivery.claim).update(error=error[:1000])


def _idle(campaign_id: int) -> Run:
    """Nothing to claim now: wait for retries or leases to come due, or finish."""
    now = timezone.now()
    due = Delivery.objects.filter(
        campaign_id=campaign_id,
        status__in=[Delivery.Status.PENDING, Delivery.Status.SENDING],
    ).aggregate(pending=Min("not_before"), leased=Min("lease_until"))
    upcoming = [moment for moment in (due["pending"], due["leased"]) if moment is not None]
    if upcoming:
        wait = max(1.0, (min(upcoming) - now).total_seconds())
        # Long waits (retries minutes away) are left to beat's tick, which restarts
        # senders when deliveries come due.
        return Run(again=wait <= settings.CAMPAIGN_TICK_SECONDS, wait_seconds=wait)
    finish_if_done(campaign_id)
    return Run()


def finish_if_done(campaign_id: int) -> bool:
    """Finished: every step planned and no delivery left to send."""
    if CampaignStep.objects.filter(campaign_id=campaign_id, planned_at__isnull=True).exists():
        return False
    if Delivery.objects.filter(
        campaign_id=campaign_id, status__in=[Delivery.Status.PENDING, Delivery.Status.SENDING]
    ).exists():
        return False
    return bool(
        Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.SENDING).update(
            status=Campaign.Status.FINISHED, finished_at=timezone.now()
        )
    )
