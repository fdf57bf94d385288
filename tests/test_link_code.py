import email
import email.policy
import re
from datetime import timedelta

import pytest
from django.test import TestCase
from django.utils import timezone
from django_otp import devices_for_user

from accounts.audit import AuditEvent
from linking.models import OwnershipCode
from linking.proofs import ProofRefused, ProofThrottled
from linking.proofs.code import link_by_code, send_code
from tests.fixtures.mfa import stepped_up


@pytest.fixture
def customer_client(customer_client):
    """Linking needs step-up (accounts.stepup): the customer re-authenticated just now."""
    return stepped_up(customer_client)


@pytest.fixture
def legacy(make_account):
    return make_account(
        "S0005678", email="Taro.Yamada@Example.jp", phone="090-1234-5678", points=300
    )


def _send_code(**kwargs) -> OwnershipCode:
    """send_code, its transaction committed: the mail task hands the code over."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return send_code(**kwargs)


def _code_from(mailoutbox) -> str:
    return re.search(r"\b(\d{6})\b", mailoutbox[-1].body).group(1)


def test_code_goes_to_the_email_on_the_legacy_record(rf, customer, legacy, mailoutbox):
    _send_code(customer=customer, account=legacy, channel="email", request=rf.post("/"))
    assert mailoutbox[-1].to == ["Taro.Yamada@Example.jp"]
    code = _code_from(mailoutbox)
    stored = OwnershipCode.objects.get()
    assert code not in stored.code_hash
    assert stored.expires_at - stored.created_at <= timedelta(minutes=10)
    assert AuditEvent.objects.filter(action="code_sent", account=legacy).exists()


def test_the_right_code_links(rf, customer, legacy, mailoutbox):
    _send_code(customer=customer, account=legacy, channel="email", request=rf.post("/"))
    link_by_code(
        customer=customer, account=legacy, entered=_code_from(mailoutbox), request=rf.post("/")
    )
    legacy.refresh_from_db()
    assert legacy.owner == customer
    assert legacy.link_events.get().proof == "code"
    # Counted before the comparison, the right code's attempt is given back.
    assert OwnershipCode.objects.get().failed_attempts == 0


def test_a_code_works_only_once(rf, customer, legacy, mailoutbox):
    _send_code(customer=customer, account=legacy, channel="email", request=rf.post("/"))
    code = _code_from(mailoutbox)
    link_by_code(customer=customer, account=legacy, entered=code, request=rf.post("/"))
    from linking.claims import unlink

    unlink(account=legacy, customer=customer, request=None)
    with pytest.raises(ProofRefused):
        link_by_code(customer=customer, account=legacy, entered=code, request=rf.post("/"))
    legacy.refresh_from_db()
    assert legacy.owner is None


def test_an_expired_code_is_refused(rf, customer, legacy, mailoutbox):
    _send_code(customer=customer, account=legacy, channel="email", request=rf.post("/"))
    OwnershipCode.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(ProofRefused):
        link_by_code(
            customer=customer, account=legacy, entered=_code_from(mailoutbox), request=rf.post("/")
        )
    legacy.refresh_from_db()
    assert legacy.owner is None


def test_a_code_is_bound_to_its_account(rf, customer, legacy, make_account, mailoutbox):
    other = make_account("S0009999", email="someone@example.jp")
    _send_code(customer=customer, account=legacy, channel="email", request=rf.post("/"))
    with pytest.raises(ProofRefused):
        link_by_code(
            customer=customer, account=other, entered=_code_from(mailoutbox), request=rf.post("/")
        )
    other.refresh_from_db()
    assert other.owner is None


def test_a_code_is_bound_to_its_customer(rf, customer, make_customer, legacy, mailoutbox):
    intruder = make_customer("intruder@example.jp")
    _send_code(customer=customer, account=legacy, channel="email", request=rf.post("/"))
    with pytest.raises(ProofRefused):
        link_by_code(
            customer=intruder, account=legacy, entered=_code_from(mailoutbox), request=rf.post("/")
        )
    legacy.refresh_from_db()
    assert legacy.owner is None


def test_five_wrong_codes_lock_it(rf, customer, legacy, mailoutbox):
    _send_code(customer=customer, account=legacy, channel="email", request=rf.post("/"))
    code = _code_from(mailoutbox)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(5):
        with pytest.raises(ProofRefused):
            link_by_code(customer=customer, account=legacy, entered=wrong, request=rf.post("/"))
    with pytest.raises(ProofRefused):
        link_by_code(customer=customer, account=legacy, entered=code, request=rf.post("/"))
    legacy.refresh_from_db()
    assert legacy.owner is None
    assert AuditEvent.objects.filter(action="code_locked").count() == 1
    assert AuditEvent.objects.filter(action="proof_failed", method="code").count() == 6


def test_a_new_code_replaces_the_old_one(rf, customer, legacy, mailoutbox):
    _send_code(customer=customer, account=legacy, channel="email", request=rf.post("/"))
    old = _code_from(mailoutbox)
    _send_code(customer=customer, account=legacy, channel="email", request=rf.post("/"))
    new = _code_from(mailoutbox)
    if old != new:
        with pytest.raises(ProofRefused):
            link_by_code(customer=customer, account=legacy, entered=old, request=rf.post("/"))
    link_by_code(customer=customer, account=legacy, entered=new, request=rf.post("/"))
    legacy.refresh_from_db()
    assert legacy.owner == customer


def test_sending_is_throttled_per_account(rf, customer, legacy):
    for _ in range(3):
        _send_code(customer=customer, account=legacy, channel="email", request=rf.post("/"))
    with pytest.raises(ProofThrottled):
        _send_code(customer=customer, account=legacy, channel="email", request=rf.post("/"))


def test_sms_goes_to_the_phone_on_record_through_the_sms_backend(rf, customer, legacy, settings):
    _send_code(customer=customer, account=legacy, channel="sms", request=rf.post("/"))
    (sms,) = list((settings.MAILBOX_DIR).glob("*.eml"))
    message = email.message_from_bytes(sms.read_bytes(), policy=email.policy.default)
    assert message["To"] == "+819012345678@sms.invalid"
    assert re.search(r"\b\d{6}\b", message.get_content())


def test_no_channel_without_a_contact(rf, customer, make_account):
    bare = make_account("S0000001")
    with pytest.raises(ProofRefused):
        _send_code(customer=customer, account=bare, channel="email", request=rf.post("/"))


def test_an_ownership_code_is_not_a_sign_in_factor(rf, customer, legacy):
    _send_code(customer=customer, account=legacy, channel="email", request=rf.post("/"))
    assert list(devices_for_user(customer, confirmed=None)) == []


def test_code_journey_through_the_pages(customer_client, customer, service, legacy, mailoutbox):
    response = customer_client.post(
        f"/link/service/{service.code}/", {"num-external_id": "S0005678"}
    )
    assert response.status_code == 302
    code_url = response["Location"]
    page = customer_client.get(code_url).content.decode()
    assert "T***@example.jp".lower() in page.lower()
    assert "Taro.Yamada" not in page
    customer_client.post(code_url, {"channel": "email"})
    response = customer_client.post(
        code_url,
        {"code": "000000" if _code_from(mailoutbox) != "000000" else "111111"},
        follow=True,
    )
    assert "code" in response.content.decode().lower()
    legacy.refresh_from_db()
    assert legacy.owner is None
    response = customer_client.post(code_url, {"code": _code_from(mailoutbox)}, follow=True)
    legacy.refresh_from_db()
    assert legacy.owner == customer
    assert "****5678" in response.content.decode()


def test_member_number_lookups_are_throttled_per_customer(customer_client, service, make_account):
    make_account("S0005678", email="taro@example.jp")
    for number in range(10):
        customer_client.post(f"/link/service/{service.code}/", {"num-external_id": f"X{number}"})
    response = customer_client.post(
        f"/link/service/{service.code}/", {"num-external_id": "S0005678"}
    )
    assert response.status_code == 200  # stays on the page with a message, no code page
    assert "15" in response.content.decode()
