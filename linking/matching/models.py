"""Probabilistic 名寄せ: versioned model parameters, runs, and the candidate groups a
run found for staff to review. Nothing here links an account to a customer."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from linking.models import LegacyAccount


class ModelVersion(models.Model):
    """Splink's settings JSON, trained parameters included: a run can be repeated."""

    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    splink_settings = models.JSONField(_("Splink settings"))
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("matching model version")
        verbose_name_plural = _("matching model versions")
        ordering = ["-pk"]

    def __str__(self) -> str:
        return f"v{self.pk}"


class MatchRun(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    backend = models.CharField(_("backend"), max_length=10, default="duckdb")
    progress = models.CharField(_("progress"), max_length=100, blank=True)
    model_version = models.ForeignKey(
        ModelVersion,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="runs",
        verbose_name=_("model version"),
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("started by"),
    )
    input_records = models.IntegerField(_("input records"), default=0)
    input_services = models.IntegerField(_("input services"), default=0)
    pairs_scored = models.BigIntegerField(_("pairs scored"), default=0)
    groups_found = models.IntegerField(_("groups found"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    duration_seconds = models.FloatField(_("duration (s)"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("matching run")
        verbose_name_plural = _("matching runs")
        ordering = ["-pk"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_status_display()}"


class CandidateGroup(models.Model):
    """Accounts at two or more services that are probably one person."""

    class Status(models.TextChoices):
        OPEN = "open", _("To review")
        CONFIRMED = "confirmed", _("Probably the same person")
        DISMISSED = "dismissed", _("Dismissed")

    run = models.ForeignKey(
        MatchRun, on_delete=models.CASCADE, related_name="groups", verbose_name=_("run")
    )
    probability = models.FloatField(_("match probability"))
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.OPEN
    )
    # Per pair: {"a": account pk, "b": account pk, "probability": p, "weights": {field: w}}
    evidence = models.JSONField(_("evidence"), default=list)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("reviewed by"),
    )
    reviewed_at = models.DateTimeField(_("reviewed at"), null=True, blank=True)
    accounts = models.ManyToManyField(
        LegacyAccount, through="CandidateMember", related_name="+", verbose_name=_("accounts")
    )

    class Meta:
        verbose_name = _("candidate group")
        verbose_name_plural = _("candidate groups")
        ordering = ["-probability", "pk"]
        indexes = [models.Index(fields=["status", "-probability"], name="matching_group_status")]

    def __str__(self) -> str:
        return f"#{self.pk}"


class CandidateMember(models.Model):
    group = models.ForeignKey(CandidateGroup, on_delete=models.CASCADE, related_name="members")
    account = models.ForeignKey(LegacyAccount, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group", "account"], name="matching_member_unique")
        ]

    def __str__(self) -> str:
        return f"{self.group_id}:{self.account_id}"
