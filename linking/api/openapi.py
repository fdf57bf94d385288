"""The OpenAPI 3.1 document of /api/v1, built from what the views use: the input
rules (rules.py), the problem kinds (problems.py), the rate-limit fields
(accounts.limits). tests/test_api_schema.py runs schemathesis with every check against
a live server, which fails on any request the document allows and the API refuses,
and on any answer the document does not describe."""

from django.conf import settings
from django.urls import reverse

from accounts import unified_id
from linking.api import problems, rules
from linking.api.models import SCOPE_EVENTS, SCOPE_LINK_REQUESTS, SCOPE_RESOLVE, SCOPE_REVERSE

# The name the RateLimit fields give a client's quota: calls per minute, per client.
RATE_LIMIT_POLICY = "per-client"
RATE_LIMIT_WINDOW_SECONDS = 60

# The examples the document shows (schemathesis's first requests, too).
EXAMPLE_SERVICE = "store"
EXAMPLE_EXTERNAL_ID = "S0001"
EXAMPLE_RETURN_URL = "https://store.example.jp/unified-id/return"
EXAMPLE_UNIFIED_ID = unified_id.display("12345678901" + unified_id.check_digit("12345678901"))

_SERVICE = {
    "type": "string",
    "minLength": 1,
    "maxLength": rules.SERVICE_MAX,
    "pattern": rules.SERVICE,
    "description": "A legacy service's code (a slug).",
}
_EXTERNAL_ID = {
    "type": "string",
    "minLength": 1,
    "maxLength": rules.EXTERNAL_ID_MAX,
    "pattern": rules.EXTERNAL_ID,
    "description": "The account's ID at that service; no control characters.",
}
_UNIFIED_ID = {
    "type": "string",
    "pattern": "^[0-9]{12}$",
    "description": "12 digits, the last a Damm check digit.",
}
_TIME = {"type": "string", "format": "date-time"}


def _headers(*names: str) -> dict:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


def _problem(status: int, description: str, kinds: list[problems.Kind]) -> dict:
    headers = [] if status in (401, 503) else ["RateLimit-Policy", "RateLimit"]
    headers += {401: ["WWW-Authenticate"], 403: ["WWW-Authenticate"]}.get(status, [])
    headers += {405: ["Allow"], 429: ["Retry-After"]}.get(status, [])
    described = _headers(*headers)
    if status == 503:
        described["Retry-After"] = {
            "description": "Seconds to wait before trying again.",
            "required": True,
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        }
    if status == 403 and kinds != [problems.INSUFFICIENT_SCOPE]:
        described["WWW-Authenticate"] = {
            "description": "The Bearer challenge, with insufficient_scope only.",
            "required": False,
            "schema": {"type": "string", "pattern": "^Bearer realm="},
        }
    return {
        "description": description,
        "headers": described,
        "content": {
            problems.CONTENT_TYPE: {
                "schema": {
                    "allOf": [
                        {"$ref": "#/components/schemas/Problem"},
                        {
                            "properties": {
                                "status": {"const": status},
                                "type": {"enum": [kind.type for kind in kinds]},
                                "error": {"enum": [kind.code for kind in kinds]},
                            }
                        },
                    ]
                }
            }
        },
    }


def _json(description: str, schema_name: str) -> dict:
    return {
        "description": description,
        "headers": _headers("RateLimit-Policy", "RateLimit"),
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}
        },
    }


_COMMON_ERRORS = {
    "401": _problem(
        401,
        "No bearer token (challenge without an error code), or one that is unknown, "
        'expired or revoked (error="invalid_token").',
        [problems.MISSING_TOKEN, problems.INVALID_TOKEN],
    ),
    "403": _problem(
        403, "The token lacks the scope this call needs.", [problems.INSUFFICIENT_SCOPE]
    ),
    "405": _problem(405, "Another method than this path answers.", [problems.METHOD_NOT_ALLOWED]),
    "429": _problem(429, "Rate limit reached; see Retry-After.", [problems.RATE_LIMITED]),
    "500": _problem(500, "The server failed; the failure is logged.", [problems.SERVER_ERROR]),
    "503": _problem(
        503,
        "The database or Redis is briefly away; see Retry-After.",
        [problems.SERVICE_UNAVAILABLE],
    ),
}


def _operation(operation_id: str, summary: str, scope: str, responses: dict, **extra) -> dict:
    return {
        "operationId": operation_id,
        "summary": summary,
        "security": [{"clientCredentials": [scope]}],
        "responses": {**_COMMON_ERRORS, **responses},
        **extra,
    }


def _malformed(description: str, *more: problems.Kind) -> dict:
    return _problem(400, description, [problems.INVALID_REQUEST, *more])


def _not_found() -> dict:
    return _problem(404, "No linked account this client may see.", [problems.NOT_FOUND])


def _json_body(schema_name: str, example: dict) -> dict:
    return {
        "required": True,
        "content": {
            rules.JSON: {
                "schema": {"$ref": f"#/components/schemas/{schema_name}"},
                "example": example,
            }
        },
    }


def _body_errors(max_body: int) -> dict:
    return {
        "413": _problem(413, f"The body is over {max_body:,} bytes.", [problems.BODY_TOO_LARGE]),
        "415": _problem(415, f"The body is not {rules.JSON}.", [problems.UNSUPPORTED_MEDIA_TYPE]),
    }


def document(*, server_url: str) -> dict:
    site = server_url.removesuffix("/api/v1")
    max_body = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Unified ID API for group services",
            "version": "1.2.0",
            "description": (
                "Which unified ID owns a legacy account, which accounts a unified ID "
                "has linked, and the history of links. A client sees only the legacy "
                "services it is registered for; anything else answers as if it did "
                "not exist. Every failure is an RFC 9457 problem "
                f"({problems.CONTENT_TYPE}); every answer to a call with a valid token "
                "carries the RateLimit-Policy and RateLimit fields "
                "(draft-ietf-httpapi-ratelimit-headers)."
            ),
        },
        "servers": [{"url": server_url}],
        "paths": {
            "/resolve": {
                "get": _operation(
                    "resolve",
                    "The unified ID that owns a legacy account",
                    SCOPE_RESOLVE,
                    {
                        "200": _json("The account is linked.", "Resolved"),
                        "400": _malformed("service or external_id missing or malformed."),
                        "404": _not_found(),
                    },
                    parameters=[
                        {
                            "name": "service",
                            "in": "query",
                            "required": True,
                            "schema": _SERVICE,
                            "example": EXAMPLE_SERVICE,
                        },
                        {
                            "name": "external_id",
                            "in": "query",
                            "required": True,
                            "schema": _EXTERNAL_ID,
                            "example": EXAMPLE_EXTERNAL_ID,
                        },
                    ],
                )
            },
            "/resolve/batch": {
                "post": _operation(
                    "resolveBatch",
                    f"Resolve up to {rules.BATCH_LIMIT:,} legacy accounts at once",
                    SCOPE_RESOLVE,
                    {
                        "200": _json("One result per item, in order.", "BatchResult"),
                        "400": _malformed(
                            "The body is not JSON or not a BatchRequest, or has more than "
                            f"{rules.BATCH_LIMIT:,} items.",
                            problems.TOO_MANY_ITEMS,
                        ),
                        "413": _problem(
                            413,
                            f"The body is over {max_body:,} bytes.",
                            [problems.BODY_TOO_LARGE],
                        ),
                        "415": _problem(
                            415,
                            f"The body is not {rules.JSON}.",
                            [problems.UNSUPPORTED_MEDIA_TYPE],
                        ),
                    },
                    requestBody={
                        "required": True,
                        "description": f"At most {max_body:,} bytes.",
                        "content": {
                            rules.JSON: {
                                "schema": {"$ref": "#/components/schemas/BatchRequest"},
                                "example": {
                                    "items": [
                                        {
                                            "service": EXAMPLE_SERVICE,
                                            "external_id": EXAMPLE_EXTERNAL_ID,
                                        },
                                        {"service": EXAMPLE_SERVICE, "external_id": "S0002"},
                                    ]
                                },
                            }
                        },
                    },
                )
            },
            "/unified-ids/{unified_id}/accounts": {
                "get": _operation(
                    "reverse",
                    "The legacy accounts linked to a unified ID that this client may see",
                    SCOPE_REVERSE,
                    {
                        "200": _json("The visible linked accounts.", "LinkedAccounts"),
                        "400": _malformed("Not twelve digits."),
                        "404": _problem(
                            404,
                            "No linked account this client may see, or a check digit "
                            "that does not match (an ID nobody has).",
                            [problems.NOT_FOUND],
                        ),
                    },
                    parameters=[
                        {
                            "name": "unified_id",
                            "in": "path",
                            "required": True,
                            "description": (
                                "Twelve digits, as printed on the card or not: "
                                "123456789012, 1234 5678 9012, 1234-5678-9012."
                            ),
                            "schema": {
                                "type": "string",
                                "minLength": 12,
                                "maxLength": 14,
                                "pattern": rules.UNIFIED_ID,
                            },
                            "example": EXAMPLE_UNIFIED_ID,
                        }
                    ],
                )
            },
            "/link-events": {
                "get": _operation(
                    "linkEvents",
                    "Links and unlinks, oldest first, from a cursor",
                    SCOPE_EVENTS,
                    {
                        "200": _json("A page of events.", "LinkEventPage"),
                        "400": _malformed("Malformed cursor or limit."),
                    },
                    parameters=[
                        {
                            "name": "cursor",
                            "in": "query",
                            "required": False,
                            "description": "next_cursor of the previous page; omit to start.",
                            "schema": {"type": "string", "maxLength": 18, "pattern": rules.CURSOR},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "schema": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": rules.EVENTS_PAGE_MAX,
                                "default": rules.EVENTS_PAGE_DEFAULT,
                            },
                        },
                    ],
                )
            },
            "/link-requests": {
                "post": _operation(
                    "pushLinkRequest",
                    "Push a link request for the service's signed-in customer",
                    SCOPE_LINK_REQUESTS,
                    {
                        "201": {
                            **_json("Send the customer's browser to url.", "PushedLinkRequest"),
                        },
                        "400": _malformed(
                            "The body is not a LinkRequest, or a field is malformed."
                        ),
                        "403": _problem(
                            403,
                            "The token lacks the scope, the return_url is not one registered "
                            "for this client (exact match), or the service's policy does not "
                            "accept links vouched for by the service.",
                            [
                                problems.INSUFFICIENT_SCOPE,
                                problems.RETURN_URL_NOT_REGISTERED,
                                problems.VOUCHING_NOT_ALLOWED,
                            ],
                        ),
                        "404": _problem(
                            404,
                            "No such account at a service this client may see.",
                            [problems.NOT_FOUND],
                        ),
                        **_body_errors(max_body),
                    },
                    requestBody=_json_body(
                        "LinkRequest",
                        {
                            "service": EXAMPLE_SERVICE,
                            "external_id": EXAMPLE_EXTERNAL_ID,
                            "return_url": EXAMPLE_RETURN_URL,
                            "state": "af0ifjsldkj",
                        },
                    ),
                )
            },
            "/link-results": {
                "post": _operation(
                    "exchangeLinkResult",
                    "Exchange the code the return URL got for the result, once",
                    SCOPE_LINK_REQUESTS,
                    {
                        "200": _json("The result of the link request.", "LinkResult"),
                        "400": _malformed('The body is not {"code": ...}, or a malformed code.'),
                        "404": _problem(
                            404,
                            "The code is unknown, expired, already exchanged, or another client's.",
                            [problems.NOT_FOUND],
                        ),
                        **_body_errors(max_body),
                    },
                    requestBody=_json_body(
                        "LinkResultRequest", {"code": "Pq3dJ6o6t0bXCMmA2s9g1eOHc8vBz7LkQwErTyUiOpA"}
                    ),
                )
            },
        },
        "components": {
            "securitySchemes": {
                "clientCredentials": {
                    "type": "oauth2",
                    "description": "Client ID and secret as registered by staff.",
                    "flows": {
                        "clientCredentials": {
                            "tokenUrl": site + reverse("idp:oidc:token"),
                            "scopes": {
                                SCOPE_RESOLVE: "Resolve legacy accounts to unified IDs.",
                                SCOPE_REVERSE: "List the accounts linked to a unified ID.",
                                SCOPE_EVENTS: "Read the feed of link events.",
                                SCOPE_LINK_REQUESTS: (
                                    "Push link requests for signed-in customers and "
                                    "exchange their results."
                                ),
                            },
                        }
                    },
                }
            },
            "headers": {
                "RateLimit-Policy": {
                    "description": (
                        "The client's quota: q calls per w seconds, in fixed windows "
                        "that start at a window's first call "
                        "(draft-ietf-httpapi-ratelimit-headers)."
                    ),
                    "required": True,
                    "schema": {
                        "type": "string",
                        "pattern": (
                            f'^"{RATE_LIMIT_POLICY}";q=[0-9]+;w={RATE_LIMIT_WINDOW_SECONDS}$'
                        ),
                    },
                },
                "RateLimit": {
                    "description": (
                        "r: calls left in this window, counted by every web process "
                        "together; t: seconds until it ends."
                    ),
                    "required": True,
                    "schema": {
                        "type": "string",
                        "pattern": f'^"{RATE_LIMIT_POLICY}";r=[0-9]+;t=[0-9]+$',
                    },
                },
                "Retry-After": {
                    "description": "Seconds until the next window.",
                    "required": True,
                    "schema": {"type": "string", "pattern": "^[0-9]+$"},
                },
                "WWW-Authenticate": {
                    "description": "The Bearer challenge (RFC 6750).",
                    "required": True,
                    "schema": {"type": "string", "pattern": "^Bearer realm="},
                },
                "Allow": {
                    "description": "The one method this path answers.",
                    "required": True,
                    "schema": {"type": "string"},
                },
            },
            "schemas": {
                "Problem": {
                    "description": "RFC 9457 problem details.",
                    "type": "object",
                    "required": ["type", "title", "status", "detail", "error"],
                    "properties": {
                        "type": {"type": "string", "format": "uri"},
                        "title": {"type": "string"},
                        "status": {"type": "integer", "minimum": 400, "maximum": 599},
                        "detail": {"type": "string"},
                        "instance": {"type": "string", "format": "uri-reference"},
                        "error": {
                            "type": "string",
                            "description": "The problem type's short code.",
                            "enum": [kind.code for kind in problems.KINDS],
                        },
                    },
                },
                "Resolved": {
                    "type": "object",
                    "required": ["service", "external_id", "unified_id", "linked_at"],
                    "properties": {
                        "service": {"type": "string"},
                        "external_id": {"type": "string"},
                        "unified_id": _UNIFIED_ID,
                        "linked_at": _TIME,
                    },
                },
                "BatchRequest": {
                    "type": "object",
                    "required": ["items"],
                    "additionalProperties": False,
                    "properties": {
                        "items": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": rules.BATCH_LIMIT,
                            "items": {
                                "type": "object",
                                "required": ["service", "external_id"],
                                "additionalProperties": False,
                                "properties": {"service": _SERVICE, "external_id": _EXTERNAL_ID},
                            },
                        }
                    },
                },
                "BatchResult": {
                    "type": "object",
                    "required": ["results"],
                    "properties": {
                        "results": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["service", "external_id", "unified_id"],
                                "properties": {
                                    "service": {"type": "string"},
                                    "external_id": {"type": "string"},
                                    "unified_id": {
                                        "oneOf": [_UNIFIED_ID, {"type": "null"}],
                                        "description": "null: not linked, or not visible.",
                                    },
                                },
                            },
                        }
                    },
                },
                "LinkedAccounts": {
                    "type": "object",
                    "required": ["unified_id", "accounts"],
                    "properties": {
                        "unified_id": _UNIFIED_ID,
                        "accounts": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["service", "external_id", "linked_at"],
                                "properties": {
                                    "service": {"type": "string"},
                                    "external_id": {"type": "string"},
                                    "linked_at": _TIME,
                                },
                            },
                        },
                    },
                },
                "LinkRequest": {
                    "type": "object",
                    "required": ["service", "external_id", "return_url"],
                    "additionalProperties": False,
                    "properties": {
                        "service": _SERVICE,
                        "external_id": _EXTERNAL_ID,
                        "return_url": {
                            "type": "string",
                            "maxLength": rules.RETURN_URL_MAX,
                            "pattern": rules.RETURN_URL,
                            "description": "One of the client's registered return URLs, exactly.",
                        },
                        "state": {
                            "type": "string",
                            "maxLength": rules.STATE_MAX,
                            "pattern": rules.STATE,
                            "description": "Sent back with the code, as given (CSRF protection).",
                        },
                    },
                },
                "PushedLinkRequest": {
                    "type": "object",
                    "required": ["request_uri", "url", "expires_in"],
                    "properties": {
                        "request_uri": {"type": "string"},
                        "url": {"type": "string", "format": "uri"},
                        "expires_in": {"type": "integer"},
                    },
                },
                "LinkResultRequest": {
                    "type": "object",
                    "required": ["code"],
                    "additionalProperties": False,
                    "properties": {"code": {"type": "string", "pattern": rules.CODE}},
                },
                "LinkResult": {
                    "type": "object",
                    "required": [
                        "result",
                        "service",
                        "external_id",
                        "unified_id",
                        "reference",
                        "state",
                    ],
                    "properties": {
                        "result": {
                            "type": "string",
                            "enum": ["linked", "already_linked", "linked_elsewhere", "cancelled"],
                        },
                        "service": {"type": "string"},
                        "external_id": {"type": "string"},
                        "unified_id": {
                            "oneOf": [_UNIFIED_ID, {"type": "null"}],
                            "description": "The customer's, when linked or already linked.",
                        },
                        "reference": {
                            "type": ["string", "null"],
                            "description": "The audit reference of a linked_elsewhere conflict.",
                        },
                        "state": {"type": "string"},
                    },
                },
                "LinkEventPage": {
                    "type": "object",
                    "required": ["events", "next_cursor", "has_more"],
                    "properties": {
                        "events": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": [
                                    "id",
                                    "action",
                                    "service",
                                    "external_id",
                                    "unified_id",
                                    "proof",
                                    "at",
                                ],
                                "properties": {
                                    "id": {"type": "string"},
                                    "action": {"type": "string", "enum": ["link", "unlink"]},
                                    "service": {"type": "string"},
                                    "external_id": {"type": "string"},
                                    "unified_id": {"type": "string"},
                                    "proof": {"type": ["string", "null"]},
                                    "at": _TIME,
                                },
                            },
                        },
                        "next_cursor": {
                            "type": "string",
                            "description": "Pass as cursor for the next page; poll with it.",
                        },
                        "has_more": {"type": "boolean"},
                    },
                },
            },
        },
    }
