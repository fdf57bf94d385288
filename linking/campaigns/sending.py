"""Sending a campaign: a sender run leases a chunk of deliveries and sends them in
batches through Django's email backend (SMTP, or an email service via anymail), or
pushes them through LINE. Never twice: a batch is committed "sending" before the
backend gets it, and such an email is never sent again; its outcome is recorded
after the send, or, if that record is lost, it turns "unconfirmed" when its lease
ends (docs/operations.md). A LINE push is retried with the same retry key instead."""

import contextlib
import hashlib
import math
import secrets
import smtplib
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from anymail.exceptions import AnymailAPIError, AnymailError, AnymailRecipientsRefused
from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends.base import BaseEmailBackend
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
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts import limits
from linking.campaigns import by_line, content, quiet_hours
from linking.campaigns.models import Campaign, CampaignStep, Channel, Delivery, Suppression
from linking.line import client as line
from linking.marketing import marketing_allowed
from linking.models import LegacyAccount

MAX_ATTEMPTS = 5
S = Delivery.Status
BURST_SECONDS = 5
# LINE honours a retry key for 24 hours: a push handed over longer ago than this is
# not tried again (it turns unconfirmed), so it can never be delivered twice.
LINE_RETRY_WINDOW = timedelta(hours=23)


@dataclass(frozen=True)
class Run:
    """What a sender run did and what should happen next."""

    sent: int = 0
    keep_sending: bool = False  # this sender runs again ...
    wait_seconds: float = 0.0  # ... after this long


class MailServerUnavailable(Exception):
    """The mail server could not be reached, or the connection broke; the deliveries
    not yet handed to it were released."""


@dataclass(frozen=True)
class Outcome:
    """What the mail server made of one email: "sent", "later" (refused for now),
    "failed" (refused), or "unknown" (it may have taken it)."""

    status: str
    error: str = ""
    bounced: bool = False  # the recipient was refused: suppress the address
    closed: bool = False  # the server closed the connection (421)
    reset: bool = False  # the next email needs a new connection


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def retry_delay(attempts: int) -> timedelta:
    """1, 2, 4, 8 ... minutes, at most an hour."""
    return timedelta(minutes=min(60, 2 ** max(0, attempts - 1)))


def connections() -> list[BaseEmailBackend]:
    """CAMPAIGN_CONNECTIONS connections of the email backend: a batch is spread
    over them, each sending one email at a time, so the waits on the server overlap."""
    return [get_connection() for _ in range(max(1, settings.CAMPAIGN_CONNECTIONS))]


def send_rate(per_minute: int) -> limits.RateLimitItem:
    """A campaign's emails per minute, shared by every sender on every worker. Sent
    in the shortest windows (5 s at least) whose whole number of emails keeps 90% of
    the rate, so a minute sends at most its rate and one window more. (Celery's own
    rate_limit would count per worker process, not for the campaign.)"""
    for seconds in (BURST_SECONDS, 6, 10, 12, 15, 20, 30):
        exact = per_minute * seconds / 60
        if exact >= 1 and math.floor(exact) >= 0.9 * exact:
            return limits.rate(math.floor(exact), seconds)
    return limits.rate(per_minute, 60)


def send_chunk(campaign_id: int, mails: list[BaseEmailBackend] | None = None) -> Run:
    """One sender run: check the campaign is sending and outside quiet hours, take
    what its rate allows now, lease that many deliveries and send them over `mails` (kept open by
    a task for its next chunks), or over connections of its own."""
    now = timezone.now()
    touched = Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.SENDING).update(
        senders_seen_at=now
    )
    if not touched:
        return Run()  # paused, cancelled, finished or gone: stop; resume starts anew
    quiet = quiet_hours.seconds_left(now)
    if quiet:
        # Beat's tick starts senders again once they end, if this one has stopped.
        return Run(keep_sending=quiet <= settings.CAMPAIGN_TICK_SECONDS, wait_seconds=quiet)
    rate = send_rate(Campaign.objects.values_list("rate_per_minute", flat=True).get(pk=campaign_id))
    grant = limits.take(rate, "campaign", str(campaign_id), wanted=settings.CAMPAIGN_CHUNK_SIZE)
    if not grant.count:
        return Run(keep_sending=True, wait_seconds=grant.resets_in)
    deliveries = lease(campaign_id, grant.count)
    limits.give_back(
        rate, "campaign", str(campaign_id), count=grant.count - len(deliveries), of=grant
    )
    if not deliveries:
        return _idle(campaign_id)
    campaign = Campaign.objects.get(pk=campaign_id)
    by_email = [delivery for delivery in deliveries if delivery.channel == Channel.EMAIL]
    pushed = push_leased(campaign, [d for d in deliveries if d.channel == Channel.LINE])
    if not by_email:
        return Run(sent=pushed, keep_sending=True)
    if mails is not None:
        return Run(sent=pushed + send_leased(mails, campaign, by_email), keep_sending=True)
    own = connections()
    try:
        return Run(sent=pushed + send_leased(own, campaign, by_email), keep_sending=True)
    finally:
        close(own)


def lease(campaign_id: int, limit: int) -> list[Delivery]:
    """Take up to `limit` deliveries: first those whose sender's lease ran out before it
    handed them over (or, by LINE, before it recorded LINE's answer), then pending ones
    in the order they came due (a range of the index delivery_to_send, cut at the
    limit). Emails handed over whose outcome was never recorded turn unconfirmed here,
    once their lease ended."""
    now = timezone.now()
    name = uuid.uuid4().hex
    rows = Delivery.objects.filter(campaign_id=campaign_id)
    expire_handed_over(rows, now)
    with transaction.atomic():
        ids = list(
            rows.filter(_lease_ran_out(now))
            .order_by("not_before")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:limit]
        )
        if len(ids) < limit:
            ids += list(
                rows.filter(status=S.PENDING, not_before__lte=now)
                .order_by("not_before")
                .select_for_update(skip_locked=True)
                .values_list("pk", flat=True)[: limit - len(ids)]
            )
        if ids:
            leasable = Q(status=S.PENDING, not_before__lte=now) | _lease_ran_out(now)
            Delivery.objects.filter(leasable, pk__in=ids).update(
                status=S.LEASED,
                lease=name,
                lease_until=now + timedelta(seconds=settings.CAMPAIGN_LEASE_SECONDS),
            )
    if not ids:
        return []
    return list(
        Delivery.objects.filter(pk__in=ids, lease=name, status=S.LEASED)
        .select_related("account__service")
        .order_by("pk")
    )


def _lease_ran_out(now: datetime) -> Q:
    """Leased, or pushed by LINE with the answer never recorded, by a sender whose
    lease ended: to be taken again (a push with the same retry key)."""
    return Q(status=S.LEASED, lease_until__lt=now) | Q(
        status=S.SENDING, channel=Channel.LINE, lease_until__lt=now
    )


def expire_handed_over(rows: QuerySet[Delivery], now: datetime, *, stopped: bool = False) -> None:
    """Handed over, the lease ended, the answer never recorded (the sender died or
    lost the database): an email turns unconfirmed, and is never sent again; so does
    a LINE push once LINE may have forgotten its retry key, or (stopped) when the
    campaign was cancelled."""
    ended = rows.filter(status=S.SENDING, lease_until__lt=now)
    ended.filter(channel=Channel.EMAIL).update(
        status=S.UNCONFIRMED,
        lease_until=None,
        error="handed to the mail server; its answer was never recorded",
    )
    pushed = ended.filter(channel=Channel.LINE)
    if not stopped:
        pushed = pushed.filter(sent_at__lt=now - LINE_RETRY_WINDOW)
    pushed.update(
        status=S.UNCONFIRMED,
        lease_until=None,
        error="pushed to LINE; its answer was never recorded",
    )


def send_leased(
    mails: list[BaseEmailBackend], campaign: Campaign, deliveries: list[Delivery]
) -> int:
    """Send leased deliveries in batches of CAMPAIGN_BATCH_SIZE; how many the mail
    server took. Raises MailServerUnavailable, the deliveries not handed over
    released, when the server cannot be reached or a connection breaks."""
    try:
        for mail in mails:  # before anything is handed over: a dead server changes nothing
            mail.open()
    except (OSError, smtplib.SMTPException) as exc:
        close(mails)
        _release(deliveries, statuses=[S.LEASED])
        raise MailServerUnavailable(str(exc)) from exc
    size = settings.CAMPAIGN_BATCH_SIZE
    renderer = content.Renderer(campaign)
    sent = 0
    with ThreadPoolExecutor(max_workers=len(mails)) as lanes:
        for start in range(0, len(deliveries), size):
            batch = deliveries[start : start + size]
            try:
                sent += send_batch(mails, campaign, batch, renderer=renderer, lanes=lanes)
            except (MailServerUnavailable, DatabaseError):
                _release(deliveries[start + size :], statuses=[S.LEASED])
                raise
    return sent


def send_batch(
    mails: list[BaseEmailBackend],
    campaign: Campaign,
    batch: list[Delivery],
    *,
    renderer: content.Renderer | None = None,
    lanes: ThreadPoolExecutor | None = None,
) -> int:
    """Hand one batch over (one conditional UPDATE, committed), send it spread over
    the connections, record what the server said (one UPDATE for those it took);
    how many it took."""
    renderer = renderer or content.Renderer(campaign)
    tokens = {delivery.pk: secrets.token_urlsafe(32) for delivery in batch}
    messages = {
        delivery.pk: content.build_message(
            campaign, delivery, delivery.account, token=tokens[delivery.pk], renderer=renderer
        )
        for delivery in batch
    }
    handed = _hand_over(campaign, batch, tokens)
    if len(handed) < len(batch):
        _skip_blocked([delivery for delivery in batch if delivery.pk not in handed])
    going = [(delivery.pk, messages[delivery.pk]) for delivery in batch if delivery.pk in handed]
    shares = [going[lane :: len(mails)] for lane in range(len(mails))]
    results = list((lanes.map if lanes and len(mails) > 1 else map)(_send_lane, mails, shares))
    outcomes = {pk: outcome for lane_outcomes, _left in results for pk, outcome in lane_outcomes}
    untried = [pk for _outcomes, left in results for pk in left]
    _with_retries(lambda: _record(campaign, batch, outcomes))
    broken = [
        outcome for outcome in outcomes.values() if outcome.status == "unknown" or outcome.closed
    ]
    if broken:
        # Never given to the server: this process knows, so they may go again.
        left = [delivery for delivery in batch if delivery.pk in untried]
        _with_retries(lambda: _release(left, statuses=[S.SENDING]))
        raise MailServerUnavailable(broken[0].error)
    return sum(outcome.status == "sent" for outcome in outcomes.values())


def _send_lane(
    mail: BaseEmailBackend, share: list[tuple[int, EmailMessage]]
) -> tuple[list[tuple[int, Outcome]], list[int]]:
    """One connection's share of a batch, one email at a time: the outcomes, and the
    keys it never tried because the connection broke."""
    outcomes = []
    for index, (pk, message) in enumerate(share):
        outcome = _send(mail, message)
        outcomes.append((pk, outcome))
        if outcome.status == "unknown" or outcome.closed:
            close([mail])  # the connection may be anywhere in the SMTP dialogue
            return outcomes, [key for key, _message in share[index + 1 :]]
        if outcome.reset:
            close([mail])
    return outcomes, []


def _hand_over(campaign: Campaign, batch: list[Delivery], tokens: dict[int, str]) -> set[int]:
    """One UPDATE, committed before the mail server sees anything: those of the
    batch still ours and still sendable become "sending" with their link's hash.
    Their keys. Should it fail, the batch is released: nothing of it was sent."""
    if not batch:
        return set()
    now = timezone.now()
    pks = [delivery.pk for delivery in batch]
    name = batch[0].lease
    try:
        count = (
            Delivery.objects.filter(pk__in=pks, lease=name, status=S.LEASED)
            .filter(_sendable())
            .update(
                status=S.SENDING,
                sent_at=now,
                lease_until=now + timedelta(seconds=settings.CAMPAIGN_LEASE_SECONDS),
                error="",
                token_hash=Case(
                    *(When(pk=pk, then=Value(token_hash(tokens[pk]))) for pk in pks),
                    output_field=CharField(),
                ),
                token_expires_at=now + timedelta(days=campaign.link_valid_days),
            )
        )
    except DatabaseError:
        # Committed or not, this process sends none of them: put them back.
        _with_retries(lambda: _release(batch, statuses=[S.LEASED, S.SENDING]))
        raise
    if count == len(pks):
        return set(pks)
    return set(
        Delivery.objects.filter(pk__in=pks, lease=name, status=S.SENDING, sent_at=now).values_list(
            "pk", flat=True
        )
    )


def _send(mail: BaseEmailBackend, message: EmailMessage) -> Outcome:
    """One message per send_messages call: with several, the SMTP backend stops at
    the first refused one without saying which it was."""
    try:
        sent = mail.send_messages([message])
    except smtplib.SMTPRecipientsRefused as exc:
        code, reply = next(iter(exc.recipients.values()))
        return _refused(code, reply, recipient=True)
    except smtplib.SMTPResponseException as exc:
        return _refused(exc.smtp_code, exc.smtp_error)
    except AnymailRecipientsRefused as exc:
        return Outcome("failed", error=str(exc)[:1000], bounced=True)
    except AnymailAPIError as exc:
        if exc.status_code == 429:
            return Outcome("later", error=str(exc)[:1000])
        if exc.status_code is not None and 400 <= exc.status_code < 500:
            return Outcome("failed", error=str(exc)[:1000])
        return Outcome("unknown", error=f"no answer from the email service: {exc}"[:1000])
    except (AnymailError, ValueError) as exc:
        # Refused before it went out (an address that cannot be encoded, say); the
        # SMTP dialogue may have begun, so the next email gets a new connection.
        return Outcome("failed", error=f"cannot be sent: {exc}"[:1000], reset=True)
    except (OSError, smtplib.SMTPException) as exc:
        return Outcome("unknown", error=f"connection lost: {exc}"[:1000])
    if not sent:
        return Outcome("later", error="the email backend did not send it")
    return Outcome("sent")


def _refused(code: int, reply: bytes | str, *, recipient: bool = False) -> Outcome:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    error = f"{code} {text}"[:1000]
    if 400 <= code < 500:
        return Outcome("later", error=error, closed=code == 421)
    if 500 <= code < 600:
        return Outcome("failed", error=error, bounced=recipient)
    return Outcome("unknown", error=error)


def _record(campaign: Campaign, batch: list[Delivery], outcomes: dict[int, Outcome]) -> None:
    """Write what the server said: one UPDATE for the emails it took, one per other
    answer. Only rows still ours and handed over (or turned unconfirmed meanwhile)."""
    if not outcomes:
        return
    name = batch[0].lease
    handed = Delivery.objects.filter(lease=name, status__in=[S.SENDING, S.UNCONFIRMED])
    sent = [pk for pk, outcome in outcomes.items() if outcome.status == "sent"]
    if sent:
        handed.filter(pk__in=sent).update(
            status=S.SENT, attempts=F("attempts") + 1, lease_until=None, error=""
        )
    by_pk = {delivery.pk: delivery for delivery in batch}
    for pk, outcome in outcomes.items():
        rows = handed.filter(pk=pk)
        attempts = by_pk[pk].attempts + 1
        if outcome.status == "unknown":
            rows.update(
                status=S.UNCONFIRMED, attempts=attempts, lease_until=None, error=outcome.error
            )
        elif outcome.status == "later" and attempts < MAX_ATTEMPTS:
            rows.update(
                status=S.PENDING,
                attempts=attempts,
                not_before=timezone.now() + retry_delay(attempts),
                error=outcome.error,
                **_NOT_HANDED_OVER,
            )
        elif outcome.status in ("later", "failed"):
            rows.update(status=S.FAILED, attempts=attempts, error=outcome.error, **_NOT_HANDED_OVER)
            if outcome.bounced:
                Suppression.objects.get_or_create(
                    email_key=by_pk[pk].email_key,
                    defaults={
                        "reason": Suppression.Reason.BOUNCED,
                        "campaign": campaign,
                        "detail": outcome.error,
                    },
                )


# A delivery the mail server refused: its link never reached anyone.
_NOT_HANDED_OVER = {
    "lease_until": None,
    "lease": "",
    "sent_at": None,
    "token_hash": None,
    "token_expires_at": None,
}


def _release(deliveries: list[Delivery], *, statuses: list[str]) -> None:
    """Back to pending, no attempt counted: these never reached the mail server."""
    if deliveries:
        Delivery.objects.filter(
            pk__in=[delivery.pk for delivery in deliveries],
            lease=deliveries[0].lease,
            status__in=statuses,
        ).update(status=S.PENDING, **_NOT_HANDED_OVER)


def _with_retries(write: Callable[[], object]) -> None:
    """Run a database write, again on a new connection after 0.5, 1, 2, 4, 8, 8 ...
    seconds while the database is away, for at most CAMPAIGN_LEASE_SECONDS; then
    the last error is raised (what was handed over stays so, later unconfirmed)."""
    deadline = time.monotonic() + settings.CAMPAIGN_LEASE_SECONDS
    pause = 0.5
    while True:
        try:
            write()
            return
        except DatabaseError:
            if time.monotonic() + pause > deadline:
                raise
            connection.close()
            time.sleep(pause)
            pause = min(8.0, pause * 2)


# By LINE


def push_leased(campaign: Campaign, deliveries: list[Delivery]) -> int:
    """Push leased LINE deliveries one by one; how many LINE took. Each is committed
    "sending" (with its link's hash) before its push, and carries its own retry key,
    so a push tried again (after a crash, or LINE's trouble) is delivered once."""
    if not deliveries:
        return 0
    handed = _hand_over_to_line(campaign, deliveries)
    blocked = [delivery for delivery in deliveries if delivery.pk not in handed]
    if blocked:
        _settle_blocked_pushes(campaign, blocked)
    going = [delivery for delivery in deliveries if delivery.pk in handed]
    name = deliveries[0].lease
    accepted: list[int] = []
    try:
        for index, delivery in enumerate(going):
            try:
                line.push_text(
                    line_user_id=delivery.line_user_id,
                    text=by_line.message(campaign, delivery),
                    retry_key=by_line.retry_key(delivery),
                )
            except line.LineError as exc:
                if exc.retryable or exc.status in (401, 403):
                    # LINE (or our access to it) is in trouble: this one again later,
                    # the rest untried, with the same keys.
                    _push_later(delivery, str(exc))
                    _with_retries(lambda rest=going[index + 1 :]: _release_pushes(rest))
                    break
                _push_failed(delivery, str(exc))
                continue
            accepted.append(delivery.pk)
    finally:
        # Sent, or LINE had the key already (409): delivered once either way.
        if accepted:
            _with_retries(
                lambda: Delivery.objects.filter(
                    pk__in=accepted, lease=name, status=S.SENDING
                ).update(status=S.SENT, attempts=F("attempts") + 1, lease_until=None, error="")
            )
    return len(accepted)


def _hand_over_to_line(campaign: Campaign, deliveries: list[Delivery]) -> set[int]:
    """One UPDATE, committed before any push: those still ours and reachable by LINE
    become "sending" with their link's hash. sent_at keeps the first hand-over, when
    LINE may first have seen the retry key."""
    now = timezone.now()
    pks = [delivery.pk for delivery in deliveries]
    name = deliveries[0].lease
    hashes = {delivery.pk: token_hash(by_line.link_token(delivery)) for delivery in deliveries}
    Delivery.objects.filter(pk__in=pks, lease=name, status=S.LEASED).filter(
        by_line.reachable(), ~_closed_account()
    ).update(
        status=S.SENDING,
        sent_at=Coalesce(F("sent_at"), Value(now)),
        lease_until=now + timedelta(seconds=settings.CAMPAIGN_LEASE_SECONDS),
        error="",
        token_hash=Case(
            *(When(pk=pk, then=Value(hashes[pk])) for pk in pks), output_field=CharField()
        ),
        token_expires_at=now + timedelta(days=campaign.link_valid_days),
    )
    return set(
        Delivery.objects.filter(pk__in=pks, lease=name, status=S.SENDING).values_list(
            "pk", flat=True
        )
    )


def _settle_blocked_pushes(campaign: Campaign, deliveries: list[Delivery]) -> None:
    """LINE deliveries no longer reachable by LINE. One pushed before (its sender died
    before LINE's answer was recorded) may have arrived: unconfirmed. Of the others,
    one whose step says "LINE, then email" and who is no longer a friend goes by email
    if the address may still be mailed; the rest are skipped with the reason."""
    name = deliveries[0].lease
    mine = Delivery.objects.filter(
        pk__in=[delivery.pk for delivery in deliveries], lease=name, status=S.LEASED
    )
    mine.filter(sent_at__isnull=False).update(
        status=S.UNCONFIRMED,
        lease_until=None,
        error="pushed to LINE before; its answer was never recorded",
    )
    fallback = CampaignStep.objects.filter(
        campaign=campaign, channel=CampaignStep.Channels.LINE_THEN_EMAIL
    ).values_list("number", flat=True)
    mine.filter(~by_line.friend_now(), ~Q(email_key=""), _sendable(), step__in=fallback).update(
        channel=Channel.EMAIL, line_user_id="", status=S.PENDING, **_NOT_HANDED_OVER
    )
    rows = mine.annotate(
        friend=ExpressionWrapper(by_line.friend_now(), output_field=BooleanField()),
        closed=Exists(LegacyAccount.objects.filter(_CLOSED, pk=OuterRef("account_id"))),
    ).values_list("pk", "friend", "closed")
    reasons: dict[str, list[int]] = {}
    for pk, friend, closed in rows:
        if closed:
            reason = "linked before sending, or marketing refused"
        elif not friend:
            reason = "not a LINE friend"
        else:
            reason = "opted out"
        reasons.setdefault(reason, []).append(pk)
    for reason, pks in reasons.items():
        Delivery.objects.filter(pk__in=pks, status=S.LEASED).update(
            status=S.SKIPPED, error=reason, lease_until=None
        )


def _push_later(delivery: Delivery, error: str) -> None:
    """LINE could not say: again after a pause with the same key, keeping sent_at and
    the link; after MAX_ATTEMPTS, unconfirmed (it may have arrived)."""
    attempts = delivery.attempts + 1
    rows = Delivery.objects.filter(pk=delivery.pk, lease=delivery.lease, status=S.SENDING)
    if attempts < MAX_ATTEMPTS:
        _with_retries(
            lambda: rows.update(
                status=S.PENDING,
                attempts=attempts,
                not_before=timezone.now() + retry_delay(attempts),
                lease="",
                lease_until=None,
                error=error[:1000],
            )
        )
    else:
        _with_retries(
            lambda: rows.update(
                status=S.UNCONFIRMED, attempts=attempts, lease_until=None, error=error[:1000]
            )
        )


def _push_failed(delivery: Delivery, error: str) -> None:
    """LINE refused this push (400: not a message LINE takes for this user)."""
    _with_retries(
        lambda: Delivery.objects.filter(
            pk=delivery.pk, lease=delivery.lease, status=S.SENDING
        ).update(
            status=S.FAILED,
            attempts=delivery.attempts + 1,
            lease_until=None,
            error=error[:1000],
        )
    )


def _release_pushes(deliveries: list[Delivery]) -> None:
    """Back to pending, untried this time; a retry key LINE may have seen stays
    good, and so does the link (sent_at and the token's hash are kept)."""
    if deliveries:
        Delivery.objects.filter(
            pk__in=[delivery.pk for delivery in deliveries],
            lease=deliveries[0].lease,
            status=S.SENDING,
        ).update(
            status=S.PENDING,
            not_before=timezone.now() + retry_delay(1),
            lease="",
            lease_until=None,
        )


def close(mails: list[BaseEmailBackend]) -> None:
    """Close connections that may already be broken (the next open() starts anew)."""
    for mail in mails:
        with contextlib.suppress(OSError, smtplib.SMTPException):
            mail.close()


# A legacy account that gets no campaign message now: linked, or its record says no
# to marketing (a re-import since planning).
_CLOSED = Q(owner__isnull=False) | Q(attributes__marketing_consent=False)


def _closed_account() -> Q:
    return Q(Exists(LegacyAccount.objects.filter(_CLOSED, pk=OuterRef("account_id"))))


def _sendable() -> Q:
    """May still be sent: address not suppressed, marketing email not refused (by a
    unified ID, or on the legacy record since planning: a re-import), legacy account
    not linked. On the delivery row itself, for the hand-over UPDATE."""
    return (
        ~Q(Exists(Suppression.objects.filter(email_key=OuterRef("email_key"))))
        & marketing_allowed(OuterRef("email_key"))
        & ~_closed_account()
    )


def _skip_blocked(deliveries: list[Delivery]) -> None:
    """Those not handed over and still leased by us were blocked meanwhile: mark
    them skipped with the reason (one query)."""
    rows = (
        Delivery.objects.filter(
            pk__in=[delivery.pk for delivery in deliveries],
            lease=deliveries[0].lease,
            status=S.LEASED,
        )
        .annotate(
            suppressed=Exists(Suppression.objects.filter(email_key=OuterRef("email_key"))),
            allowed=ExpressionWrapper(
                marketing_allowed(OuterRef("email_key")), output_field=BooleanField()
            ),
        )
        .values_list(
            "pk",
            "suppressed",
            "allowed",
            "account__owner_id",
            "account__attributes__marketing_consent",
        )
    )
    reasons: dict[str, list[int]] = {}
    for pk, suppressed, allowed, owner_id, record_consent in rows:
        if suppressed:
            reason = "suppressed"
        elif not allowed or record_consent is False:
            reason = "marketing email refused"
        elif owner_id is not None:
            reason = "linked before sending"
        else:
            continue
        reasons.setdefault(reason, []).append(pk)
    for reason, pks in reasons.items():
        Delivery.objects.filter(pk__in=pks, status=S.LEASED).update(
            status=S.SKIPPED, error=reason, lease_until=None
        )


def _idle(campaign_id: int) -> Run:
    """Nothing to lease now: wait for retries or leases to come due, or finish."""
    now = timezone.now()
    due = Delivery.objects.filter(
        campaign_id=campaign_id, status__in=[S.PENDING, S.LEASED, S.SENDING]
    ).aggregate(pending=Min("not_before"), leased=Min("lease_until"))
    upcoming = [moment for moment in (due["pending"], due["leased"]) if moment is not None]
    if upcoming:
        wait = max(1.0, (min(upcoming) - now).total_seconds())
        # Long waits (retries minutes away) are left to beat's tick, which restarts
        # senders when deliveries come due.
        return Run(keep_sending=wait <= settings.CAMPAIGN_TICK_SECONDS, wait_seconds=wait)
    finish_if_done(campaign_id)
    return Run()


def finish_if_done(campaign_id: int) -> bool:
    """Finished: every step planned and no delivery left to send or to settle."""
    if CampaignStep.objects.filter(campaign_id=campaign_id, planned_at__isnull=True).exists():
        return False
    if Delivery.objects.filter(
        campaign_id=campaign_id, status__in=[S.PENDING, S.LEASED, S.SENDING]
    ).exists():
        return False
    return bool(
        Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.SENDING).update(
            status=Campaign.Status.FINISHED, finished_at=timezone.now()
        )
    )
