"""The OpenAPI 3.1 document of /api/v1, written by hand next to the views it
describes; tests/test_api_schema.py runs schemathesis against it, which fails on
any response that does not match it."""

from django.urls import reverse

from linking.api.models import SCOPE_EVENTS, SCOPE_RESOLVE, SCOPE_REVERSE

_ID = {"type": "string", "minLength": 1, "maxLength": 64}
_UNIFIED_ID = {
    "type": "string",
    "pattern": "^[0-9]{12}$",
    "description": "12 digits, the last a Damm check digit.",
}
_TIME = {"type": "string", "format": "date-time"}


def _error_response(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(description: str, schema_name: str) -> dict:
    return {
        "description": description,
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}
        },
    }


_COMMON_ERRORS = {
    "401": _error_response("No valid bearer access token."),
    "403": _error_response("The token lacks the scope this call needs."),
    "429": _error_response("Rate limit reached; see Retry-After."),
}


def _operation(operation_id: str, summary: str, scope: str, responses: dict, **extra) -> dict:
    return {
        "operationId": operation_id,
        "summary": summary,
        "security": [{"clientCredentials": [scope]}],
        "responses": {**responses, **_COMMON_ERRORS},
        **extra,
    }


def document(*, server_url: str) -> dict:
    site = server_url.removesuffix("/api/v1")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Unified ID API for group services",
            "version": "1.0.0",
            "description": (
                "Which unified ID owns a legacy account, which accounts a unified ID "
                "has linked, and the history of links. A client sees only the legacy "
                "services it is registered for; anything else answers as if it did "
                "not exist."
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
                        "400": _error_response("service or external_id missing or malformed."),
                        "404": _error_response("No linked account this client may see."),
                    },
                    parameters=[
                        {"name": "service", "in": "query", "required": True, "schema": _ID},
                        {"name": "external_id", "in": "query", "required": True, "schema": _ID},
                    ],
                )
            },
            "/resolve/batch": {
                "post": _operation(
                    "resolveBatch",
                    "Resolve up to 1,000 legacy accounts at once",
                    SCOPE_RESOLVE,
                    {
                        "200": _json("One result per item, in order.", "BatchResult"),
                        "400": _error_response("Malformed body or more than 1,000 items."),
                    },
                    requestBody={
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/BatchRequest"}
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
                        "400": _error_response("Not a well-formed unified ID."),
                        "404": _error_response("No linked account this client may see."),
                    },
                    parameters=[
                        {
                            "name": "unified_id",
                            "in": "path",
                            "required": True,
                            "description": (
                                "Spaces and hyphens, as printed on the card, are ignored."
                            ),
                            "schema": {"type": "string", "minLength": 12, "maxLength": 20},
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
                        "400": _error_response("Malformed cursor or limit."),
                    },
                    parameters=[
                        {
                            "name": "cursor",
                            "in": "query",
                            "required": False,
                            "description": "next_cursor of the previous page; omit to start.",
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                        },
                    ],
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
                            },
                        }
                    },
                }
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
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
                    "properties": {
                        "items": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": 1000,
                            "items": {
                                "type": "object",
                                "required": ["service", "external_id"],
                                "properties": {"service": _ID, "external_id": _ID},
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
