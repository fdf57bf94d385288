from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from accounts import keys, unified_id
from accounts.audit import AuditEvent  # noqa: F401  (this app's model)
from accounts.limits.database import RateLimitCounter  # noqa: F401  (this app's model)
from accounts.outbound import check_url as outbound_check_url


class IssuedUnifiedIDManager(models.Manager["IssuedUnifiedID"]):
    def issue(self) -> str:
        """Reserve a fresh random unified ID. The registry row outlives the customer,
        so an ID is never handed out twice."""
        for _attempt in range(20):
            candidate = unified_id.generate()
            try:
                with transaction.atomic():
                    self.create(unified_id=candidate)
            except IntegrityError:
                continue
            return candidate
        raise RuntimeError("could not draw an unused unified ID in 20 attempts")


class IssuedUnifiedID(models.Model):
    """Every unified ID ever issued. Never deleted; retired when its customer leaves."""

    unified_id = models.CharField(_("unified ID"), max_length=unified_id.LENGTH, primary_key=True)
    issued_at = models.DateTimeField(_("issued at"), default=timezone.now)
    retired_at = models.DateTimeField(_("retired at"), null=True, blank=True)

    objects = IssuedUnifiedIDManager()

    class Meta:
        verbose_name = _("issued unified ID")
        verbose_name_plural = _("issued unified IDs")

    def __str__(self) -> str:
        return self.unified_id


class ConsentRecordQuerySet(models.QuerySet):
    """History is never rewritten (see ConsentRecord)."""

    def update(self, **kwargs):
        raise PermissionError("ConsentRecord is append-only")

    def delete(self):
        raise PermissionError("ConsentRecord is append-only")


class CustomerManager(BaseUserManager["Customer"]):
    use_in_migrations = True

    def get_by_natural_key(self, username: str | None) -> "Customer":
        return self.get(email=normalize_email(username))

    def create_user(self, email: str | None = None, password: str | None = None, **fields):
        customer = self.model(email=email, **fields)
        customer.set_password(password)
        customer.save(using=self._db)
        return customer

    def create_superuser(self, email: str, password: str | None = None, **fields):
        fields.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **fields)


def normalize_email(email: str | None) -> str | None:
    return (email or "").strip().lower() or None


class Customer(AbstractBaseUser, PermissionsMixin):
    """A person with a unified ID. How they sign in (password, LINE, Google, OIDC)
    lives in allauth's tables; what they own at group services lives in linking."""

    unified_id = models.CharField(
        _("unified ID"), max_length=unified_id.LENGTH, unique=True, editable=False
    )
    # Empty for customers who signed up through an IdP that vouched for no email.
    email = models.EmailField(_("email address"), unique=True, null=True, blank=True)
    name = models.CharField(_("name"), max_length=150, blank=True)
    is_staff = models.BooleanField(_("staff status"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    date_joined = models.DateTimeField(_("date joined"), default=timezone.now)
    # Marketing email from the group: None until asked, then the customer's latest
    # answer (history in ConsentRecord). Campaigns skip records of a customer who said no.
    marketing_email_consent = models.BooleanField(
        _("marketing email consent"), null=True, blank=True, default=None
    )

    objects = CustomerManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        # Staff search by name in any spacing (linking.staff.search).
        indexes = [
            models.Index(keys.spaceless("name"), name="customer_name", condition=~Q(name=""))
        ]

    def __str__(self) -> str:
        return self.email or self.unified_id_display

    @property
    def unified_id_display(self) -> str:
        return unified_id.display(self.unified_id)

    def get_full_name(self) -> str:
        return self.name

    def get_short_name(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        self.email = normalize_email(self.email)
        if self._state.adding and self.unified_id:
            retired = IssuedUnifiedID.objects.filter(
                unified_id=self.unified_id, retired_at__isnull=False
            )
            if retired.exists():
                raise ValueError("a retired unified ID is never given to anyone again")
        if not self.unified_id:
            with transaction.atomic(using=kwargs.get("using")):
                self.unified_id = IssuedUnifiedID.objects.issue()
                super().save(*args, **kwargs)
            return
        super().save(*args, **kwargs)


class ConsentNotice(models.Model):
    """One version of the notice a customer agrees to: the purpose of use and the
    joint use of personal data within the group (APPI Art. 21, 27(5)(iii)). Staff
    write a new version in the admin; a published version is never edited, so a
    consent record always points at the words the customer saw."""

    version = models.PositiveIntegerField(_("version"), unique=True, editable=False)
    purpose_ja = models.TextField(_("purpose of use (Japanese)"))
    purpose_en = models.TextField(_("purpose of use (English)"), blank=True)
    joint_companies_ja = models.TextField(_("companies sharing the data (Japanese)"))
    joint_companies_en = models.TextField(_("companies sharing the data (English)"), blank=True)
    joint_data_ja = models.TextField(_("data shared (Japanese)"))
    joint_data_en = models.TextField(_("data shared (English)"), blank=True)
    joint_purposes_ja = models.TextField(_("purposes of the joint use (Japanese)"))
    joint_purposes_en = models.TextField(_("purposes of the joint use (English)"), blank=True)
    responsible_company_ja = models.TextField(_("responsible company (Japanese)"))
    responsible_company_en = models.TextField(_("responsible company (English)"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    published_at = models.DateTimeField(_("published at"), null=True, blank=True)

    class Meta:
        ordering = ("-version",)
        verbose_name = _("consent notice")
        verbose_name_plural = _("consent notices")

    def __str__(self) -> str:
        return f"v{self.version}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None and (
            ConsentNotice.objects.filter(pk=self.pk, published_at__isnull=False).exists()
        ):
            raise PermissionError("a published consent notice is never edited")
        if not self.version:
            last = ConsentNotice.objects.aggregate(models.Max("version"))["version__max"]
            self.version = (last or 0) + 1
        super().save(*args, **kwargs)

    @property
    def is_published(self) -> bool:
        return self.published_at is not None

    def localized(self, field: str) -> str:
        """The Japanese text is the source; English falls back to it when missing."""
        ja, en = getattr(self, f"{field}_ja"), getattr(self, f"{field}_en")
        if (get_language() or "ja").startswith("en") and en:
            return en
        return ja

    @property
    def purpose(self) -> str:
        return self.localized("purpose")

    @property
    def joint_companies(self) -> str:
        return self.localized("joint_companies")

    @property
    def joint_data(self) -> str:
        return self.localized("joint_data")

    @property
    def joint_purposes(self) -> str:
        return self.localized("joint_purposes")

    @property
    def responsible_company(self) -> str:
        return self.localized("responsible_company")


class ConsentRecord(models.Model):
    """Append-only: a customer agreed to a notice, or gave or withdrew marketing email
    consent. Kept after the customer is deleted (customer_unified_id only)."""

    class Kind(models.TextChoices):
        NOTICE = "notice", _("agreed to the notice")
        MARKETING_GRANTED = "marketing_granted", _("marketing email: agreed")
        MARKETING_WITHDRAWN = "marketing_withdrawn", _("marketing email: withdrawn")

    class Source(models.TextChoices):
        SIGNUP = "signup", _("sign-up")
        LINK = "link", _("before linking")
        SETTINGS = "settings", _("privacy settings")

    customer = models.ForeignKey(
        "Customer",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="consent_records",
        verbose_name=_("customer"),
    )
    customer_unified_id = models.CharField(_("unified ID"), max_length=unified_id.LENGTH)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    notice = models.ForeignKey(
        ConsentNotice,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="records",
        verbose_name=_("notice"),
    )
    source = models.CharField(_("where"), max_length=10, choices=Source.choices)
    created_at = models.DateTimeField(_("at"), default=timezone.now)

    objects = ConsentRecordQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at", "-id")
        verbose_name = _("consent record")
        verbose_name_plural = _("consent records")
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="notice", notice__isnull=False) | ~Q(kind="notice"),
                name="consent_record_notice_has_version",
            ),
        ]
        indexes = [models.Index(fields=["customer", "kind", "created_at"], name="consent_lookup")]

    def __str__(self) -> str:
        return f"{self.customer_unified_id} {self.get_kind_display()}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise PermissionError("ConsentRecord is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("ConsentRecord is append-only")


class ProviderGrant(models.Model):
    """One sign-in with the unified ID at a group service (the site as OpenID
    provider): how the customer authenticated and which claims the service asked
    for, for the ID token of the code and of every refresh that follows. grant_id is
    allauth's, shared by the code and every token issued from it."""

    grant_id = models.CharField(max_length=64, unique=True)
    client = models.ForeignKey(
        "allauth_idp_oidc.Client", on_delete=models.CASCADE, related_name="+"
    )
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    auth_time = models.DateTimeField()
    amr = models.JSONField(default=list)
    acr = models.CharField(max_length=8)
    claims = models.JSONField(default=dict)
    # The browser session it was granted in: the sid of back-channel logout (kept in
    # the session's data, so it survives the session key changing).
    session_key = models.CharField(max_length=64, blank=True, db_index=True)
    sid = models.CharField(max_length=64, blank=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return self.grant_id


class SpentRefreshToken(models.Model):
    """A refresh token already exchanged for a new one. Presented again, it is the
    sign of a stolen token: the whole family (its grant) is revoked."""

    token_hash = models.CharField(max_length=128, unique=True)
    client_id = models.CharField(max_length=255)
    grant_id = models.CharField(max_length=64)
    spent_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return self.grant_id


class BackchannelLogout(models.Model):
    """Where a group service hears that a customer's session here ended (OpenID
    Connect Back-Channel Logout 1.0): its back-channel logout URI, a public address
    (checked here and again when a logout token is sent)."""

    client = models.OneToOneField(
        "allauth_idp_oidc.Client",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="backchannel_logout",
        verbose_name=_("client"),
    )
    uri = models.URLField(_("back-channel logout URI"), validators=[outbound_check_url])

    class Meta:
        verbose_name = _("back-channel logout URI")
        verbose_name_plural = _("back-channel logout URIs")

    def __str__(self) -> str:
        return self.uri
