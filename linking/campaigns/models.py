"""Campaigns that nudge legacy customers to link, their deliveries and suppressions.

A delivery is one email of one step to one legacy account. The database allows one
delivery per (campaign, step, account); a sender leases deliveries and
commits them "sending" before it hands them to the mail server, so a delivery handed
over is never sent again (linking.campaigns.sending).
"""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from linking.models import Language, LegacyAccount, LegacyService


class Campaign(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        SCHEDULED = "scheduled", _("scheduled")
        SENDING = "sending", _("sending")
        PAUSED = "paused", _("paused")
        FINISHED = "finished", _("finished")
        CANCELLED = "cancelled", _("cancelled")

    name = models.CharField(_("campaign name"), max_length=200)
    services = models.ManyToManyField(
        LegacyService, related_name="campaigns", verbose_name=_("target services")
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.DRAFT
    )
    start_at = models.DateTimeField(_("start at"), default=timezone.now)

    # Audience filters, on top of "unlinked, has an email, not suppressed, consents".
    # Empty: the whole audience of the services. Set: only these accounts (e.g. a
    # 名寄せ group from the staff matching report), still within the filters.
    accounts = models.ManyToManyField(
        "linking.LegacyAccount",
        blank=True,
        related_name="+",
        verbose_name=_("only these legacy accounts"),
        help_text=_("Leave empty to invite the whole audience of the services."),
    )
    min_points = models.PositiveIntegerField(_("at least this many points"), null=True, blank=True)
    active_since = models.DateField(
        _("active since"),
        null=True,
        blank=True,
        help_text=_('Only records whose "last_active" attribute (YYYY-MM-DD) is on or after.'),
    )

    # Content. Placeholders: {{ name }}, {{ service }}, {{ member_number }},
    # {{ incentive }}, {{ link }}.
    subject_ja = models.CharField(_("subject (Japanese)"), max_length=200)
    text_ja = models.TextField(_("text body (Japanese)"))
    html_ja = models.TextField(_("HTML body (Japanese)"), blank=True)
    subject_en = models.CharField(_("subject (English)"), max_length=200, blank=True)
    text_en = models.TextField(_("text body (English)"), blank=True)
    html_en = models.TextField(_("HTML body (English)"), blank=True)
    # A LINE message is a chat bubble, not a letter: its own short text (no subject,
    # no HTML, no sender footer), with the same placeholders.
    line_text_ja = models.TextField(
        _("LINE message (Japanese)"),
        blank=True,
        help_text=_("For steps sent by LINE. Must contain {{ link }}."),
    )
    line_text_en = models.TextField(
        _("LINE message (English)"),
        blank=True,
        help_text=_("Empty: the Japanese message is sent to everyone."),
    )

    # Sender footer (特定電子メール法: who sends, where, how to reach them).
    from_email = models.CharField(
        _("from"), max_length=254, blank=True, help_text=_("Empty: DEFAULT_FROM_EMAIL.")
    )
    sender_company = models.CharField(_("company name"), max_length=200)
    sender_address = models.CharField(_("company address"), max_length=300)
    sender_contact = models.CharField(_("contact"), max_length=300)

    rate_per_minute = models.PositiveIntegerField(
        _("emails per minute"),
        default=600,
        help_text=_("Across all workers together."),
    )
    link_valid_days = models.PositiveSmallIntegerField(_("link valid for (days)"), default=30)
    attribution_days = models.PositiveSmallIntegerField(_("attribution window (days)"), default=30)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    # Written by every sender run: beat restarts a campaign whose senders all died.
    senders_seen_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ("-created_at",)
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        constraints = [
            models.CheckConstraint(
                condition=Q(rate_per_minute__gt=0), name="campaign_rate_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.SCHEDULED, self.Status.SENDING, self.Status.PAUSED)


class Channel(models.TextChoices):
    """How a delivery reaches its legacy customer."""

    EMAIL = "email", pgettext_lazy("channel", "email")
    LINE = "line", pgettext_lazy("channel", "LINE")


class CampaignStep(models.Model):
    """Step 0 is the first message; later steps are reminders to those still unlinked."""

    class Channels(models.TextChoices):
        """What a step sends by. LINE_THEN_EMAIL: LINE to a friend of the Official
        Account with a LINE user ID on record, email to everyone else."""

        EMAIL = "email", pgettext_lazy("channel", "email")
        LINE = "line", _("LINE only")
        LINE_THEN_EMAIL = "line_then_email", _("LINE, email to those not friends")

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="steps")
    number = models.PositiveSmallIntegerField(_("step"))
    days_after = models.PositiveSmallIntegerField(
        _("days after the start"), default=0, help_text=_("0 for the first email.")
    )
    channel = models.CharField(
        _("channel"), max_length=15, choices=Channels.choices, default=Channels.EMAIL
    )
    planned_at = models.DateTimeField(_("planned at"), null=True, blank=True, editable=False)

    class Meta:
        ordering = ("campaign", "number")
        verbose_name = _("step")
        verbose_name_plural = _("steps")
        constraints = [
            models.UniqueConstraint(fields=["campaign", "number"], name="campaign_step_unique"),
            models.CheckConstraint(
                condition=~Q(number=0) | Q(days_after=0), name="campaign_first_step_at_start"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}#{self.number}"

    def due_at(self, started_at) -> timezone.datetime:
        return started_at + timedelta(days=self.days_after)


class Delivery(models.Model):
    """One message of one step to one legacy account, by email or by LINE."""

    # May have reached the address: the mail server took it, or may have.
    REACHED = ("sent", "unconfirmed")

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        LEASED = "leased", _("leased by a sender")
        SENDING = "sending", _("handed to the mail server")
        SENT = "sent", _("sent")
        UNCONFIRMED = "unconfirmed", _("unconfirmed")
        FAILED = "failed", _("failed")
        SKIPPED = "skipped", _("skipped")
        CANCELLED = "cancelled", _("cancelled")

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("campaign")
    )
    step = models.PositiveSmallIntegerField(_("step"))
    account = models.ForeignKey(
        LegacyAccount,
        on_delete=models.CASCADE,
        related_name="campaign_deliveries",
        verbose_name=_("legacy account"),
    )
    channel = models.CharField(
        _("channel"), max_length=5, choices=Channel.choices, default=Channel.EMAIL
    )
    email = models.CharField(_("email"), max_length=254)
    email_key = models.CharField(_("email key"), max_length=254)
    line_user_id = models.CharField(_("LINE user ID"), max_length=33, blank=True)
    language = models.CharField(_("language"), max_length=2, choices=Language.choices)

    # pending -> leased -> sending (committed before the mail server gets it) -> sent,
    # failed or back to pending (refused for now); a "sending" delivery whose outcome
    # was never recorded becomes unconfirmed when its lease ends, and is never resent.
    # By LINE, a "sending" one whose lease ended is pushed again with the same retry
    # key (LINE delivers a key once), while LINE still remembers the key.
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    not_before = models.DateTimeField(_("not before"), default=timezone.now)
    # A sender holds a leased or sending delivery until lease_until; lease names
    # that sender run, so a run whose lease ran out can no longer touch the row.
    lease_until = models.DateTimeField(_("leased until"), null=True, blank=True)
    lease = models.CharField(max_length=32, blank=True)
    error = models.TextField(_("error"), blank=True)
    sent_at = models.DateTimeField(_("handed to the mail server at"), null=True, blank=True)

    # The personal link: only the SHA-256 of its random token is kept.
    token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True)
    token_expires_at = models.DateTimeField(_("link expires at"), null=True, blank=True)

    clicked_at = models.DateTimeField(_("clicked at"), null=True, blank=True)
    linked_at = models.DateTimeField(_("linked through the campaign at"), null=True, blank=True)
    unsubscribed_at = models.DateTimeField(_("unsubscribed at"), null=True, blank=True)
    bounced_at = models.DateTimeField(_("bounced at"), null=True, blank=True)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "step", "account"], name="delivery_once_per_step"
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["sending", "sent", "unconfirmed"])
                | Q(sent_at__isnull=False),
                name="delivery_handed_over_has_sent_at",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["leased", "sending"])
                | Q(lease_until__isnull=False) & ~Q(lease=""),
                name="delivery_leased_names_its_lease",
            ),
            models.CheckConstraint(
                condition=~Q(channel="line") | ~Q(line_user_id=""),
                name="delivery_by_line_has_line_user_id",
            ),
        ]
        indexes = [
            models.Index(
                fields=["campaign", "status", "not_before"],
                name="delivery_to_send",
                condition=Q(status__in=["pending", "leased", "sending"]),
            ),
            models.Index(fields=["email_key"], name="delivery_email_key"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}#{self.step} → {self.account_id}"


class Suppression(models.Model):
    """An address that gets no campaign email again: unsubscribed or hard-bounced."""

    class Reason(models.TextChoices):
        UNSUBSCRIBED = "unsubscribed", _("unsubscribed")
        BOUNCED = "bounced", _("hard bounce")
        COMPLAINED = "complained", _("complaint")
        STAFF = "staff", _("added by staff")

    email_key = models.CharField(_("email key"), max_length=254, unique=True)
    reason = models.CharField(_("reason"), max_length=15, choices=Reason.choices)
    campaign = models.ForeignKey(
        Campaign,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("campaign"),
    )
    detail = models.TextField(_("detail"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        ordering = ("-created_at",)
        verbose_name = _("suppression")
        verbose_name_plural = _("suppressions")

    def __str__(self) -> str:
        return f"{self.email_key} ({self.reason})"
