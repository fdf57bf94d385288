"""The JSON API for group services: OAuth 2 client credentials, scopes, resolve,
reverse, batch, the link-event feed, rate limits and the audit of every call."""

import psycopg
import pytest
from django.test import Client as DjangoClient
from django.urls import reverse
from django.utils import timezone

from linking import claims
from linking.api.models import ApiCall, ServiceClient
from tests.api_support import bearer, fetch_token

pytest_plugins = ["tests.fixtures.api"]


@pytest.fixture(autouse=True)
def _no_settle(settings):
    # The feed holds back its last seconds in production; tests read at once.
    settings.API_EVENTS_SETTLE_SECONDS = 0


@pytest.fixture
def store(service):
    return service


@pytest.fixture
def pos(make_service):
    return make_service("pos")


@pytest.fixture
def store_client(make_client, store):
    return make_client("store backend", services=[store])


def _link(account, customer):
    claims.link(account=account, customer=customer, proof="code", request=None)


def _get(token: str, url: str, **params):
    return DjangoClient().get(url, params, **bearer(token))


def _batch(token: str, items) -> object:
    return DjangoClient().post(
        reverse("api:resolve_batch"),
        {"items": items},
        content_type="application/json",
        **bearer(token),
    )


def _resolve(token: str, service: str, external_id: str):
    return _get(token, reverse("api:resolve"), service=service, external_id=external_id)


def test_a_client_resolves_a_linked_account_to_its_unified_id(
    store_client, store, make_account, customer
):
    account = make_account("S0001", service=store)
    _link(account, customer)
    token = fetch_token(store_client)

    response = _resolve(token, "store", "S0001")

    assert response.status_code == 200
    body = response.json()
    assert body["unified_id"] == customer.unified_id
    assert (body["service"], body["external_id"]) == ("store", "S0001")
    account.refresh_from_db()
    assert body["linked_at"] == account.linked_at.isoformat()


def test_an_unlinked_or_unknown_account_is_not_found(store_client, store, make_account):
    make_account("S0002", service=store)
    token = fetch_token(store_client)

    assert _resolve(token, "store", "S0002").status_code == 404
    assert _resolve(token, "store", "NO-SUCH").status_code == 404


def test_reverse_lists_the_accounts_linked_to_a_unified_id(
    make_client, store, pos, make_account, customer
):
    registered = make_client(services=[store, pos])
    _link(make_account("S1", service=store), customer)
    _link(make_account("P1", service=pos), customer)
    token = fetch_token(registered)

    response = _get(token, reverse("api:reverse", args=[customer.unified_id_display]))

    assert response.status_code == 200
    assert response.json()["unified_id"] == customer.unified_id
    assert [(a["service"], a["external_id"]) for a in response.json()["accounts"]] == [
        ("pos", "P1"),
        ("store", "S1"),
    ]


def test_a_foreign_services_accounts_stay_hidden_everywhere(
    store_client, store, pos, make_account, make_customer
):
    """The store's client may see the store only: the POS account of the same person
    is hidden in resolve, reverse, batch and the feed alike."""
    hanako = make_customer("hanako@example.jp")
    taro = make_customer("taro@example.jp")
    _link(make_account("S1", service=store), hanako)
    _link(make_account("P1", service=pos), hanako)
    _link(make_account("P2", service=pos), taro)  # taro has nothing at the store
    token = fetch_token(store_client)

    assert _resolve(token, "pos", "P1").status_code == 404
    assert _resolve(token, "pos", "P2").status_code == 404

    accounts = _get(token, reverse("api:reverse", args=[hanako.unified_id])).json()["accounts"]
    assert [a["service"] for a in accounts] == ["store"]
    # A unified ID whose accounts are all elsewhere is, to this client, unknown.
    assert _get(token, reverse("api:reverse", args=[taro.unified_id])).status_code == 404

    results = _batch(
        token,
        [{"service": "store", "external_id": "S1"}, {"service": "pos", "external_id": "P1"}],
    ).json()["results"]
    assert [r["unified_id"] for r in results] == [hanako.unified_id, None]

    events = _get(token, reverse("api:link_events")).json()["events"]
    assert [(e["service"], e["external_id"]) for e in events] == [("store", "S1")]


def test_batch_resolves_up_to_a_thousand_accounts_in_order(
    store_client, store, make_account, customer
):
    _link(make_account("S0500", service=store), customer)
    token = fetch_token(store_client)
    items = [{"service": "store", "external_id": f"S{n:04d}"} for n in range(1000)]

    response = _batch(token, items)

    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 1000
    assert [r["external_id"] for r in results] == [i["external_id"] for i in items]
    assert {r["external_id"] for r in results if r["unified_id"]} == {"S0500"}
    assert results[500]["unified_id"] == customer.unified_id


def test_batch_refuses_more_than_a_thousand_items(store_client):
    token = fetch_token(store_client)
    items = [{"service": "store", "external_id": f"S{n:04d}"} for n in range(1001)]

    response = _batch(token, items)

    assert response.status_code == 400
    assert response.json()["error"] == "too_many_items"


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"items": []}', b'{"items": [1]}', b'{"items": [{"service": 1}]}'],
)
def test_batch_answers_malformed_bodies_with_400(store_client, body):
    token = fetch_token(store_client)
    response = DjangoClient().post(
        reverse("api:resolve_batch"), body, content_type="application/json", **bearer(token)
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_the_feed_pages_through_link_events_with_a_cursor(
    store_client, store, make_account, customer
):
    accounts = [make_account(f"S{n}", service=store) for n in range(5)]
    for account in accounts:
        _link(account, customer)
    claims.unlink(account=accounts[0], customer=customer, request=None)
    token = fetch_token(store_client)

    seen, cursor = [], "0"
    while True:
        page = _get(token, reverse("api:link_events"), cursor=cursor, limit=2).json()
        seen += [(e["action"], e["external_id"]) for e in page["events"]]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break

    assert seen == [("link", f"S{n}") for n in range(5)] + [("unlink", "S0")]
    # Polling from the last cursor finds nothing new until something happens.
    assert _get(token, reverse("api:link_events"), cursor=cursor).json()["events"] == []
    claims.unlink(account=accounts[1], customer=customer, request=None)
    newer = _get(token, reverse("api:link_events"), cursor=cursor).json()["events"]
    assert [(e["action"], e["external_id"]) for e in newer] == [("unlink", "S1")]


def test_calls_without_a_valid_token_are_refused(store_client):
    for headers in ({}, bearer("made-up"), {"HTTP_AUTHORIZATION": "Basic abc"}):
        response = DjangoClient().get(
            reverse("api:resolve"), {"service": "store", "external_id": "S1"}, **headers
        )
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_token_without_the_scope_of_the_call_is_refused(store_client, customer):
    token = fetch_token(store_client, scope="resolve")

    response = _get(token, reverse("api:reverse", args=[customer.unified_id]))
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"
    assert _get(token, reverse("api:link_events")).status_code == 403
    assert _resolve(token, "store", "S1").status_code == 404


def test_a_client_cannot_obtain_scopes_it_was_not_given(make_client, store):
    registered = make_client(services=[store], scopes=["resolve"])
    response = DjangoClient().post(
        reverse("idp:oidc:token"),
        {"grant_type": "client_credentials", "scope": "resolve events"},
        HTTP_AUTHORIZATION=registered.basic_auth(),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_a_wrong_or_rotated_secret_gets_no_token(store_client):
    store_client.secret = "guessed"
    response = DjangoClient().post(
        reverse("idp:oidc:token"),
        {"grant_type": "client_credentials", "scope": "resolve"},
        HTTP_AUTHORIZATION=store_client.basic_auth(),
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_the_client_secret_is_stored_hashed(store_client):
    store_client.client.refresh_from_db()
    assert store_client.secret not in store_client.client.secret
    assert store_client.client.check_secret(store_client.secret)


def test_a_client_over_its_rate_limit_is_told_when_to_come_back(make_client, store):
    registered = make_client(services=[store], rate_limit_per_minute=3)
    token = fetch_token(registered)

    statuses = [_resolve(token, "store", "S1").status_code for _ in range(5)]

    assert statuses == [404, 404, 404, 429, 429]
    response = _resolve(token, "store", "S1")
    assert 1 <= int(response["Retry-After"]) <= 61


def test_every_authenticated_call_is_audited(store_client, store, make_account, customer):
    _link(make_account("S1", service=store), customer)
    token = fetch_token(store_client)
    before = timezone.now()

    _resolve(token, "store", "S1")
    _resolve(token, "store", "S9")
    _batch(token, [{"service": "store", "external_id": "S1"}] * 3)
    _get(token, reverse("api:reverse", args=[customer.unified_id]))

    calls = list(
        ApiCall.objects.order_by("id").values_list("client_id", "endpoint", "status", "subject")
    )
    assert calls == [
        (store_client.client_id, "resolve", 200, "store:S1"),
        (store_client.client_id, "resolve", 404, "store:S9"),
        (store_client.client_id, "batch", 200, "store:S1"),  # asked three times, one row
        (store_client.client_id, "reverse", 200, customer.unified_id),
    ]
    assert ApiCall.objects.get(endpoint="batch").items == 3
    # Who and when, as stored (by COPY on PostgreSQL).
    stamps = ApiCall.objects.values_list("ip", "created_at")
    assert {ip for ip, _at in stamps} == {"127.0.0.1"}
    assert all(before <= at <= timezone.now() for _ip, at in stamps)


def test_the_audit_keeps_the_longest_service_code_and_member_number_whole(
    make_client, make_service
):
    service = make_service("s" * 50)
    token = fetch_token(make_client("long codes", services=[service]))
    external_id = "9" * 64

    assert _resolve(token, service.code, external_id).status_code == 404  # nobody has it

    assert ApiCall.objects.get().subject == f"{service.code}:{external_id}"


def test_a_batch_records_every_account_it_asked_about(
    store_client, store, pos, make_account, customer
):
    """Who looked up whose IDs, for a batch too: one audit row per account asked
    about (once, however often the batch named it; visible to the client or not),
    each with the batch's size, all at the call's moment."""
    _link(make_account("S1", service=store), customer)
    token = fetch_token(store_client)
    items = [
        {"service": "store", "external_id": "S1"},
        {"service": "pos", "external_id": "P1"},  # not the client's to see
        {"service": "store", "external_id": "S2"},
        {"service": "store", "external_id": "S1"},
    ]

    assert _batch(token, items).status_code == 200
    assert _batch(token, [*items, {"service": "store"}]).status_code == 400

    rows = list(
        ApiCall.objects.order_by("id").values_list("status", "subject", "items", "created_at")
    )
    assert [row[:3] for row in rows] == [
        (200, "store:S1", 4),
        (200, "pos:P1", 4),
        (200, "store:S2", 4),
        (400, "", 5),  # refused before anything was looked up
    ]
    assert len({at for _s, _subject, _items, at in rows[:3]}) == 1
    # Staff find the batch lookups of an account the way they find single ones.
    assert ApiCall.objects.filter(subject="store:S2").count() == 1


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"service": "store"},
        {"service": "store", "external_id": "S\x001"},
        {"service": "store", "external_id": "x" * 65},
    ],
)
def test_resolve_answers_bad_input_with_400(store_client, params):
    token = fetch_token(store_client)
    response = _get(token, reverse("api:resolve"), **params)
    assert response.status_code == 400


@pytest.mark.parametrize(
    "value", ["123", "abc\x00", "１２３４５６７８９０１２", "12 34 56 78 90 12", "\t123456789012"]
)
def test_reverse_answers_a_malformed_unified_id_with_400(store_client, value):
    token = fetch_token(store_client)
    response = _get(token, reverse("api:reverse", args=[value]))
    assert response.status_code == 400


def test_reverse_takes_an_id_as_printed_and_a_mistyped_one_is_nobodys(
    store_client, store, make_account, customer
):
    # Twelve digits are well formed whatever their check digit (the document cannot
    # state a check digit): one that does not match is an ID nobody has, so 404.
    _link(make_account("S1", service=store), customer)
    token = fetch_token(store_client)
    digits = customer.unified_id
    mistyped = digits[:-1] + str((int(digits[-1]) + 1) % 10)

    printed = f"{digits[:4]}-{digits[4:8]} {digits[8:]}"
    assert _get(token, reverse("api:reverse", args=[printed])).json()["unified_id"] == digits
    response = _get(token, reverse("api:reverse", args=[mistyped]))
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


@pytest.mark.parametrize("params", [{"cursor": "x"}, {"limit": "0"}, {"limit": "1001"}])
def test_the_feed_answers_bad_cursors_and_limits_with_400(store_client, params):
    token = fetch_token(store_client)
    assert _get(token, reverse("api:link_events"), **params).status_code == 400


def test_a_client_without_api_access_gets_no_answers(make_client, store):
    registered = make_client(services=[store])
    token = fetch_token(registered)
    ServiceClient.objects.filter(pk=registered.client_id).delete()
    from django.core.cache import cache

    cache.clear()
    assert _resolve(token, "store", "S1").status_code == 401


def test_the_openapi_document_describes_every_endpoint(client):
    document = client.get("/api/v1/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {
        "/resolve",
        "/resolve/batch",
        "/unified-ids/{unified_id}/accounts",
        "/link-events",
        "/link-requests",
        "/link-results",
    }
    flow = document["components"]["securitySchemes"]["clientCredentials"]["flows"]
    assert flow["clientCredentials"]["tokenUrl"].endswith("/identity/o/api/token")


@pytest.mark.django_db(transaction=True)
def test_resolve_answers_after_the_database_dropped_the_kept_connection(
    store_client, store, make_account, customer
):
    # Resolve skips Django's per-request health check ("SELECT 1") and instead tries
    # its read again on a new connection when a connection kept from an earlier
    # request turns out dead (the database restarted meanwhile).
    from django.db import close_old_connections, connection

    if connection.vendor != "postgresql":
        pytest.skip("kept connections (CONN_MAX_AGE) are PostgreSQL's; SQLite opens per request")
    _link(make_account("S0001", service=store), customer)
    token = fetch_token(store_client)
    assert _resolve(token, "store", "S0001").status_code == 200
    kept = connection.connection.info.backend_pid

    with psycopg.connect(**connection.get_connection_params()) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [kept])
    # What each request's start does under a real server (Django's test client
    # leaves it out): the kept connection is to be checked before its next use.
    close_old_connections()

    response = _resolve(token, "store", "S0001")
    assert response.status_code == 200
    assert response.json()["unified_id"] == customer.unified_id
    assert connection.connection.info.backend_pid != kept


@pytest.mark.django_db(transaction=True)
def test_resolve_on_a_kept_connection_sends_no_health_check_query(
    store_client, store, make_account, customer, tmp_path, settings
):
    # What the database is sent for one resolve on a connection kept from an earlier
    # request, as libpq traces it: the prepared read first, no "SELECT 1" before it.
    # (Django checks the connection before its own first query of a request: here the
    # audit row, which production buffers and writes from another connection.) The
    # rate limit counts in Redis in production, not in this database.
    from django.db import close_old_connections, connection

    settings.RATE_LIMIT_STORAGE_URL = "memory://"
    from psycopg.pq import Trace

    if connection.vendor != "postgresql":
        pytest.skip("kept connections (CONN_MAX_AGE) are PostgreSQL's; SQLite opens per request")
    _link(make_account("S0001", service=store), customer)
    token = fetch_token(store_client)
    assert _resolve(token, "store", "S0001").status_code == 200
    close_old_connections()  # a new request begins, as under a real server

    trace = tmp_path / "libpq.trace"
    with trace.open("w") as file:
        pgconn = connection.connection.pgconn
        pgconn.trace(file.fileno())
        pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS)
        response = _resolve(token, "store", "S0001")
        pgconn.untrace()

    assert response.status_code == 200
    sent = [line for line in trace.read_text().splitlines() if line.startswith("F")]
    assert "\tBind\t" in sent[0], sent  # the prepared read, first
    assert sum("\tBind\t" in line for line in sent) == 1, sent  # and once


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("prepared", [True, False])
def test_resolve_reads_the_same_with_or_without_a_prepared_statement(
    store_client, store, make_account, customer, settings, prepared, tmp_path
):
    # Behind a pooler that cannot keep prepared statements (DB_PREPARED_STATEMENTS=0)
    # the read goes unnamed each time.
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no prepared statements to keep")
    settings.DB_PREPARED_STATEMENTS = prepared
    account = make_account("S0001", service=store)
    _link(account, customer)
    token = fetch_token(store_client)

    trace = tmp_path / "libpq.trace"
    connection.close()  # a new session, with nothing prepared yet
    with trace.open("w") as file:
        connection.ensure_connection()
        connection.connection.pgconn.trace(file.fileno())
        answers = [_resolve(token, "store", "S0001").json() for _ in range(3)]
        connection.connection.pgconn.untrace()

    account.refresh_from_db()
    assert (
        answers
        == [
            {
                "service": "store",
                "external_id": "S0001",
                "unified_id": customer.unified_id,
                "linked_at": account.linked_at.isoformat(),
            }
        ]
        * 3
    )
    parses = [
        line.split("\tParse\t")[1].split('"SELECT')[0].strip()
        for line in trace.read_text().splitlines()
        if "\tParse\t" in line and "linking_legacyaccount" in line
    ]
    if prepared:
        assert len(parses) == 1 and parses != ['""'], parses  # named once, then only bound
    else:
        assert parses == ['""'] * 3  # the unnamed statement, each time


@pytest.mark.django_db(transaction=True)
def test_resolve_prepares_its_statement_again_when_the_session_lost_it(
    store_client, store, make_account, customer
):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no prepared statements to lose")
    _link(make_account("S0001", service=store), customer)
    token = fetch_token(store_client)
    assert _resolve(token, "store", "S0001").status_code == 200

    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # as a pooler's DISCARD ALL does

    response = _resolve(token, "store", "S0001")
    assert response.status_code == 200
    assert response.json()["unified_id"] == customer.unified_id


def test_the_apis_4xx_answers_are_audited_not_logged_as_warnings(store_client, client, caplog):
    token = fetch_token(store_client)

    with caplog.at_level("WARNING", logger="django.request"):
        assert _resolve(token, "store", "NO-SUCH").status_code == 404
        assert _get("not-a-token", reverse("api:resolve"), service="store").status_code == 401
        assert client.get("/no-such-page/").status_code == 404

    logged = [record.getMessage() for record in caplog.records if record.name == "django.request"]
    assert logged == ["Not Found: /no-such-page/"]
    assert ApiCall.objects.filter(status=404).count() == 1
