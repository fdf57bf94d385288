"""Account deletion: after re-authentication and a confirmation, no personal data
of the customer is left anywhere in the database, their legacy accounts are
released with a history entry, and their unified ID is retired for good."""

import json

import pytest
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.sessions.models import Session
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import audit, consent
from accounts.audit import ActorKind, AuditEvent
from accounts.models import ConsentRecord, Customer, IssuedUnifiedID
from linking import claims
from linking.campaigns.models import Campaign, Delivery, Suppression
from linking.models import LegacyAccount, LinkEvent, OwnershipCode
from tests.conftest import PASSWORD
from tests.fixtures.mfa import pass_second_factor

EMAIL = "hanako.yamada@example.jp"
NAME = "山田 花子"
KANA = "ヤマダ ハナコ"
PHONE = "090-1234-5678"
PHONE_E164 = "+819012345678"
IP = "198.51.100.77"
USER_AGENT = "Mozilla/5.0 (iPhone; HanakoPhone) Mobile Safari"


def database_hits(needle: str) -> list[str]:
    """Every table and column of the database whose text contains the needle, as
    stored (also JSON-escaped, as SQLite stores JSON), plus decoded sessions."""
    forms = {needle.lower(), json.dumps(needle)[1:-1].lower()}
    hits = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            for column in connection.introspection.get_table_description(cursor, table):
                name = connection.ops.quote_name(column.name)
                for form in forms:
                    cursor.execute(
                        f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)} "  # noqa: S608
                        f"WHERE LOWER(CAST({name} AS TEXT)) LIKE %s",
                        [f"%{form}%"],
                    )
                    if cursor.fetchone()[0]:
                        hits.append(f"{table}.{column.name}")
    for session in Session.objects.all():
        if needle.lower() in json.dumps(session.get_decoded(), ensure_ascii=False).lower():
            hits.append(f"django_session {session.session_key} (decoded)")
    return sorted(set(hits))


def _sign_in(email: str, *, reauthenticate: bool) -> Client:
    client = Client(HTTP_USER_AGENT=USER_AGENT, REMOTE_ADDR=IP)
    assert (
        client.post("/accounts/login/", {"login": email, "password": PASSWORD}).status_code == 302
    )
    device = TOTPDevice.objects.filter(user__email=email, confirmed=True).first()
    if device is not None:  # a second sign-in takes the app's next code (drift=1)
        pass_second_factor(client, device, drift=0 if device.last_t < 0 else 1)
    if reauthenticate:
        client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    return client


@pytest.fixture
def hanako(make_customer, make_account, make_service, rf, customer):
    """A customer with data in every place this site keeps some: sign-in email and
    identity, sessions on two devices, two linked legacy accounts, campaign mail,
    ownership codes, a second factor, consents, audit entries, an admin log entry.
    (The `customer` fixture is someone else, whose data must survive.)"""
    person = make_customer(EMAIL, name=NAME)
    SocialAccount.objects.create(
        user=person,
        provider="google",
        uid="google-sub-hanako",
        extra_data={"email": EMAIL, "name": NAME, "phone_number": PHONE},
    )
    TOTPDevice.objects.create(user=person, name=f"{NAME}のiPhone", confirmed=True)
    request = rf.post("/link/", REMOTE_ADDR=IP, HTTP_USER_AGENT=USER_AGENT)
    store = make_account("S-HANAKO", email=EMAIL, phone=PHONE, name=NAME, name_kana=KANA)
    app = make_account(
        "A-HANAKO",
        service=make_service("app"),
        email=EMAIL.upper(),
        phone=PHONE_E164,
        name=NAME,
        attributes={"address": "東京都千代田区1-1", "contact": EMAIL},
    )
    for account in (store, app):
        claims.link(account=account, customer=person, proof="password", request=request)
    campaign = Campaign.objects.create(
        name="春の連携キャンペーン",
        subject_ja="s",
        text_ja="t",
        sender_company="c",
        sender_address="a",
        sender_contact="x",
    )
    Delivery.objects.create(
        campaign=campaign,
        step=0,
        account=store,
        email=EMAIL,
        email_key=EMAIL,
        language="ja",
        status="sent",
        sent_at=timezone.now(),
    )
    OwnershipCode.objects.create(
        customer=person,
        account=store,
        channel="sms",
        code_hash="salt$digest",
        expires_at=timezone.now(),
    )
    audit.record(
        AuditEvent.Action.PROOF_FAILED,
        request=request,
        customer=person,
        account=store,
        method="code",
        reason=f"電話で本人確認: {NAME}（{PHONE}）",
        data={"note": f"連絡先 {EMAIL}"},
        actor=customer,
        actor_kind=ActorKind.STAFF,
    )
    consent.set_marketing_email(customer=person, granted=True, source="signup")
    LogEntry.objects.log_actions(
        user_id=customer.pk,
        queryset=[person],
        action_flag=CHANGE,
        change_message=f"{EMAIL} のメールアドレスを変更",
        single_object=True,
    )
    return person


def test_deleting_leaves_no_email_phone_or_name_anywhere_in_the_database(hanako, customer):
    other_device = _sign_in(EMAIL, reauthenticate=False)
    client = _sign_in(EMAIL, reauthenticate=True)
    unified_id = hanako.unified_id
    for needle in (EMAIL, NAME, PHONE, PHONE_E164, KANA, IP, USER_AGENT):
        assert database_hits(needle), f"the fixture should have put {needle} somewhere"

    response = client.post("/me/delete/", {"confirm": "on"})

    assert response.status_code == 200
    for needle in (EMAIL, NAME, PHONE, PHONE_E164, KANA, IP, USER_AGENT):
        assert database_hits(needle) == [], needle
    assert not Customer.objects.filter(pk=hanako.pk).exists()
    assert other_device.get("/me/").status_code == 302
    assert client.get("/me/").status_code == 302
    # The other customer and the history are still there.
    assert database_hits(customer.email)
    assert LinkEvent.objects.filter(customer_unified_id=unified_id).count() == 4
    assert AuditEvent.objects.filter(customer_unified_id=unified_id, action="customer_deleted")
    assert ConsentRecord.objects.filter(customer_unified_id=unified_id).count() == 1


def test_legacy_accounts_are_released_with_a_history_entry(hanako):
    client = _sign_in(EMAIL, reauthenticate=True)
    unified_id = hanako.unified_id

    client.post("/me/delete/", {"confirm": "on"})

    accounts = LegacyAccount.objects.filter(external_id__in=["S-HANAKO", "A-HANAKO"])
    assert [(a.owner, a.linked_at) for a in accounts] == [(None, None), (None, None)]
    unlinks = LinkEvent.objects.filter(customer_unified_id=unified_id, action="unlink")
    assert [(e.actor_kind, e.reason, e.customer) for e in unlinks] == [
        ("system", "unified ID deleted at the customer's request", None)
    ] * 2
    assert set(
        AuditEvent.objects.filter(customer_unified_id=unified_id).values_list("ip", flat=True)
    ) == {None}


def test_the_unified_id_is_retired_and_never_issued_again(hanako):
    client = _sign_in(EMAIL, reauthenticate=True)
    unified_id = hanako.unified_id

    client.post("/me/delete/", {"confirm": "on"})

    assert IssuedUnifiedID.objects.get(pk=unified_id).retired_at is not None
    with pytest.raises(ValueError), transaction.atomic():
        Customer.objects.create(email="new@example.jp", unified_id=unified_id)
    with pytest.raises(IntegrityError), transaction.atomic():
        IssuedUnifiedID.objects.create(unified_id=unified_id)
    newcomer = Customer.objects.create_user("new@example.jp", PASSWORD)
    assert newcomer.unified_id != unified_id


def test_a_suppressed_address_stays_suppressed(hanako):
    Suppression.objects.create(email_key=EMAIL, reason="unsubscribed")
    client = _sign_in(EMAIL, reauthenticate=True)

    client.post("/me/delete/", {"confirm": "on"})

    assert database_hits(EMAIL) == ["campaigns_suppression.email_key"]


def test_deletion_needs_the_password_again_and_a_confirmation(hanako):
    client = _sign_in(EMAIL, reauthenticate=False)

    response = client.post("/me/delete/", {"confirm": "on"})
    assert response.status_code == 302 and "/accounts/reauthenticate/" in response["Location"]

    client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    page = client.get("/me/delete/").content.decode()
    assert "2" in page and 'name="confirm"' in page
    response = client.post("/me/delete/", {"confirm": "", "junk": "x" * 5000})
    assert response.status_code == 200
    response = client.post("/me/delete/", {})
    assert response.status_code == 200
    assert Customer.objects.filter(pk=hanako.pk).exists()
    assert EmailAddress.objects.filter(user=hanako).exists()


def test_the_customer_gets_a_goodbye_mail_and_no_unlink_mails(
    hanako, mailoutbox, django_capture_on_commit_callbacks
):
    client = _sign_in(EMAIL, reauthenticate=True)
    mailoutbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        client.post("/me/delete/", {"confirm": "on"})

    assert [m.to for m in mailoutbox] == [[EMAIL]]
    assert hanako.unified_id_display in mailoutbox[0].body  # 1234 5678 9012, as on the card


def test_the_bound_line_account_is_released_with_an_audit_entry(hanako):
    from linking.line.models import LineFriend

    friend = LineFriend.objects.create(
        line_user_id="U" + "cd" * 16, customer=hanako, linked_at=timezone.now(), is_friend=True
    )
    client = _sign_in(EMAIL, reauthenticate=True)
    unified_id = hanako.unified_id

    client.post("/me/delete/", {"confirm": "on"})

    friend.refresh_from_db()
    assert (friend.customer, friend.linked_at, friend.is_friend) == (None, None, True)
    unlinked = AuditEvent.objects.get(customer_unified_id=unified_id, action="line_unlinked")
    assert (unlinked.actor_kind, unlinked.method) == ("system", "line")
