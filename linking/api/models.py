"""Group services as clients of the site: what each may see, every API call it
made, and the webhooks it is sent.

A client's credentials live in allauth's OpenID Connect client registry
(allauth.idp.oidc.models.Client): one registry, one secret (stored hashed), for
both the API (client-credentials grant) and sign-in with the unified ID
(authorization-code grant). ServiceClient adds what is ours: the legacy services
the client may see, its rate limit and its webhook endpoint.
"""

import base64
import secrets
import uuid
from datetime import datetime, timedelta

from allauth.idp.oidc.models import Client, Token
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts import outbound
from accounts.audit import AppendOnlyModel
from linking.models import LegacyAccount, LegacyService

# OAuth 2 scopes of the API; a client may request only those listed on its Client.
SCOPE_RESOLVE = "resolve"
SCOPE_REVERSE = "reverse"
SCOPE_EVENTS = "events"
SCOPE_LINK_REQUESTS = "link_requests"
API_SCOPES = (SCOPE_RESOLVE, SCOPE_REVERSE, SCOPE_EVENTS, SCOPE_LINK_REQUESTS)


def new_webhook_secret() -> str:
    """Standard Webhooks' format: whsec_ and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class ServiceClient(models.Model):
    """A group service's access: which legacy services' accounts it may see."""

    client = models.OneToOneField(
        Client,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="service_access",
        verbose_name=_("client"),
    )
    services = models.ManyToManyField(
        LegacyService,
        blank=True,
        related_name="+",
        verbose_name=_("visible services"),
        help_text=_("The API and webhooks show this client only accounts at these services."),
    )
    rate_limit_per_minute = models.PositiveIntegerField(_("requests per minute"), default=60_000)
    return_urls = models.JSONField(
        _("return URLs of link requests"),
        default=list,
        blank=True,
        help_text=_(
            "Where a customer may be sent back after a link request, matched exactly, e.g. "
            '["https://store.example.jp/unified-id/return"].'
        ),
    )
    webhook_url = models.URLField(_("webhook URL"), blank=True)
    # The HMAC key both sides must hold, so it is kept as is (not hashed); shown to
    # staff once, when it is made or rotated.
    webhook_secret = models.CharField(
        _("webhook signing secret"), max_length=100, default=new_webhook_secret, editable=False
    )
    # After a rotation the old secret signs too (a second signature) until it is
    # retired, so a receiver can switch to the new one without missing an event.
    webhook_previous_secret = models.CharField(max_length=100, blank=True, editable=False)
    webhook_previous_secret_until = models.DateTimeField(
        _("previous webhook secret signs until"), null=True, blank=True, editable=False
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("service client")
        verbose_name_plural = _("service clients")

    def __str__(self) -> str:
        return self.client.name

    def clean_fields(self, exclude=None) -> None:
        super().clean_fields(exclude)
        if self.webhook_url and "webhook_url" not in (exclude or ()):
            try:
                outbound.check_url(self.webhook_url)
            except ValidationError as error:
                raise ValidationError({"webhook_url": error.messages}) from None

    def rotate_webhook_secret(self) -> str:
        """A new secret; the current one keeps signing alongside it for
        WEBHOOK_SECRET_OVERLAP_HOURS, or until retired."""
        overlap = timedelta(hours=settings.WEBHOOK_SECRET_OVERLAP_HOURS)
        self.webhook_previous_secret = self.webhook_secret
        self.webhook_previous_secret_until = timezone.now() + overlap
        self.webhook_secret = new_webhook_secret()
        self.save(
            update_fields=[
                "webhook_secret",
                "webhook_previous_secret",
                "webhook_previous_secret_until",
            ]
        )
        return self.webhook_secret

    def retire_previous_webhook_secret(self) -> None:
        self.webhook_previous_secret, self.webhook_previous_secret_until = "", None
        self.save(update_fields=["webhook_previous_secret", "webhook_previous_secret_until"])

    def signing_secrets(self, now: datetime) -> list[str]:
        """Every secret that signs a request sent at `now`, the current one first."""
        until = self.webhook_previous_secret_until
        if self.webhook_previous_secret and until is not None and until > now:
            return [self.webhook_secret, self.webhook_previous_secret]
        return [self.webhook_secret]


class LinkRequest(models.Model):
    """A link request pushed by a group service's backend for its signed-in customer
    (like RFC 9126's pushed authorization request): the browser carries only an
    opaque handle; the result goes back as a one-time code the backend exchanges.
    Handle and code are stored as SHA-256 digests (both are 256 random bits)."""

    class Result(models.TextChoices):
        LINKED = "linked", _("linked")
        ALREADY_LINKED = "already_linked", _("already theirs")
        LINKED_ELSEWHERE = "linked_elsewhere", _("linked to another unified ID")
        CANCELLED = "cancelled", _("cancelled")

    client = models.ForeignKey(
        ServiceClient, on_delete=models.CASCADE, related_name="link_requests"
    )
    account = models.ForeignKey(LegacyAccount, on_delete=models.CASCADE, related_name="+")
    return_url = models.CharField(_("return URL"), max_length=500)
    state = models.CharField(_("state"), max_length=200, blank=True)
    handle_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"))
    # The first signed-in customer who opens the link; nobody else may use it.
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
    )
    result = models.CharField(_("result"), max_length=20, choices=Result.choices, blank=True)
    reference = models.CharField(_("audit reference"), max_length=8, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    code_hash = models.CharField(max_length=64, null=True, blank=True, unique=True)
    code_expires_at = models.DateTimeField(null=True, blank=True)
    exchanged_at = models.DateTimeField(_("exchanged at"), null=True, blank=True)

    class Meta:
        verbose_name = _("link request")
        verbose_name_plural = _("link requests")

    def __str__(self) -> str:
        return f"link request {self.pk} ({self.result or 'open'})"


class ApiCall(AppendOnlyModel):
    """One API call: who asked what, when, and what they were told. Compact on
    purpose (one narrow row per call, no foreign-key checks on the hot path)."""

    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    client_id = models.CharField(_("client"), max_length=100)
    endpoint = models.CharField(_("endpoint"), max_length=16)
    status = models.PositiveSmallIntegerField(_("status"))
    # What was asked: "service:external_id" or a unified ID; empty for a batch.
    # "service:external_id": a slug of up to 50 characters, a colon, up to 64.
    subject = models.CharField(_("subject"), max_length=120, blank=True)
    items = models.PositiveIntegerField(_("items"), default=1)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)

    class Meta:
        ordering = ("-id",)
        verbose_name = _("API call")
        verbose_name_plural = _("API calls")
        indexes = [models.Index(fields=["client_id", "created_at"], name="api_call_client")]

    def __str__(self) -> str:
        return f"{self.client_id} {self.endpoint} {self.status}"


class WebhookDelivery(models.Model):
    """One event for one client: the exact body sent, and where its delivery stands.
    Written in the transaction of the change it reports (an outbox), so a change
    that rolls back sends nothing and a committed one is never lost."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        SENDING = "sending", _("sending")
        DELIVERED = "delivered", _("delivered")
        DEAD = "dead", _("dead-lettered")

    class EventType(models.TextChoices):
        LINKED = "account.linked", _("account linked")
        UNLINKED = "account.unlinked", _("account unlinked")
        CUSTOMER_DELETED = "customer.deleted", _("unified ID deleted")
        PING = "ping", _("test ping")

    event_id = models.UUIDField(_("event ID"), default=uuid.uuid4, editable=False)
    event_type = models.CharField(_("event"), max_length=32, choices=EventType.choices)
    client = models.ForeignKey(
        ServiceClient, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("client")
    )
    # Where the last attempt went: each attempt reads the client's current URL.
    url = models.URLField(_("URL"), blank=True)
    body = models.TextField(_("body"))
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), default=timezone.now)
    lease_until = models.DateTimeField(_("leased until"), null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(
        _("last HTTP status"), null=True, blank=True
    )
    last_error = models.CharField(_("last error"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        constraints = [
            models.UniqueConstraint(
                fields=["event_id", "client"], name="webhook_delivery_once_per_client"
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="webhook_delivery_due",
                condition=Q(status__in=["pending", "sending"]),
            ),
            # For pruning the finished ones (retention.prune_webhook_deliveries).
            models.Index(fields=["created_at", "id"], name="webhook_delivery_created"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.client_id} ({self.status})"


class WebhookAttempt(models.Model):
    """One POST of a delivery and what came back."""

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log"
    )
    number = models.PositiveSmallIntegerField(_("attempt"))
    at = models.DateTimeField(_("at"), default=timezone.now)
    status_code = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=300, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)

    class Meta:
        ordering = ("delivery", "number")
        verbose_name = _("webhook attempt")
        verbose_name_plural = _("webhook attempts")

    def __str__(self) -> str:
        return f"#{self.number} {self.status_code or self.error}"


class AccountSequence(models.Model):
    """The last event sequence number of one legacy account. Events about an
    account carry the next number, taken in the transaction that writes them, so
    a receiver can drop an event older than one it has already applied."""

    account = models.OneToOneField(
        LegacyAccount, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    last = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.account_id}: {self.last}"


class ProviderToken(Token):
    """allauth's OpenID provider token as staff see it in the admin (a proxy: no
    table of its own), named in both languages."""

    class Meta:
        proxy = True
        verbose_name = _("sign-in token")
        verbose_name_plural = _("sign-in tokens")
