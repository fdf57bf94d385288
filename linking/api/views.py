"""The JSON API for group services (/api/v1/, described by openapi.json).

Plain function views: every call goes through api_endpoint, which authenticates
the bearer token, applies the client's rate limit and scope and writes the
ApiCall audit row; the views validate input and call one selector each.
"""

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from accounts import unified_id as unified_ids
from linking import audit
from linking.api import auth, call_log, ratelimit, selectors
from linking.api.models import SCOPE_EVENTS, SCOPE_RESOLVE, SCOPE_REVERSE
from linking.api.openapi import document

BATCH_LIMIT = 1000
EVENTS_PAGE_DEFAULT = 100
EVENTS_PAGE_MAX = 1000
_MAX_ID_LENGTH = 64


@dataclass
class Call:
    """What the audit row records about a call, filled in by the view."""

    subject: str = ""
    items: int = 1


View = Callable[..., HttpResponse]


def _error(status: int, error: str, detail: str = "") -> JsonResponse:
    body = {"error": error}
    if detail:
        body["detail"] = detail
    return JsonResponse(body, status=status)


def api_endpoint(*, name: str, scope: str, method: str) -> Callable[[View], View]:
    def decorate(view: View) -> View:
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method != method:
                response = _error(405, "method_not_allowed")
                response["Allow"] = method
                return response
            client = auth.authenticate(request)
            if client is None:
                response = _error(401, "invalid_token", "a valid bearer access token is required")
                response["WWW-Authenticate"] = 'Bearer error="invalid_token"'
                return response
            call = Call()
            retry_after = ratelimit.hit(client.client_id, client.rate_limit_per_minute)
            if retry_after is not None:
                response = _error(429, "rate_limited")
                response["Retry-After"] = str(retry_after)
            elif scope not in client.scopes:
                response = _error(403, "insufficient_scope", f"this call needs scope {scope}")
                response["WWW-Authenticate"] = f'Bearer error="insufficient_scope", scope="{scope}"'
            else:
                response = view(request, client, call, *args, **kwargs)
            call_log.calls.record(
                call_log.call_row(
                    client.client_id,
                    name,
                    response.status_code,
                    call.subject,
                    call.items,
                    audit.client_ip(request),
                )
            )
            return response

        return wrapper

    return decorate


def _clean_text(value: object) -> str | None:
    """A service code or external ID as sent: a short string of printable characters."""
    if not isinstance(value, str) or not value or len(value) > _MAX_ID_LENGTH:
        return None
    if not value.isprintable():
        return None
    return value


@api_endpoint(name="resolve", scope=SCOPE_RESOLVE, method="GET")
def resolve(request: HttpRequest, client: auth.ApiClient, call: Call) -> HttpResponse:
    service = _clean_text(request.GET.get("service"))
    external_id = _clean_text(request.GET.get("external_id"))
    if service is None or external_id is None:
        return _error(400, "invalid_request", "service and external_id are required")
    call.subject = f"{service}:{external_id}"
    service_id = client.services.get(service)
    found = (
        selectors.resolve(service_id=service_id, external_id=external_id)
        if service_id is not None
        else None
    )
    if found is None:
        return _error(404, "not_found")
    unified_id, linked_at = found
    return JsonResponse(
        {
            "service": service,
            "external_id": external_id,
            "unified_id": unified_id,
            "linked_at": linked_at.isoformat(),
        }
    )


@api_endpoint(name="batch", scope=SCOPE_RESOLVE, method="POST")
def resolve_batch(request: HttpRequest, client: auth.ApiClient, call: Call) -> HttpResponse:
    try:
        payload = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return _error(400, "invalid_request", "the body must be JSON")
    items = payload.get("items") if isinstance(payload, dict) else None
    if not isinstance(items, list) or not items:
        return _error(400, "invalid_request", "items must be a non-empty list")
    if len(items) > BATCH_LIMIT:
        return _error(400, "too_many_items", f"at most {BATCH_LIMIT} items per request")
    call.items = len(items)
    asked: list[tuple[str, str]] = []
    for item in items:
        service = _clean_text(item.get("service")) if isinstance(item, dict) else None
        external_id = _clean_text(item.get("external_id")) if isinstance(item, dict) else None
        if service is None or external_id is None:
            return _error(400, "invalid_request", "each item needs service and external_id")
        asked.append((service, external_id))
    visible = [
        (client.services[service], external_id)
        for service, external_id in asked
        if service in client.services
    ]
    owners = selectors.resolve_many(visible)
    results = [
        {
            "service": service,
            "external_id": external_id,
            "unified_id": owners.get((client.services.get(service, -1), external_id)),
        }
        for service, external_id in asked
    ]
    return JsonResponse({"results": results})


@api_endpoint(name="reverse", scope=SCOPE_REVERSE, method="GET")
def reverse(
    request: HttpRequest, client: auth.ApiClient, call: Call, unified_id: str
) -> HttpResponse:
    if not unified_ids.is_valid(unified_id):
        return _error(400, "invalid_request", "not a unified ID")
    normalized = unified_ids.normalize(unified_id)
    call.subject = normalized
    accounts = selectors.linked_accounts(unified_id=normalized, service_ids=client.service_ids)
    # A unified ID with nothing this client may see is, to this client, unknown.
    if not accounts:
        return _error(404, "not_found")
    return JsonResponse(
        {
            "unified_id": normalized,
            "accounts": [
                {
                    "service": account["service__code"],
                    "external_id": account["external_id"],
                    "linked_at": account["linked_at"].isoformat(),
                }
                for account in accounts
            ],
        }
    )


@api_endpoint(name="events", scope=SCOPE_EVENTS, method="GET")
def link_events(request: HttpRequest, client: auth.ApiClient, call: Call) -> HttpResponse:
    cursor = request.GET.get("cursor", "0") or "0"
    raw_limit = request.GET.get("limit", str(EVENTS_PAGE_DEFAULT))
    if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 18):
        return _error(400, "invalid_request", "cursor must be one returned by this endpoint")
    if not (raw_limit.isascii() and raw_limit.isdigit() and 1 <= int(raw_limit) <= EVENTS_PAGE_MAX):
        return _error(400, "invalid_request", f"limit must be 1 to {EVENTS_PAGE_MAX}")
    after, limit = int(cursor), int(raw_limit)
    call.subject = f"after {after}"
    rows = selectors.link_events(
        service_ids=client.service_ids,
        after=after,
        limit=limit + 1,
        settle_seconds=settings.API_EVENTS_SETTLE_SECONDS,
    )
    page = rows[:limit]
    call.items = len(page)
    events = [
        {
            "id": str(row["pk"]),
            "action": row["action"],
            "service": row["account__service__code"],
            "external_id": row["account__external_id"],
            "unified_id": row["customer_unified_id"],
            "proof": row["proof"] or None,
            "at": row["created_at"].isoformat(),
        }
        for row in page
    ]
    next_cursor = events[-1]["id"] if events else str(after)
    return JsonResponse(
        {"events": events, "next_cursor": next_cursor, "has_more": len(rows) > limit}
    )


@require_GET
def openapi(request: HttpRequest) -> HttpResponse:
    return JsonResponse(document(server_url=settings.SITE_URL + "/api/v1"))
