"""Every failure under /api/ as RFC 9457 problem details (application/problem+json),
built by problem() alone: the views and the project's handler400/404/500 (for
paths under /api/) all answer through it. `error` keeps the short code the API
answered with before, for clients that read it."""

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from django.http import HttpRequest, HttpResponse
from django.utils.encoding import escape_uri_path

from accounts.availability import RETRY_AFTER_SECONDS

API_PREFIX = "/api/"
CONTENT_TYPE = "application/problem+json"
# An identifier, not a page: the same in every deployment.
TYPE_PREFIX = "urn:problem-type:unified-id:"


@dataclass(frozen=True)
class Kind:
    status: int
    code: str
    title: str
    type: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", TYPE_PREFIX + self.code.replace("_", "-"))


INVALID_REQUEST = Kind(400, "invalid_request", "Malformed request")
TOO_MANY_ITEMS = Kind(400, "too_many_items", "Too many items")
MISSING_TOKEN = Kind(401, "missing_token", "Bearer token required")
INVALID_TOKEN = Kind(401, "invalid_token", "Invalid bearer token")
INSUFFICIENT_SCOPE = Kind(403, "insufficient_scope", "Insufficient scope")
RETURN_URL_NOT_REGISTERED = Kind(403, "return_url_not_registered", "Return URL not registered")
VOUCHING_NOT_ALLOWED = Kind(403, "vouching_not_allowed", "Vouching not allowed")
NOT_FOUND = Kind(404, "not_found", "Not found")
METHOD_NOT_ALLOWED = Kind(405, "method_not_allowed", "Method not allowed")
BODY_TOO_LARGE = Kind(413, "body_too_large", "Request body too large")
UNSUPPORTED_MEDIA_TYPE = Kind(415, "unsupported_media_type", "Unsupported media type")
RATE_LIMITED = Kind(429, "rate_limited", "Rate limit reached")
SERVER_ERROR = Kind(500, "server_error", "Internal server error")
SERVICE_UNAVAILABLE = Kind(503, "service_unavailable", "Service unavailable")

KINDS = (
    INVALID_REQUEST,
    TOO_MANY_ITEMS,
    MISSING_TOKEN,
    INVALID_TOKEN,
    INSUFFICIENT_SCOPE,
    RETURN_URL_NOT_REGISTERED,
    VOUCHING_NOT_ALLOWED,
    NOT_FOUND,
    METHOD_NOT_ALLOWED,
    BODY_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
    RATE_LIMITED,
    SERVER_ERROR,
    SERVICE_UNAVAILABLE,
)


def problem(kind: Kind, request: HttpRequest, detail: str) -> HttpResponse:
    body = {
        "type": kind.type,
        "title": kind.title,
        "status": kind.status,
        "detail": detail,
        "instance": escape_uri_path(request.path),
        "error": kind.code,
    }
    return HttpResponse(json.dumps(body), status=kind.status, content_type=CONTENT_TYPE)


_HANDLER_DETAILS = {
    400: "The request could not be read.",
    404: "No such API path.",
    500: "The server failed to answer; the failure is logged.",
}


def or_page(kind: Kind, page: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A handler400/404/500 for the project: a problem under /api/, the page
    Django would show anywhere else."""

    def handler(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
        if request.path.startswith(API_PREFIX):
            return problem(kind, request, _HANDLER_DETAILS[kind.status])
        if kind.status == 500:  # Django calls handler500 with the request alone
            return page(request)
        return page(request, exception)

    return handler


def service_unavailable(request: HttpRequest) -> HttpResponse:
    """The database or Redis is away (accounts.availability): come back later."""
    response = problem(
        SERVICE_UNAVAILABLE,
        request,
        f"a service the API needs is away; try again in {RETRY_AFTER_SECONDS} seconds",
    )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
