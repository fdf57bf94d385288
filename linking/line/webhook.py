"""Webhook events from the LINE Official Account: checked, deduplicated, handled.

The SDK's SignatureValidator checks x-line-signature (HMAC-SHA256 of the body with
the Messaging API channel secret); its models type the events. Each event is handled
once, by its webhookEventId; one older than MAX_AGE (a redelivery: REDELIVERY_MAX_AGE)
is refused, so a captured request cannot be replayed once its record is pruned.
What to tell LINE afterwards (a reply, a link token, a friendship check) goes to a
worker once the event's record commits, as LINE recommends: the webhook answers without
waiting for LINE, however slow LINE is.
"""

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from unicodedata import normalize

from celery import Signature, Task, shared_task
from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import override
from linebot.v3.webhook import SignatureValidator
from linebot.v3.webhooks import (
    AccountLinkEvent,
    Event,
    FollowEvent,
    MessageEvent,
    TextMessageContent,
    UnfollowEvent,
    UserSource,
)

from linking.line import account_link, client, friendship
from linking.line.models import AccountLinkNonce, LinkToken, WebhookEvent

logger = logging.getLogger(__name__)
MAX_AGE = timedelta(minutes=5)
REDELIVERY_MAX_AGE = timedelta(hours=24)
# What a friend sends the bot to start linking (NFKC: full-width ＩＤ too).
LINK_COMMANDS = {"統合idと連携": "ja", "link unified id": "en"}


class Refused(Exception):
    """The request as a whole is refused; status is the HTTP answer."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def receive(*, body: bytes, signature: str, request: HttpRequest) -> int:
    """Handle a webhook request; returns how many events were handled (not refused)."""
    if not settings.LINE_MESSAGING_CHANNEL_SECRET:
        raise Refused("the LINE Official Account is not configured", 403)
    if not signature:
        raise Refused("x-line-signature is missing", 400)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refused("the body is not UTF-8", 400) from exc
    if not SignatureValidator(settings.LINE_MESSAGING_CHANNEL_SECRET).validate(text, signature):
        raise Refused("x-line-signature does not match", 401)
    try:
        raw_events = json.loads(text)["events"]
        if not isinstance(raw_events, list):
            raise TypeError("events is not a list")
    except (ValueError, KeyError, TypeError) as exc:
        raise Refused("not a LINE webhook body", 400) from exc
    return sum(_handle(event, request) for event in _events(raw_events))


def _events(raw_events: list) -> list[Event]:
    """The SDK's typed events; one of a type this SDK does not know (LINE adds new
    ones) or malformed is skipped, not the whole request."""
    events = []
    for raw in raw_events:
        try:
            events.append(Event.from_dict(raw))
        except (ValueError, KeyError, TypeError, AttributeError):
            logger.info("LINE webhook event skipped: unknown type or malformed")
    return events


def prune() -> int:
    """Forget what no event can come back for: webhook events older than the oldest
    one accepted (so a replay is still refused by its age), expired nonces and link
    tokens."""
    now = timezone.now()
    events, _ = WebhookEvent.objects.filter(received_at__lt=now - 2 * REDELIVERY_MAX_AGE).delete()
    nonces, _ = AccountLinkNonce.objects.filter(expires_at__lt=now).delete()
    tokens, _ = LinkToken.objects.filter(expires_at__lt=now).delete()
    return events + nonces + tokens


def _handle(event: Event, request: HttpRequest) -> bool:
    with transaction.atomic():
        if not _first_time(event):
            return False
        line_user_id = _user(event)
        answer = _apply(event, line_user_id, request) if line_user_id else None
        if answer is not None:
            transaction.on_commit(answer.delay, robust=True)
    return True


def _first_time(event: Event) -> bool:
    """Record the event; False if it was seen before or is too old to trust."""
    occurred_at = datetime.fromtimestamp(event.timestamp / 1000, tz=UTC)
    redelivery = bool(event.delivery_context and event.delivery_context.is_redelivery)
    age = timezone.now() - occurred_at
    if age > (REDELIVERY_MAX_AGE if redelivery else MAX_AGE):
        logger.warning("LINE webhook event %s refused: %s old", event.webhook_event_id, age)
        return False
    try:
        with transaction.atomic():
            WebhookEvent.objects.create(
                webhook_event_id=event.webhook_event_id,
                event_type=event.type,
                line_user_id=_user(event) or "",
                occurred_at=occurred_at,
                redelivery=redelivery,
            )
    except IntegrityError:
        logger.info("LINE webhook event %s already handled", event.webhook_event_id)
        return False
    return True


def _user(event: Event) -> str | None:
    source = event.source
    if isinstance(source, UserSource) and friendship.LINE_USER_ID.fullmatch(source.user_id or ""):
        return source.user_id
    return None


def _apply(event: Event, line_user_id: str, request: HttpRequest) -> Signature | None:
    """The event's effect in the database; the task that tells LINE, if anything."""
    at = datetime.fromtimestamp(event.timestamp / 1000, tz=UTC)
    if isinstance(event, FollowEvent):
        friendship.record(line_user_id=line_user_id, is_friend=True, at=at)
    elif isinstance(event, UnfollowEvent):
        friendship.record(line_user_id=line_user_id, is_friend=False, at=at)
    elif isinstance(event, AccountLinkEvent):
        outcome = account_link.complete(
            line_user_id=line_user_id,
            result=event.link.result or "",
            nonce=event.link.nonce or "",
            request=request,
        )
        return answer_account_link.si(event.reply_token, line_user_id, _link_answer(outcome))
    elif isinstance(event, MessageEvent) and isinstance(event.message, TextMessageContent):
        language = LINK_COMMANDS.get(normalize("NFKC", event.message.text).strip().casefold())
        if language:
            friendship.friend(line_user_id)
            return send_link.si(event.reply_token, line_user_id, language)
    return None


@contextmanager
def _retried_while_line_fails(task: Task) -> Iterator[None]:
    """LINE's own trouble (no answer, 429, 5xx) is tried again 1, 2 and 4 s later, well
    within a reply token's short life; a refusal (a spent or expired reply token) is
    logged. A reply token is taken once, so no answer reaches a friend twice."""
    try:
        yield
    except client.LineError as exc:
        if exc.retryable and task.request.retries < task.max_retries:
            raise task.retry(exc=exc, countdown=2**task.request.retries) from exc
        logger.warning("LINE call for %s failed: %s", task.name, exc)


@shared_task(name="line.send_link", bind=True, acks_late=True, max_retries=3)
def send_link(self: Task, reply_token: str | None, line_user_id: str, language: str) -> None:
    """Answer the link command with our link page, carrying a new link token."""
    with _retried_while_line_fails(self):
        link_token = account_link.issue_link_token(line_user_id=line_user_id)
        url = account_link.link_page_url(link_token)
        with override(language):
            text = _(
                "To link LINE with your unified ID, open this page within 10 minutes "
                "and sign in:\n%(url)s"
            ) % {"url": url}
        if reply_token:
            client.reply_text(reply_token=reply_token, text=text)


def _link_answer(outcome: account_link.Outcome) -> str:
    if outcome.linked:
        return _("LINE is now linked with your unified ID.")
    if outcome.reason == "taken":
        return _("This LINE account is already linked with another unified ID.")
    return _("Linking did not finish. Send 「統合IDと連携」 to try again.")


@shared_task(name="line.answer_account_link", bind=True, acks_late=True, max_retries=3)
def answer_account_link(
    self: Task, reply_token: str | None, line_user_id: str, answer: str
) -> None:
    """After an accountLink event: whether the friend still has the Official Account,
    and the outcome, as a reply."""
    with _retried_while_line_fails(self):
        friendship.refresh(line_user_id=line_user_id)
        if reply_token:
            client.reply_text(reply_token=reply_token, text=answer)
