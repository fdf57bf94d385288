"""Every failure under /api/ is an RFC 9457 problem (application/problem+json), with
the Bearer challenge RFC 6750 asks for; every answer to a client carries its rate
limit (RateLimit-Policy, RateLimit; Retry-After on 429)."""

import json
import re

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from linking.api.models import ApiCall
from tests.api_support import bearer, fetch_token

pytest_plugins = ["tests.fixtures.api"]

PROBLEM = "application/problem+json"
RATE_LIMIT = re.compile(r'"per-client";r=(\d+);t=(\d+)')


@pytest.fixture
def token(make_client, service) -> str:
    return fetch_token(make_client(services=[service]))


def _batch(token: str, body: bytes | str, content_type: str = "application/json"):
    return Client().post(
        reverse("api:resolve_batch"), body, content_type=content_type, **bearer(token)
    )


def _resolve(token: str, **params):
    params = {"service": "store", "external_id": "S1", **params}
    return Client().get(reverse("api:resolve"), params, **bearer(token))


def _assert_problem(response, status: int, error: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["type"] == "urn:problem-type:unified-id:" + error.replace("_", "-")
    assert (body["status"], body["error"]) == (status, error)
    assert body["title"] and body["detail"]
    assert body["instance"] == response.wsgi_request.path
    return body


CASES = {
    "not JSON": (lambda t: _batch(t, b"{items"), 400, "invalid_request"),
    "deeply nested JSON": (lambda t: _batch(t, "[" * 100_000), 400, "invalid_request"),
    "a lone surrogate": (
        lambda t: _batch(t, '{"items": [{"service": "store", "external_id": "\\ud800"}]}'),
        400,
        "invalid_request",
    ),
    "a member the document does not name": (
        lambda t: _batch(t, json.dumps({"items": [{"service": "s", "external_id": "e"}], "x": 1})),
        400,
        "invalid_request",
    ),
    "an item member the document does not name": (
        lambda t: _batch(
            t, json.dumps({"items": [{"service": "s", "external_id": "e", "ref": "1"}]})
        ),
        400,
        "invalid_request",
    ),
    "1,001 items": (
        lambda t: _batch(
            t, json.dumps({"items": [{"service": "store", "external_id": "S"}] * 1001})
        ),
        400,
        "too_many_items",
    ),
    "a limit of 5,000 digits": (
        lambda t: Client().get(reverse("api:link_events"), {"limit": "9" * 5000}, **bearer(t)),
        400,
        "invalid_request",
    ),
    "more query parameters than Django reads": (
        lambda t: Client().get(
            reverse("api:resolve"), {f"p{n}": "x" for n in range(1001)}, **bearer(t)
        ),
        400,
        "invalid_request",
    ),
    "no token": (lambda t: Client().get(reverse("api:resolve")), 401, "missing_token"),
    "an unknown token": (lambda t: _resolve("made-up"), 401, "invalid_token"),
    "not linked": (lambda t: _resolve(t), 404, "not_found"),
    "an unknown path under /api/v1/": (
        lambda t: Client().get("/api/v1/no-such", **bearer(t)),
        404,
        "not_found",
    ),
    "an unknown path under /api/": (
        lambda t: Client().post("/api/v2/resolve", **bearer(t)),
        404,
        "not_found",
    ),
    "a method the path does not answer": (
        lambda t: Client().delete(reverse("api:resolve"), **bearer(t)),
        405,
        "method_not_allowed",
    ),
    "a POST to the document": (
        lambda t: Client().post(reverse("api:openapi")),
        405,
        "method_not_allowed",
    ),
    "a form instead of JSON": (
        lambda t: _batch(t, "items=1", "application/x-www-form-urlencoded"),
        415,
        "unsupported_media_type",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_every_failure_is_a_problem(token, case):
    call, status, error = CASES[case]
    _assert_problem(call(token), status, error)


def test_a_body_over_the_upload_limit_is_a_413_problem(token, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    items = [{"service": "store", "external_id": f"S{n:04d}"} for n in range(50)]

    response = _batch(token, json.dumps({"items": items}))

    body = _assert_problem(response, 413, "body_too_large")
    assert "1000 bytes" in body["detail"]
    assert RATE_LIMIT.fullmatch(response["RateLimit"])
    assert list(ApiCall.objects.values_list("endpoint", "status")) == [("batch", 413)]


def test_a_missing_scope_is_a_problem_with_its_challenge(make_client, service):
    token = fetch_token(make_client(services=[service]), scope="resolve")

    response = Client().get(reverse("api:link_events"), **bearer(token))

    _assert_problem(response, 403, "insufficient_scope")
    assert response["WWW-Authenticate"] == (
        'Bearer realm="unified-id", error="insufficient_scope", scope="events"'
    )


@pytest.mark.parametrize("headers", [{}, {"HTTP_AUTHORIZATION": "Basic YTpi"}])
def test_a_call_without_a_bearer_token_is_challenged_without_an_error_code(token, headers):
    # RFC 6750 section 3.1: no error code when the request had no bearer credentials.
    response = Client().get(reverse("api:resolve"), **headers)

    _assert_problem(response, 401, "missing_token")
    assert response["WWW-Authenticate"] == 'Bearer realm="unified-id"'


@pytest.mark.parametrize("value", ["Bearer made-up", "Bearer ", "bearer " + "x" * 3000])
def test_a_bad_bearer_token_is_an_invalid_token(token, value):
    response = Client().get(reverse("api:resolve"), HTTP_AUTHORIZATION=value)

    _assert_problem(response, 401, "invalid_token")
    assert response["WWW-Authenticate"] == 'Bearer realm="unified-id", error="invalid_token"'


def test_every_answer_to_a_client_tells_its_rate_limit(make_client, service):
    registered = make_client(services=[service], rate_limit_per_minute=5)
    token = fetch_token(registered, scope="resolve")
    calls = [
        lambda: _resolve(token),  # 404
        lambda: _batch(token, json.dumps({"items": [{"service": "store", "external_id": "S"}]})),
        lambda: _resolve(token, service="not a slug"),  # 400
        lambda: Client().get(reverse("api:link_events"), **bearer(token)),  # 403
        lambda: Client().put(reverse("api:resolve"), **bearer(token)),  # 405
        lambda: _resolve(token),  # 429
    ]

    responses = [call() for call in calls]

    assert [r.status_code for r in responses] == [404, 200, 400, 403, 405, 429]
    assert {r["RateLimit-Policy"] for r in responses} == {'"per-client";q=5;w=60'}
    states = [RATE_LIMIT.fullmatch(r["RateLimit"]).groups() for r in responses]
    assert [int(left) for left, _reset in states] == [4, 3, 2, 1, 0, 0]
    assert all(1 <= int(reset) <= 61 for _left, reset in states)
    assert responses[-1]["Retry-After"] == states[-1][1]
    _assert_problem(responses[-1], 429, "rate_limited")


def test_answers_without_a_client_carry_no_rate_limit(token):
    # Nothing is counted without a valid token, so there is nothing to tell.
    for response in (Client().get(reverse("api:resolve")), _resolve("made-up")):
        assert response.status_code == 401
        assert "RateLimit" not in response
        assert "RateLimit-Policy" not in response


@pytest.mark.django_db(transaction=True)
def test_a_view_that_fails_answers_a_logged_audited_problem(token, caplog):
    table = "linking_legacyaccount"
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} RENAME TO {table}_away")
    try:
        with caplog.at_level("ERROR", logger="django.request"):
            response = Client(raise_request_exception=False).post(
                reverse("api:resolve_batch"),
                {"items": [{"service": "store", "external_id": "S1"}]},
                content_type="application/json",
                **bearer(token),
            )
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table}_away RENAME TO {table}")

    _assert_problem(response, 500, "server_error")
    assert RATE_LIMIT.fullmatch(response["RateLimit"])
    assert list(ApiCall.objects.values_list("endpoint", "status", "subject")) == [
        ("batch", 500, "store:S1")
    ]
    logged = [r for r in caplog.records if r.name == "django.request"]
    assert [r.getMessage() for r in logged] == ["Internal Server Error: /api/v1/resolve/batch"]
    assert logged[0].exc_info is not None  # with its traceback, once


@pytest.mark.django_db(transaction=True)
def test_a_failure_before_the_view_is_a_problem_too(token):
    # Reading the token fails (its table out of reach): Django's handler500, which
    # answers under /api/ with a problem and elsewhere with the site's page.
    table = "allauth_idp_oidc_token"
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} RENAME TO {table}_away")
    try:
        response = Client(raise_request_exception=False).get(
            reverse("api:resolve"), {"service": "store", "external_id": "S1"}, **bearer(token)
        )
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table}_away RENAME TO {table}")

    _assert_problem(response, 500, "server_error")


def test_a_request_django_refuses_is_a_problem_under_api_only(token):
    # An unknown Host: Django refuses it before any view (handler400).
    api = Client(HTTP_HOST="evil.example").get(reverse("api:resolve"), **bearer(token))
    _assert_problem(api, 400, "invalid_request")

    page = Client(HTTP_HOST="evil.example").get("/privacy/")
    assert page.status_code == 400
    assert page["Content-Type"].startswith("text/html")
