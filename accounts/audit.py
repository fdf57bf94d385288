"""The audit trail: who did what, when, from where, why. Every layer records here,
so it sits at the bottom and imports nothing of ours; its models are the accounts
app's (accounts.models imports them)."""

import secrets

from allauth import app_settings as allauth_settings
from allauth.account.adapter import get_adapter as get_account_adapter
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.core.signals import setting_changed
from django.db import models
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ActorKind(models.TextChoices):
    CUSTOMER = "customer", _("customer")
    STAFF = "staff", _("staff")
    SYSTEM = "system", _("system")


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError(f"{self.model.__name__} is append-only")

    def delete(self):
        raise PermissionError(f"{self.model.__name__} is append-only")


class AppendOnlyModel(models.Model):
    """A record that is written once: history is never rewritten."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise PermissionError(f"{type(self).__name__} is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError(f"{type(self).__name__} is append-only")


_REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read over the phone


def new_reference() -> str:
    return "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(8))


class AuditEvent(AppendOnlyModel):
    """A security-relevant event; its reference can be quoted to support."""

    class Action(models.TextChoices):
        PROOF_SUCCEEDED = "proof_succeeded", _("proof succeeded")
        PROOF_FAILED = "proof_failed", _("proof failed")
        LINK_CONFLICT = "link_conflict", _("link conflict")
        LINKED = "linked", _("linked")
        UNLINKED = "unlinked", _("unlinked")
        CODE_SENT = "code_sent", _("code sent")
        CODE_LOCKED = "code_locked", _("code locked")

    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    reference = models.CharField(_("reference"), max_length=8, default=new_reference, db_index=True)
    # Not limited to Action: new flows may record new kinds of event.
    action = models.CharField(_("action"), max_length=40)
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="audit_events",
        verbose_name=_("customer"),
    )
    customer_unified_id = models.CharField(_("unified ID"), max_length=32, blank=True)
    actor_kind = models.CharField(
        _("actor kind"), max_length=10, choices=ActorKind.choices, default=ActorKind.CUSTOMER
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("actor"),
    )
    # By name: the legacy account is the layer above's (linking), not imported here.
    account = models.ForeignKey(
        "linking.LegacyAccount",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="audit_events",
        verbose_name=_("legacy account"),
    )
    method = models.CharField(_("method"), max_length=20, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=300, blank=True)
    reason = models.TextField(_("reason"), blank=True)
    data = models.JSONField(_("data"), default=dict, blank=True)

    class Meta:
        db_table = "linking_auditevent"  # its table from when it lived in linking
        ordering = ("-created_at", "-id")
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        indexes = [
            models.Index(fields=["customer", "created_at"], name="audit_customer_created"),
            models.Index(fields=["action", "created_at"], name="audit_action_created"),
        ]

    def __str__(self) -> str:
        return self.reference


# What allauth's answer depends on -> that answer. Working it out (the request's
# headers as a dict, the address parsed) cost as much as the rest of an API call's
# audit, and callers come from a handful of addresses.
_known_ips: dict[tuple, str | None] = {}
_KNOWN_IPS_MAX = 10_000
# allauth's proxy settings, (TRUSTED_PROXY_COUNT, TRUSTED_CLIENT_IP_HEADER): each read
# through allauth's settings object cost as much as the lookup above.
_proxies: tuple[int, str | None] | None = None


@receiver(setting_changed)
def _forget_proxies(**kwargs) -> None:
    global _proxies
    _proxies = None


def client_ip(request: HttpRequest | None) -> str | None:
    """The client's address as allauth's rate limits see it (TRUSTED_PROXY_COUNT)."""
    global _proxies
    if request is None:
        return None
    if _proxies is None:
        _proxies = (allauth_settings.TRUSTED_PROXY_COUNT, allauth_settings.TRUSTED_CLIENT_IP_HEADER)
    count, header = _proxies
    meta = request.META
    key = (
        count,
        header,
        meta.get("REMOTE_ADDR"),
        meta.get("HTTP_X_FORWARDED_FOR"),
        meta.get("HTTP_" + header.upper().replace("-", "_")) if header else None,
    )
    try:
        return _known_ips[key]
    except KeyError:
        pass
    try:
        ip = get_account_adapter().get_client_ip(request)
    except (PermissionDenied, ImproperlyConfigured):
        ip = meta.get("REMOTE_ADDR") or None
    if len(_known_ips) >= _KNOWN_IPS_MAX:
        _known_ips.clear()
    _known_ips[key] = ip
    return ip


def user_agent(request: HttpRequest | None) -> str:
    return (request.META.get("HTTP_USER_AGENT", "") if request else "")[:300]


def record(
    action: str,
    *,
    request: HttpRequest | None,
    customer=None,
    account=None,
    method: str = "",
    reason: str = "",
    actor=None,
    actor_kind: str = ActorKind.CUSTOMER,
    data: dict | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
        action=action,
        customer=customer,
        customer_unified_id=getattr(customer, "unified_id", "") or "",
        actor=actor if actor is not None else customer,
        actor_kind=actor_kind,
        account=account,
        method=method,
        ip=client_ip(request),
        user_agent=user_agent(request),
        reason=reason,
        data=data or {},
    )
