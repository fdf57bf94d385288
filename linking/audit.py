from allauth.account.adapter import get_adapter as get_account_adapter
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import HttpRequest

from linking.models import ActorKind, AuditEvent, LegacyAccount


def client_ip(request: HttpRequest | None) -> str | None:
    """The client's address as allauth's rate limits see it (TRUSTED_PROXY_COUNT)."""
    if request is None:
        return None
    try:
        return get_account_adapter().get_client_ip(request)
    except (PermissionDenied, ImproperlyConfigured):
        return request.META.get("REMOTE_ADDR") or None


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
