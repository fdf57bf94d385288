"""The JSON API for group services (/api/v1/, described by openapi.json).

Plain function views: every call goes through api_endpoint, which authenticates
the bearer token, applies the client's rate limit, method and scope, answers any
failure as problem details (problems.py) and writes the ApiCall audit rows; the
views validate input (rules.py) and call one selector each.
"""

import functools
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.signals import got_request_exception
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.log import log_response
from django.views.decorators.csrf import csrf_exempt

from accounts import audit, availability, limits
from accounts import unified_id as unified_ids
from linking.api import auth, call_log, rules, selectors
from linking.api import problems as p
from linking.api.models import (
    SCOPE_EVENTS,
    SCOPE_LINK_REQUESTS,
    SCOPE_RESOLVE,
    SCOPE_REVERSE,
    LinkRequest,
)
from linking.api.openapi import RATE_LIMIT_POLICY, RATE_LIMIT_WINDOW_SECONDS, document
from linking.proofs import vouched


@dataclass
class Call:
    """What the audit rows record about a call, filled in by the view: one row per
    subject (an account as "service:external_id", a unified ID)."""

    subjects: Sequence[str] = ("",)
    items: int = 1


View = Callable[..., HttpResponse]


def api_endpoint(*, name: str, scope: str, method: str) -> Callable[[View], View]:
    def decorate(view: View) -> View:
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            client = auth.authenticate(request)
            if client is None:
                return _unauthorized(request)
            call = Call()
            rate = limits.rate(client.rate_limit_per_minute, RATE_LIMIT_WINDOW_SECONDS)
            quota = limits.take_one(rate, "api", client.client_id)
            if not quota.count:
                wait = limits.seconds_to_reset(quota)
                response = p.problem(p.RATE_LIMITED, request, f"come back in {wait} seconds")
                response["Retry-After"] = str(wait)
            elif request.method != method:
                response = p.problem(
                    p.METHOD_NOT_ALLOWED, request, f"this path answers {method} only"
                )
                response["Allow"] = method
            elif scope not in client.scopes:
                response = p.problem(
                    p.INSUFFICIENT_SCOPE, request, f"this call needs scope {scope}"
                )
                response["WWW-Authenticate"] = (
                    f'Bearer realm="{auth.REALM}", error="insufficient_scope", scope="{scope}"'
                )
            else:
                response = _answer(view, request, client, call, args, kwargs)
            response["RateLimit-Policy"], response["RateLimit"] = limits.header_fields(
                RATE_LIMIT_POLICY, rate, quota
            )
            call_log.calls.record(
                call_log.call_rows(
                    client.client_id,
                    name,
                    response.status_code,
                    call.subjects,
                    call.items,
                    audit.client_ip(request),
                )
            )
            return response

        wrapper.api_method = method  # for the test that the document covers every route
        return wrapper

    return decorate


def _answer(
    view: View, request: HttpRequest, client: auth.ApiClient, call: Call, args, kwargs
) -> HttpResponse:
    """The view's answer; what it raises, as a problem like every other failure."""
    try:
        return view(request, client, call, *args, **kwargs)
    except RequestDataTooBig as exc:
        _log_suspicious(request, exc, 413)
        return p.problem(
            p.BODY_TOO_LARGE,
            request,
            f"the body may be at most {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes",
        )
    except SuspiciousOperation as exc:  # e.g. too many query parameters
        _log_suspicious(request, exc, 400)
        return p.problem(p.INVALID_REQUEST, request, "the request could not be read")
    except Exception as exc:
        # As Django does for a view that raises: the signal, then the error log.
        got_request_exception.send(sender=None, request=request)
        if availability.is_away(exc):
            response = p.service_unavailable(request)
        else:
            response = p.problem(
                p.SERVER_ERROR, request, "the server failed to answer; the failure is logged"
            )
        log_response(
            "%s: %s",
            response.reason_phrase,
            request.path,
            response=response,
            request=request,
            exception=exc,
        )
        return response


def _log_suspicious(request: HttpRequest, exc: SuspiciousOperation, status: int) -> None:
    logging.getLogger(f"django.security.{type(exc).__name__}").error(
        str(exc), exc_info=exc, extra={"status_code": status, "request": request}
    )


def _unauthorized(request: HttpRequest) -> HttpResponse:
    if not auth.bearer_sent(request):
        response = p.problem(
            p.MISSING_TOKEN, request, "send a client-credentials access token as Bearer"
        )
        response["WWW-Authenticate"] = f'Bearer realm="{auth.REALM}"'
        return response
    response = p.problem(
        p.INVALID_TOKEN, request, "the access token is unknown, expired or revoked"
    )
    response["WWW-Authenticate"] = f'Bearer realm="{auth.REALM}", error="invalid_token"'
    return response


@api_endpoint(name="resolve", scope=SCOPE_RESOLVE, method="GET")
def resolve(request: HttpRequest, client: auth.ApiClient, call: Call) -> HttpResponse:
    service = request.GET.get("service")
    external_id = request.GET.get("external_id")
    if service is None or external_id is None:
        return p.problem(p.INVALID_REQUEST, request, "service and external_id are required")
    if not rules.is_service(service) or not rules.is_external_id(external_id):
        return p.problem(p.INVALID_REQUEST, request, "service or external_id is malformed")
    call.subjects = (f"{service}:{external_id}",)
    service_id = client.services.get(service)
    found = (
        selectors.resolve(service_id=service_id, external_id=external_id)
        if service_id is not None
        else None
    )
    if found is None:
        return p.problem(p.NOT_FOUND, request, "no linked account this client may see")
    unified_id, linked_at = found
    return JsonResponse(
        {
            "service": service,
            "external_id": external_id,
            "unified_id": unified_id,
            "linked_at": linked_at.isoformat(),
        }
    )


def _json_object(
    request: HttpRequest, required: set[str], optional: set[str]
) -> dict | HttpResponse:
    """The body as a JSON object with exactly these keys, or the problem to answer."""
    if request.content_type != rules.JSON:
        return p.problem(p.UNSUPPORTED_MEDIA_TYPE, request, f"the body must be {rules.JSON}")
    try:
        payload = json.loads(request.body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return p.problem(p.INVALID_REQUEST, request, "the body must be JSON")
    if not isinstance(payload, dict) or not required <= payload.keys() <= required | optional:
        keys = ", ".join(sorted(required))
        return p.problem(p.INVALID_REQUEST, request, f"the body must be an object with {keys}")
    return payload


@api_endpoint(name="batch", scope=SCOPE_RESOLVE, method="POST")
def resolve_batch(request: HttpRequest, client: auth.ApiClient, call: Call) -> HttpResponse:
    payload = _json_object(request, {"items"}, set())
    if isinstance(payload, HttpResponse):
        return payload
    items = payload["items"]
    if not isinstance(items, list) or not items:
        return p.problem(p.INVALID_REQUEST, request, "items must be a non-empty list")
    if len(items) > rules.BATCH_LIMIT:
        return p.problem(
            p.TOO_MANY_ITEMS, request, f"at most {rules.BATCH_LIMIT} items per request"
        )
    call.items = len(items)
    asked: list[tuple[str, str]] = []
    for item in items:
        if not (
            isinstance(item, dict)
            and item.keys() == {"service", "external_id"}
            and isinstance(service := item["service"], str)
            and isinstance(external_id := item["external_id"], str)
            and rules.is_service(service)
            and rules.is_external_id(external_id)
        ):
            return p.problem(
                p.INVALID_REQUEST,
                request,
                "each item must be an object with service and external_id, well formed",
            )
        asked.append((service, external_id))
    call.subjects = list(
        dict.fromkeys(f"{service}:{external_id}" for service, external_id in asked)
    )
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
    if not rules.is_unified_id(unified_id):
        return p.problem(p.INVALID_REQUEST, request, "not a unified ID: twelve digits")
    normalized = unified_ids.normalize(unified_id)
    call.subjects = (normalized,)
    # A mistyped ID (its check digit does not match) belongs to nobody, like an ID
    # never issued; a unified ID with nothing this client may see is, to this
    # client, unknown too.
    accounts = (
        selectors.linked_accounts(unified_id=normalized, service_ids=client.service_ids)
        if unified_ids.is_valid(normalized)
        else []
    )
    if not accounts:
        return p.problem(p.NOT_FOUND, request, "no linked account this client may see")
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
    cursor = request.GET.get("cursor", "")
    raw_limit = request.GET.get("limit", str(rules.EVENTS_PAGE_DEFAULT))
    if not rules.is_cursor(cursor):
        return p.problem(p.INVALID_REQUEST, request, "cursor must be one returned by this endpoint")
    if not (
        raw_limit.isascii()
        and raw_limit.isdigit()
        and len(raw_limit) <= 4
        and 1 <= int(raw_limit) <= rules.EVENTS_PAGE_MAX
    ):
        return p.problem(p.INVALID_REQUEST, request, f"limit must be 1 to {rules.EVENTS_PAGE_MAX}")
    after, limit = int(cursor or "0"), int(raw_limit)
    call.subjects = (f"after {after}",)
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


@api_endpoint(name="link_request", scope=SCOPE_LINK_REQUESTS, method="POST")
def link_request(request: HttpRequest, client: auth.ApiClient, call: Call) -> HttpResponse:
    """Push a link request for the service's signed-in customer (RFC 9126 style)."""
    payload = _json_object(request, {"service", "external_id", "return_url"}, {"state"})
    if isinstance(payload, HttpResponse):
        return payload
    service, external_id = payload["service"], payload["external_id"]
    return_url, state = payload["return_url"], payload.get("state", "")
    if not (
        isinstance(service, str)
        and isinstance(external_id, str)
        and isinstance(return_url, str)
        and isinstance(state, str)
        and rules.is_service(service)
        and rules.is_external_id(external_id)
        and rules.is_return_url(return_url)
        and rules.is_state(state)
    ):
        return p.problem(
            p.INVALID_REQUEST, request, "service, external_id, return_url or state is malformed"
        )
    call.subjects = (f"{service}:{external_id}",)
    service_id = client.services.get(service)
    if service_id is None:
        return p.problem(p.NOT_FOUND, request, "no account this client may see")
    try:
        pushed = vouched.push(
            client_id=client.client_id,
            service_id=service_id,
            external_id=external_id,
            return_url=return_url,
            state=state,
        )
    except vouched.PushRefused as refused:
        kind = {
            "return_url_not_registered": p.RETURN_URL_NOT_REGISTERED,
            "vouching_not_allowed": p.VOUCHING_NOT_ALLOWED,
        }.get(refused.why, p.NOT_FOUND)
        return p.problem(kind, request, refused.detail)
    return JsonResponse(
        {
            "request_uri": pushed.request_uri,
            "url": settings.SITE_URL + pushed.path,
            "expires_in": pushed.expires_in,
        },
        status=201,
    )


@api_endpoint(name="link_result", scope=SCOPE_LINK_REQUESTS, method="POST")
def link_result(request: HttpRequest, client: auth.ApiClient, call: Call) -> HttpResponse:
    """Exchange the code the return URL got for the result, once."""
    payload = _json_object(request, {"code"}, set())
    if isinstance(payload, HttpResponse):
        return payload
    code = payload["code"]
    if not isinstance(code, str) or not rules.is_code(code):
        return p.problem(p.INVALID_REQUEST, request, "code is malformed")
    found = vouched.exchange(client_id=client.client_id, code=code)
    if found is None:
        return p.problem(
            p.NOT_FOUND, request, "no such code: unknown, expired, exchanged or another client's"
        )
    account = found.account
    call.subjects = (f"{account.service.code}:{account.external_id}",)
    theirs = found.result in (LinkRequest.Result.LINKED, LinkRequest.Result.ALREADY_LINKED)
    return JsonResponse(
        {
            "result": found.result,
            "service": account.service.code,
            "external_id": account.external_id,
            "unified_id": found.customer.unified_id if theirs else None,
            "reference": found.reference or None,
            "state": found.state,
        }
    )


@csrf_exempt
def openapi(request: HttpRequest) -> HttpResponse:
    """The document, for anyone: it holds nothing a client's token would guard."""
    if request.method not in ("GET", "HEAD"):
        response = p.problem(p.METHOD_NOT_ALLOWED, request, "this path answers GET only")
        response["Allow"] = "GET, HEAD"
        return response
    return JsonResponse(document(server_url=settings.SITE_URL + "/api/v1"))
