"""Outbound requests go only to public addresses: webhook URLs that point into our
own network are refused when registered and again when delivered, and the refused
delivery makes no connection (a local listener counts none, and Python's audit hook
sees no connect and no DNS lookup). Names are resolved once and the connection goes
to the checked address, with the name kept for Host and TLS; no redirects; https
only in production; OUTBOUND_ALLOWED_HOSTS lets internal receivers through."""

import ipaddress
import socket
from collections.abc import Iterator

import pytest
import requests
from django.core.exceptions import ValidationError
from django.utils import translation
from standardwebhooks import Webhook

from accounts import outbound
from linking import claims
from linking.api import outbox, webhooks
from linking.api.models import ServiceClient, WebhookAttempt, WebhookDelivery
from tests.webhook_support import Listener, NetworkGuard, WebhookReceiver, tls_context_for

pytest_plugins = ["tests.fixtures.api"]

NOT_PUBLIC = "This is not a public address: requests go only to public addresses."


def _loopback_name() -> str | None:
    """This machine's own name, when it resolves to loopback only (as in most
    containers): a name on no list, refused for what it resolves to."""
    name = socket.gethostname()
    try:
        answers = socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return None
    loopback = all(ipaddress.ip_address(a[4][0]).is_loopback for a in answers)
    return name if loopback else None


LOOPBACK_NAME = _loopback_name()

# (URL, what it is). {v4} and {v6} are ports where a listener counts connections.
FORBIDDEN = [
    ("http://127.0.0.1:6379/", "Redis on loopback"),
    ("http://127.0.0.1:{v4}/hook", "loopback"),
    ("http://169.254.169.254/latest/meta-data/", "link-local cloud metadata"),
    ("http://10.0.0.1/hook", "private network"),
    ("http://[::1]:{v6}/hook", "IPv6 loopback"),
    ("http://[::ffff:10.0.0.1]/hook", "IPv4-mapped private"),
    ("http://metadata.google.internal/computeMetadata/v1/", "metadata name"),
    ("http://localhost:{v4}/hook", "a name for loopback"),
    ("http://127.1:{v4}/hook", "loopback in short numeric form"),
    ("http://0.0.0.0:{v4}/hook", "unspecified (reaches loopback)"),
    ("https://100.64.0.1/hook", "shared address space"),
    ("http://224.0.0.1/hook", "multicast"),
]
if LOOPBACK_NAME:
    FORBIDDEN.append((f"http://{LOOPBACK_NAME}:{{v4}}/hook", "a host name resolving to loopback"))


@pytest.fixture
def listeners() -> Iterator[tuple[Listener, Listener]]:
    v4, v6 = Listener("127.0.0.1"), Listener("::1")
    yield v4, v6
    v4.close()
    v6.close()


@pytest.fixture
def guard(listeners, settings) -> NetworkGuard:
    """Connections only to the counting listeners, lookups only of local names; an
    allow-list that covers neither listener."""
    v4, v6 = listeners
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1:9", "192.0.2.0/24"]
    return NetworkGuard(
        connect_to={("127.0.0.1", v4.port), ("::1", v6.port)},
        look_up={"localhost", "127.1", LOOPBACK_NAME or "localhost"},  # no DNS for these
    )


def _registration_errors(access: ServiceClient, language: str = "en") -> list[str]:
    """The model validation that the admin's form runs, as staff read it."""
    with translation.override(language), pytest.raises(ValidationError) as refused:
        access.full_clean()
    with translation.override(language):
        return [str(message) for message in refused.value.message_dict["webhook_url"]]


def _url(template: str, listeners) -> str:
    v4, v6 = listeners
    return template.format(v4=v4.port, v6=v6.port)


@pytest.mark.parametrize(("template", "kind"), FORBIDDEN, ids=[kind for _, kind in FORBIDDEN])
def test_a_forbidden_webhook_url_is_refused_at_registration(
    template, kind, make_client, listeners, guard
):
    access = make_client().access
    access.webhook_url = _url(template, listeners)

    with guard:
        errors = _registration_errors(access)

    # Django's own URL check refuses some first (no top-level domain); either way.
    assert NOT_PUBLIC in errors or errors == ["Enter a valid URL."], errors
    assert guard.attempts == []
    assert [listener.accepts for listener in listeners] == [0, 0]


@pytest.mark.parametrize(("template", "kind"), FORBIDDEN, ids=[kind for _, kind in FORBIDDEN])
def test_a_forbidden_webhook_url_is_refused_at_delivery_without_a_connection(
    template, kind, settings, make_client, service, make_account, make_customer, listeners, guard
):
    """A URL stored before the check existed, or a name whose DNS changed since."""
    make_client(services=[service], webhook_url=_url(template, listeners))
    customer = make_customer("hanako@example.jp")
    claims.link(account=make_account(service=service), customer=customer, proof="x", request=None)
    delivery = WebhookDelivery.objects.get()

    with guard:
        outcome = webhooks.deliver(delivery.pk)

    assert guard.attempts == []  # no connect, no DNS query
    assert [listener.accepts for listener in listeners] == [0, 0]
    assert outcome.status == "pending"  # a failed attempt, retried later
    delivery.refresh_from_db()
    # What staff see names no address, port or internal error.
    assert delivery.last_error == "refused: not a public address"
    assert WebhookAttempt.objects.get().error == "refused: not a public address"


def test_staff_registering_a_metadata_url_in_the_admin_get_a_clear_error(otp_admin_client):
    form = {
        "id": "metadata-thief",
        "name": "metadata thief",
        "type": "confidential",
        "scopes": "resolve",
        "grant_types": "client_credentials",
        "response_types": "code",
        "service_access-TOTAL_FORMS": "1",
        "service_access-INITIAL_FORMS": "0",
        "service_access-MIN_NUM_FORMS": "0",
        "service_access-MAX_NUM_FORMS": "1",
        "service_access-0-rate_limit_per_minute": "60000",
        "service_access-0-webhook_url": "http://169.254.169.254/latest/meta-data/",
    }

    page = otp_admin_client.post(
        "/admin/allauth_idp_oidc/client/add/", form, headers={"accept-language": "en"}
    )

    assert page.status_code == 200
    assert NOT_PUBLIC in page.content.decode()
    assert not ServiceClient.objects.exists()


def test_the_registration_error_is_in_japanese_too(make_client):
    access = make_client().access
    access.webhook_url = "http://10.0.0.1/hook"

    assert _registration_errors(access, "ja") == [
        "公開されていないアドレスです。送信先は公開アドレスに限られます。"
    ]


def test_an_allow_listed_network_is_reached(settings, make_client, listeners):
    v4, _v6 = listeners
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.0/8"]
    access = make_client().access
    access.webhook_url = f"http://127.0.0.1:{v4.port}/hook"
    access.full_clean()  # registration accepts it

    with pytest.raises(requests.ConnectionError):  # it hangs up without an HTTP answer
        outbound.post(access.webhook_url, body=b"{}", headers={}, timeout=5)

    assert v4.accepts == 1


def test_a_name_is_resolved_once_and_the_checked_address_is_used(settings, make_client, receiver):
    """No second lookup between the check and the connection: DNS rebinding has no
    moment to answer differently. Host still names the name."""
    settings.OUTBOUND_ALLOWED_HOSTS = [f"localhost:{receiver.port}"]
    registered = make_client(webhook_url=f"http://localhost:{receiver.port}/hook")
    receiver.secret = registered.access.webhook_secret

    with NetworkGuard(connect_to={("127.0.0.1", receiver.port)}, look_up={"localhost"}) as guard:
        outcome = webhooks.deliver(outbox.ping(registered.access).pk)

    assert outcome.status == "delivered"
    assert guard.lookups.count("localhost") == 1
    assert guard.attempts == []
    assert receiver.received[0].headers["Host"] == f"localhost:{receiver.port}"


def _tls_receiver(name: str, tmp_path, settings) -> tuple[WebhookReceiver, list[str]]:
    context, certificate = tls_context_for(name, tmp_path)
    server_names: list[str] = []
    context.sni_callback = lambda _socket, sni, _context: server_names.append(sni)
    receiver = WebhookReceiver(tls=context, host="localhost").start()
    settings.OUTBOUND_CA_BUNDLE = str(certificate)
    settings.OUTBOUND_ALLOWED_HOSTS = [f"localhost:{receiver.port}"]
    return receiver, server_names


def test_tls_to_the_checked_address_still_sends_and_verifies_the_name(
    settings, tmp_path, make_client
):
    receiver, server_names = _tls_receiver("localhost", tmp_path, settings)
    registered = make_client(webhook_url=receiver.url)
    receiver.secret = registered.access.webhook_secret
    try:
        outcome = webhooks.deliver(outbox.ping(registered.access).pk)
    finally:
        receiver.stop()

    assert outcome.status == "delivered"
    assert server_names == ["localhost"]  # SNI
    request = receiver.received[0]
    assert request.headers["Host"] == f"localhost:{receiver.port}"
    assert Webhook(registered.access.webhook_secret).verify(request.body, request.headers)


def test_tls_refuses_a_certificate_for_another_name(settings, tmp_path, make_client):
    receiver, _server_names = _tls_receiver("other.example", tmp_path, settings)
    registered = make_client(webhook_url=receiver.url)
    try:
        outcome = webhooks.deliver(outbox.ping(registered.access).pk)
    finally:
        receiver.stop()

    assert outcome.status == "pending"
    assert receiver.count() == 0
    assert WebhookDelivery.objects.get().last_error.startswith("SSLError")


def test_a_redirect_is_not_followed(settings, make_client, make_receiver, listeners):
    v4, _v6 = listeners
    receiver = make_receiver()
    receiver.answers = [307]
    receiver.redirect_to = f"http://127.0.0.1:{v4.port}/elsewhere"
    # Even a target that is allowed: the redirect itself is not followed.
    settings.OUTBOUND_ALLOWED_HOSTS = [*settings.OUTBOUND_ALLOWED_HOSTS, f"127.0.0.1:{v4.port}"]
    registered = make_client(webhook_url=receiver.url)
    receiver.secret = registered.access.webhook_secret

    outcome = webhooks.deliver(outbox.ping(registered.access).pk)

    assert outcome.status == "pending"
    assert WebhookDelivery.objects.get().last_error == "HTTP 307"
    assert v4.accepts == 0


def test_in_production_only_https(settings, make_client, receiver):
    settings.SITE_URL = "https://id.example.jp"
    registered = make_client(webhook_url=receiver.url)  # http, and allow-listed
    access = registered.access

    errors = _registration_errors(access)
    outcome = webhooks.deliver(outbox.ping(access).pk)

    assert errors == ["Use an https:// address."]
    assert outcome.status == "pending"
    assert WebhookDelivery.objects.get().last_error == "refused: https only"
    assert receiver.count() == 0


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:10.0.0.1",
        "::ffff:127.0.0.1",
        "2002:a00:1::",  # 6to4 around 10.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 around 169.254.169.254
    ],
)
def test_addresses_that_are_not_public(address):
    assert not outbound.is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "203.0.114.1", "2606:4700:4700::1111"])
def test_addresses_that_are_public(address):
    assert outbound.is_public(ipaddress.ip_address(address))
