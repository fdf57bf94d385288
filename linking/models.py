"""Legacy services, their accounts, and the history of links to unified IDs.

Ownership is one nullable column (LegacyAccount.owner), so the database itself
guarantees a legacy account has at most one owner; a claim is a conditional
UPDATE ... WHERE owner_id IS NULL. LinkEvent is append-only,
as is accounts.AuditEvent.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from accounts import keys
from accounts.audit import ActorKind, AppendOnlyModel
from linking.line.models import LINE_USER_ID_PATTERN, line_user_id_validator


class Proof(models.TextChoices):
    """How a customer (or staff) showed that a legacy account is theirs."""

    PASSWORD = "password", _("legacy password")
    CODE = "code", _("one-time code")
    OIDC = "oidc", _("sign-in at the service")
    EMAIL_MATCH = "email_match", _("verified email match")
    CAMPAIGN = "campaign", _("campaign link")
    STAFF = "staff", _("staff assisted")
    VOUCHED = "vouched", _("vouched by the service")


class Language(models.TextChoices):
    JA = "ja", _("Japanese")
    EN = "en", _("English")


class LegacyService(models.Model):
    """A group service with its own customer IDs (the store, the app, the POS...)."""

    code = models.SlugField(_("code"), unique=True)
    name_ja = models.CharField(_("name (Japanese)"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=100, blank=True)
    accepted_proofs = models.JSONField(
        _("accepted proofs"),
        default=list,
        blank=True,
        help_text=_('Which proofs of ownership this service accepts, e.g. ["code", "oidc"].'),
    )
    oidc_server_url = models.URLField(_("OIDC server URL"), blank=True)
    oidc_client_id = models.CharField(_("OIDC client ID"), max_length=200, blank=True)
    oidc_client_secret = models.CharField(_("OIDC client secret"), max_length=200, blank=True)
    oidc_external_id_claim = models.CharField(
        _("claim carrying the external ID"), max_length=100, default="sub", blank=True
    )
    incentive_ja = models.TextField(_("incentive (Japanese)"), blank=True)
    incentive_en = models.TextField(_("incentive (English)"), blank=True)
    default_language = models.CharField(
        _("default language"), max_length=2, choices=Language.choices, default=Language.JA
    )
    link_page_url = models.URLField(
        _("the service's own link page"),
        blank=True,
        help_text=_(
            "Where {{ service_link }} in a campaign email points (e.g. the store's page with "
            "the link button); empty: the personal link to this site."
        ),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        ordering = ("code",)
        verbose_name = _("legacy service")
        verbose_name_plural = _("legacy services")

    def __str__(self) -> str:
        return self.name

    def accepts(self, proof: str) -> bool:
        return proof in Proof.values and proof in (self.accepted_proofs or [])

    @property
    def name(self) -> str:
        return self._localized(self.name_ja, self.name_en)

    @property
    def incentive(self) -> str:
        return self._localized(self.incentive_ja, self.incentive_en)

    @staticmethod
    def _localized(ja: str, en: str) -> str:
        # Japanese is the source text; English falls back to it when missing.
        if (get_language() or "ja").startswith("en") and en:
            return en
        return ja or en


class LegacyAccount(models.Model):
    """A customer record at one legacy service, identified there by external_id."""

    # No index of its own: the unique (service, external_id) index starts with it.
    service = models.ForeignKey(
        LegacyService,
        on_delete=models.PROTECT,
        related_name="accounts",
        verbose_name=_("service"),
        db_index=False,
    )
    external_id = models.CharField(_("member number"), max_length=64)
    email = models.CharField(_("email"), max_length=254, blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    name = models.CharField(_("name"), max_length=150, blank=True)
    name_kana = models.CharField(_("name (kana)"), max_length=150, blank=True)
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    password_hash = models.CharField(_("legacy password hash"), max_length=255, blank=True)
    points = models.IntegerField(_("points"), default=0)
    attributes = models.JSONField(_("other attributes"), default=dict, blank=True)
    # The LINE user the service had bound to this member number (its own LINE ID連携),
    # so a campaign can reach an unlinked customer on LINE.
    line_user_id = models.CharField(
        _("LINE user ID"), max_length=33, blank=True, validators=[line_user_id_validator]
    )

    # Match keys for 名寄せ, computed by linking.normalize at import.
    email_key = models.CharField(_("email key"), max_length=254, blank=True)
    phone_key = models.CharField(_("phone key (E.164)"), max_length=16, blank=True)
    name_key = models.CharField(_("name key"), max_length=150, blank=True)

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="legacy_accounts",
        verbose_name=_("owner"),
        db_index=False,  # legacy_owner below: linked accounts only
    )
    linked_at = models.DateTimeField(_("linked at"), null=True, blank=True)

    # A hash of the imported fields: a re-import of an unchanged row writes nothing.
    row_hash = models.CharField(_("row hash"), max_length=64, blank=True)
    # The database fills both in for rows the importer COPYs in (one statement time
    # for the whole file); rows saved through the ORM get timezone.now().
    imported_at = models.DateTimeField(_("imported at"), default=timezone.now, db_default=Now())
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now, db_default=Now())

    class Meta:
        verbose_name = _("legacy account")
        verbose_name_plural = _("legacy accounts")
        constraints = [
            models.UniqueConstraint(
                fields=["service", "external_id"], name="legacy_account_unique_external_id"
            ),
            models.CheckConstraint(
                condition=Q(owner__isnull=True, linked_at__isnull=True)
                | Q(owner__isnull=False, linked_at__isnull=False),
                name="legacy_account_owner_has_linked_at",
            ),
            models.CheckConstraint(
                condition=Q(line_user_id="") | Q(line_user_id__regex=LINE_USER_ID_PATTERN),
                name="legacy_account_line_user_id_format",
            ),
        ]
        # Partial indexes: most rows lack some key, and blank keys never match.
        indexes = [
            models.Index(fields=["email_key"], name="legacy_email_key", condition=~Q(email_key="")),
            models.Index(fields=["phone_key"], name="legacy_phone_key", condition=~Q(phone_key="")),
            models.Index(
                fields=["name_key", "birth_date"],
                name="legacy_name_birth",
                condition=~Q(name_key=""),
            ),
            # Staff search by kana in any width or spacing (linking.staff.search).
            models.Index(
                keys.spaceless("name_kana"), name="legacy_kana", condition=~Q(name_kana="")
            ),
            # Most accounts are not linked: an import then writes nothing to this one.
            models.Index(fields=["owner"], name="legacy_owner", condition=Q(owner__isnull=False)),
            # The dashboard counts accounts imported since its last daily snapshot.
            models.Index(fields=["imported_at"], name="legacy_imported_at"),
        ]

    def __str__(self) -> str:
        return f"{self.service.code}:{self.masked_external_id}"

    @property
    def masked_external_id(self) -> str:
        return mask(self.external_id)

    @property
    def is_linked(self) -> bool:
        return self.owner_id is not None


def mask(value: str, visible: int = 4) -> str:
    """ "****1234": enough for a customer to recognise an ID, too little to use it."""
    return "****" + value[-visible:] if value else ""


class LinkEvent(AppendOnlyModel):
    """One link or unlink of a legacy account: who, how, when, from where, why."""

    class Action(models.TextChoices):
        LINK = "link", _("link")
        UNLINK = "unlink", _("unlink")

    account = models.ForeignKey(
        LegacyAccount,
        on_delete=models.PROTECT,
        related_name="link_events",
        verbose_name=_("legacy account"),
    )
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="link_events",
        verbose_name=_("customer"),
    )
    # Kept when the customer is deleted, so the history still says whose it was.
    customer_unified_id = models.CharField(_("unified ID"), max_length=32, blank=True)
    action = models.CharField(_("action"), max_length=10, choices=Action.choices)
    proof = models.CharField(_("proof"), max_length=20, choices=Proof.choices, blank=True)
    actor_kind = models.CharField(_("actor kind"), max_length=10, choices=ActorKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("actor"),
    )
    campaign_id = models.PositiveBigIntegerField(_("campaign"), null=True, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=300, blank=True)
    reason = models.TextField(_("reason"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)

    class Meta:
        ordering = ("-created_at", "-id")
        verbose_name = _("link event")
        verbose_name_plural = _("link events")
        constraints = [
            models.CheckConstraint(
                condition=Q(action="unlink", proof="") | (Q(action="link") & ~Q(proof="")),
                name="link_event_proof_iff_link",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.account_id} {self.customer_unified_id}"


class OwnershipCode(models.Model):
    """A one-time code sent to the contact on a legacy record, to prove the customer
    receives mail (or SMS) there. Deliberately not a django-otp Device: it is bound
    to one customer and one legacy account and can never sign anyone in."""

    class Channel(models.TextChoices):
        EMAIL = "email", _("email")
        SMS = "sms", _("SMS")

    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ownership_codes"
    )
    account = models.ForeignKey(LegacyAccount, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(_("channel"), max_length=5, choices=Channel.choices)
    # HMAC-SHA256 keyed with SECRET_KEY: a leaked table does not give the codes away.
    code_hash = models.CharField(max_length=100)  # "<salt>$<hex digest>"
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    failed_attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)
    superseded = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("ownership code")
        verbose_name_plural = _("ownership codes")
        indexes = [models.Index(fields=["customer", "account", "created_at"], name="code_lookup")]

    def __str__(self) -> str:
        return f"code for {self.account_id} ({self.channel})"


class ImportJob(models.Model):
    """A legacy-account CSV uploaded by staff, imported by a Celery worker; the
    counters are written with the import's commit (progress: import_jobs)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("waiting for a worker")
        RUNNING = "running", _("importing")
        DONE = "done", _("done")
        FAILED = "failed", _("failed")

    service = models.ForeignKey(LegacyService, on_delete=models.PROTECT, verbose_name=_("service"))
    file = models.FileField(_("CSV file"), upload_to="imports/%Y/%m/")
    encoding = models.CharField(
        _("encoding"),
        max_length=10,
        choices=[("auto", _("detect")), ("utf-8", "UTF-8"), ("cp932", "Shift_JIS (CP932)")],
        default="auto",
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    rows_read = models.PositiveIntegerField(_("rows read"), default=0)
    inserted = models.PositiveIntegerField(_("inserted"), default=0)
    updated = models.PositiveIntegerField(_("updated"), default=0)
    unchanged = models.PositiveIntegerField(_("unchanged"), default=0)
    rejected = models.PositiveIntegerField(_("rejected"), default=0)
    report = models.FileField(
        _("report of rejected rows"), upload_to="import-reports/%Y/%m/", blank=True
    )
    error = models.TextField(_("error"), blank=True)
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
    # Runs started; more than one when a worker was lost mid-import (import_jobs.recover).
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    # The uploader's language: the worker writes the rejection reasons in it.
    # Empty (jobs from before it was kept): the site's LANGUAGE_CODE.
    language = models.CharField(_("language"), max_length=15, blank=True, default="")

    class Meta:
        ordering = ("-created_at",)
        verbose_name = _("import")
        verbose_name_plural = _("imports")

    def __str__(self) -> str:
        return f"{self.service.code} {self.file.name} ({self.get_status_display()})"


class StaffAccess(models.Model):
    """Permissions for staff pages that belong to no table; no table of its own."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_link_dashboard", _("Can view the link-rate dashboard")),
            ("view_matching_report", _("Can view the matching report")),
            ("assist_link", _("Can link and unlink legacy accounts for customers")),
        ]

    def __str__(self) -> str:
        return "staff access"


class DailyLinkStat(models.Model):
    """One day's count of imported accounts, links or unlinks per service and proof.

    The dashboard's figures are sums of these rows plus the events after the last
    finished day, so it never counts a million accounts per page view. Written only
    by linking.staff.stats."""

    class Kind(models.TextChoices):
        ACCOUNTS = "accounts", _("accounts imported")
        LINK = "link", _("links")
        UNLINK = "unlink", _("unlinks")

    day = models.DateField(_("day"))
    service = models.ForeignKey(LegacyService, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    proof = models.CharField(_("proof"), max_length=20, blank=True)
    count = models.PositiveIntegerField(_("count"))

    class Meta:
        verbose_name = _("daily link figure")
        verbose_name_plural = _("daily link figures")
        constraints = [
            models.UniqueConstraint(
                fields=["day", "service", "kind", "proof"], name="daily_link_stat_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.service_id} {self.kind} {self.proof}: {self.count}"


class StatsDay(models.Model):
    """When the DailyLinkStat rows of a day were computed. A day's rows are final
    once computed after the day ended (plus a margin for transactions in flight)."""

    day = models.DateField(_("day"), primary_key=True)
    computed_at = models.DateTimeField(_("computed at"))

    class Meta:
        verbose_name = _("computed day")
        verbose_name_plural = _("computed days")

    def __str__(self) -> str:
        return f"{self.day} ({self.computed_at})"
