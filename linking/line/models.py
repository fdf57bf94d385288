"""The LINE Official Account channel: who is a friend, which unified ID a friend is
bound to (by LINE's account link), the single-use nonces of that flow, and the
webhook events already handled (so a replayed event is refused).

A LINE user ID is "U" and 32 hex digits, per provider: the Official Account and
LINE Login share them when both channels belong to the same provider.
"""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

LINE_USER_ID_PATTERN = r"^U[0-9a-f]{32}$"
line_user_id_validator = RegexValidator(LINE_USER_ID_PATTERN, _("Not a LINE user ID."))


class LineFriend(models.Model):
    """A LINE user the Official Account knows of, and the unified ID it is bound to."""

    line_user_id = models.CharField(
        _("LINE user ID"), max_length=33, unique=True, validators=[line_user_id_validator]
    )
    customer = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="line_friend",
        verbose_name=_("customer"),
    )
    is_friend = models.BooleanField(_("friend of the Official Account"), default=False)
    # When LINE says the state changed (the event's timestamp): an older event that
    # arrives late changes nothing.
    followed_at = models.DateTimeField(_("followed at"), null=True, blank=True)
    unfollowed_at = models.DateTimeField(_("unfollowed at"), null=True, blank=True)
    linked_at = models.DateTimeField(_("linked at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("LINE friend")
        verbose_name_plural = _("LINE friends")
        constraints = [
            models.CheckConstraint(
                condition=Q(line_user_id__regex=LINE_USER_ID_PATTERN),
                name="line_friend_user_id_format",
            ),
            models.CheckConstraint(
                condition=Q(customer__isnull=True) | Q(linked_at__isnull=False),
                name="line_friend_bound_has_linked_at",
            ),
        ]

    def __str__(self) -> str:
        return self.line_user_id


class LinkToken(models.Model):
    """A link token our bot obtained from LINE for a friend and sent them: our page
    opens only for these, once, while LINE honours them (10 minutes). Stored as its
    SHA-256, in the database so every web process knows it."""

    token_hash = models.CharField(max_length=64, unique=True)
    line_user_id = models.CharField(_("LINE user ID"), max_length=33)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"))
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)

    class Meta:
        verbose_name = _("LINE link token")
        verbose_name_plural = _("LINE link tokens")
        indexes = [models.Index(fields=["expires_at"], name="line_link_token_expires")]

    def __str__(self) -> str:
        return f"link token {self.pk} ({'used' if self.used_at else 'open'})"


class AccountLinkNonce(models.Model):
    """One confirmation of "bind my LINE to this unified ID": the nonce we hand to
    LINE's accountLink dialog. Only its SHA-256 digest is stored (it is 256 random
    bits); it is spent once, by the accountLink event that carries it."""

    nonce_hash = models.CharField(max_length=64, unique=True)
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("customer"),
    )
    link_token = models.CharField(_("link token"), max_length=100)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"))
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)
    line_user_id = models.CharField(_("LINE user ID"), max_length=33, blank=True)

    class Meta:
        verbose_name = _("LINE account-link nonce")
        verbose_name_plural = _("LINE account-link nonces")
        indexes = [models.Index(fields=["expires_at"], name="line_nonce_expires")]

    def __str__(self) -> str:
        return f"nonce {self.pk} ({'used' if self.used_at else 'open'})"


class WebhookEvent(models.Model):
    """A webhook event from LINE already handled, by its webhookEventId: the same
    event again (LINE's redelivery, or someone replaying a captured request) is
    refused. Kept longer than the oldest event the webhook accepts."""

    webhook_event_id = models.CharField(_("webhook event ID"), max_length=64, unique=True)
    event_type = models.CharField(_("event type"), max_length=32)
    line_user_id = models.CharField(_("LINE user ID"), max_length=33, blank=True)
    occurred_at = models.DateTimeField(_("occurred at"))
    received_at = models.DateTimeField(_("received at"), default=timezone.now, db_index=True)
    redelivery = models.BooleanField(_("redelivery"), default=False)

    class Meta:
        verbose_name = _("LINE webhook event")
        verbose_name_plural = _("LINE webhook events")

    def __str__(self) -> str:
        return f"{self.event_type} {self.webhook_event_id}"
