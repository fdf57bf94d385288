import hashlib

import bcrypt
import pytest
from django.contrib.auth import hashers
from django.contrib.auth.hashers import make_password

from accounts import audit
from accounts.audit import AuditEvent
from linking.claims import AccountTaken
from linking.models import LinkEvent
from linking.proofs import ProofRefused, ProofThrottled
from linking.proofs.password import link_by_password, verify_legacy_password
from tests.fixtures.mfa import stepped_up

SECRET = "legacy-Secret-99"


@pytest.fixture
def customer_client(customer_client):
    """Linking needs step-up (accounts.stepup): the customer re-authenticated just now."""
    return stepped_up(customer_client)


def _sha256(salt: str, password: str) -> str:
    return f"sha256${salt}${hashlib.sha256((salt + password).encode()).hexdigest()}"


@pytest.mark.parametrize(
    "encoded",
    [
        make_password(SECRET, hasher=hashers.Argon2PasswordHasher()),
        make_password(SECRET, hasher="pbkdf2_sha256"),
        make_password(SECRET, hasher=hashers.PBKDF2SHA1PasswordHasher()),
        make_password(SECRET, hasher=hashers.BCryptSHA256PasswordHasher()),
        make_password(SECRET, hasher=hashers.MD5PasswordHasher()),
        bcrypt.hashpw(SECRET.encode(), bcrypt.gensalt(rounds=4)).decode(),
        bcrypt.hashpw(SECRET.encode(), bcrypt.gensalt(rounds=4))
        .decode()
        .replace("$2b$", "$2y$", 1),
        _sha256("pepper42", SECRET),
    ],
    ids=[
        "argon2",
        "pbkdf2_sha256",
        "pbkdf2_sha1",
        "bcrypt_sha256",
        "md5",
        "bcrypt",
        "bcrypt-2y",
        "sha256",
    ],
)
def test_legacy_hash_formats_verify_the_right_password_only(encoded):
    assert verify_legacy_password(encoded, SECRET)
    assert not verify_legacy_password(encoded, SECRET + "x")
    assert not verify_legacy_password(encoded, "")


@pytest.mark.parametrize(
    "encoded", ["", "plain-text", "crypt$abc$def", "$2b$broken", "sha256$salt"]
)
def test_unknown_or_broken_hashes_never_verify(encoded):
    assert not verify_legacy_password(encoded, SECRET)


@pytest.fixture
def legacy(make_account):
    return make_account(
        "S0001234", password_hash=make_password(SECRET, hasher="pbkdf2_sha256"), points=1200
    )


def test_right_password_links_and_records_history(rf, customer, service, legacy):
    request = rf.post("/", REMOTE_ADDR="203.0.113.9", HTTP_USER_AGENT="Phone/1.0")
    link_by_password(
        customer=customer,
        service=service,
        external_id=" S0001234 ",
        password=SECRET,
        request=request,
    )
    legacy.refresh_from_db()
    assert legacy.owner == customer
    event = LinkEvent.objects.get(account=legacy)
    assert (event.action, event.proof, event.ip, event.user_agent) == (
        "link",
        "password",
        "203.0.113.9",
        "Phone/1.0",
    )
    assert event.customer_unified_id == customer.unified_id
    assert AuditEvent.objects.filter(
        action="proof_succeeded", account=legacy, method="password"
    ).exists()


def test_wrong_password_is_refused_and_audited(rf, customer, service, legacy):
    with pytest.raises(ProofRefused):
        link_by_password(
            customer=customer,
            service=service,
            external_id="S0001234",
            password="nope",
            request=rf.post("/"),
        )
    legacy.refresh_from_db()
    assert legacy.owner is None
    assert AuditEvent.objects.filter(
        action="proof_failed", account=legacy, reason="wrong password"
    ).exists()


def test_unknown_member_number_gets_the_same_message(rf, customer, service, legacy):
    with pytest.raises(ProofRefused) as wrong_password:
        link_by_password(
            customer=customer,
            service=service,
            external_id="S0001234",
            password="nope",
            request=rf.post("/"),
        )
    with pytest.raises(ProofRefused) as unknown:
        link_by_password(
            customer=customer,
            service=service,
            external_id="S9999999",
            password="nope",
            request=rf.post("/"),
        )
    assert str(wrong_password.value.message) == str(unknown.value.message)


def test_five_failures_lock_the_account_even_for_the_right_password(rf, customer, service, legacy):
    for _ in range(5):
        with pytest.raises(ProofRefused):
            link_by_password(
                customer=customer,
                service=service,
                external_id="S0001234",
                password="x",
                request=rf.post("/"),
            )
    with pytest.raises(ProofThrottled):
        link_by_password(
            customer=customer,
            service=service,
            external_id="S0001234",
            password=SECRET,
            request=rf.post("/"),
        )
    legacy.refresh_from_db()
    assert legacy.owner is None


def test_account_owned_elsewhere_is_refused_with_a_reference(rf, make_customer, service, legacy):
    first = make_customer("first@example.jp")
    second = make_customer("second@example.jp")
    link_by_password(
        customer=first,
        service=service,
        external_id="S0001234",
        password=SECRET,
        request=rf.post("/"),
    )
    with pytest.raises(AccountTaken) as taken:
        link_by_password(
            customer=second,
            service=service,
            external_id="S0001234",
            password=SECRET,
            request=rf.post("/"),
        )
    legacy.refresh_from_db()
    assert legacy.owner == first
    conflict = AuditEvent.objects.get(action="link_conflict")
    assert conflict.reference == taken.value.reference
    assert conflict.customer == second


def test_the_link_page_links_with_the_password(customer_client, customer, service, legacy):
    response = customer_client.post(
        f"/link/service/{service.code}/",
        {"pw-external_id": "S0001234", "pw-password": SECRET},
        follow=True,
    )
    assert response.status_code == 200
    legacy.refresh_from_db()
    assert legacy.owner == customer
    assert "****1234" in response.content.decode()


def test_the_link_page_says_when_the_account_is_taken(client, make_customer, rf, service, legacy):
    owner = make_customer("owner@example.jp")
    link_by_password(
        customer=owner,
        service=service,
        external_id="S0001234",
        password=SECRET,
        request=rf.post("/"),
    )
    client.force_login(make_customer("other@example.jp"))
    stepped_up(client)
    response = client.post(
        f"/link/service/{service.code}/",
        {"pw-external_id": "S0001234", "pw-password": SECRET},
        follow=True,
    )
    reference = AuditEvent.objects.get(action="link_conflict").reference
    assert reference in response.content.decode()
    legacy.refresh_from_db()
    assert legacy.owner == owner


def test_a_service_that_does_not_accept_passwords_offers_no_password_form(
    customer_client, make_service, make_account
):
    pos = make_service("pos", proofs=["code"])
    account = make_account(
        "P1", service=pos, password_hash=make_password(SECRET, hasher="pbkdf2_sha256")
    )
    response = customer_client.post(
        "/link/service/pos/", {"pw-external_id": "P1", "pw-password": SECRET}
    )
    assert 'name="pw-password"' not in response.content.decode()
    account.refresh_from_db()
    assert account.owner is None


def test_behind_a_proxy_the_audit_records_the_clients_address(
    rf, settings, customer, service, legacy
):
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    request = rf.post("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.7")
    link_by_password(
        customer=customer, service=service, external_id="S0001234", password=SECRET, request=request
    )
    assert LinkEvent.objects.get(account=legacy).ip == "198.51.100.7"


def test_the_client_address_follows_each_requests_headers_and_the_proxy_setting(rf, settings):
    # audit.client_ip remembers allauth's answers; a remembered answer must never be
    # given to a request whose headers, or whose proxy setting, differ.
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    first = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.7")
    second = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert [audit.client_ip(first), audit.client_ip(second)] == ["198.51.100.7", "203.0.113.9"]
    assert audit.client_ip(first) == "198.51.100.7"  # asked again

    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 0
    assert audit.client_ip(first) == "10.0.0.2"

    settings.ALLAUTH_TRUSTED_CLIENT_IP_HEADER = "X-Real-IP"
    behind = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_REAL_IP="192.0.2.44")
    assert audit.client_ip(behind) == "192.0.2.44"
    # Not an address: the connection's own address, as before the memory.
    assert (
        audit.client_ip(rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_REAL_IP="bogus")) == "10.0.0.2"
    )
