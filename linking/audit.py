from allauth import app_settings as allauth_settings
from allauth.account.adapter import get_adapter as get_account_adapter
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest

from linking.models import ActorKind, AuditEvent, LegacyAccount

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
    account: LegacyAccount | None = None,
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
