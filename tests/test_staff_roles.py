"""Roles: analysts read, support link and unlink with a reason (recorded in the
audit trail), nobody edits the audit trail."""

import pytest
from django.contrib.auth.models import Group

from accounts.audit import AuditEvent
from linking.models import LegacyAccount, LinkEvent
from tests.fixtures.staff import verified_login


@pytest.fixture
def person(make_customer):
    return make_customer("hanako@example.jp")


@pytest.fixture
def account(make_account):
    return make_account("S0001234", email="hanako@example.jp")


def _link(client, person, account, reason="本人確認済み（電話・生年月日）"):
    return client.post(
        f"/admin/customer/{person.pk}/link/",
        {"service": account.service_id, "external_id": account.external_id, "reason": reason},
    )


def test_the_migration_creates_the_three_roles(db):
    perms = {
        group.name: {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}
        for group in Group.objects.prefetch_related("permissions__content_type")
    }
    assert {"analyst", "support", "admin"} <= perms.keys()
    assert all(p.split(".")[1].startswith("view_") for p in perms["analyst"])
    assert "linking.view_link_dashboard" in perms["analyst"]
    assert "linking.assist_link" not in perms["analyst"]
    assert perms["support"] - perms["analyst"] == {"linking.assist_link"}
    assert {"linking.assist_link", "auth.change_group", "campaigns.add_campaign"} <= perms["admin"]


def test_an_analyst_sees_no_link_form_and_cannot_link(client, make_staff, person, account):
    verified_login(client, make_staff(role="analyst"))
    page = client.get(f"/admin/customer/{person.pk}/")
    assert page.status_code == 200
    assert 'data-testid="link-form"' not in page.content.decode()
    assert _link(client, person, account).status_code == 403
    assert (
        client.post(
            f"/admin/customer/{person.pk}/unlink/", {"account": account.pk, "reason": "xxxxxx"}
        ).status_code
        == 403
    )
    account.refresh_from_db()
    assert account.owner is None
    assert not LinkEvent.objects.exists()


def test_an_analyst_cannot_change_legacy_accounts_in_the_admin(client, make_staff, account):
    verified_login(client, make_staff(role="analyst"))
    url = f"/admin/linking/legacyaccount/{account.pk}/change/"
    assert client.get(url).status_code == 200
    assert client.post(url, {"external_id": "X"}).status_code == 403


def test_support_links_with_a_reason_recorded_in_the_audit_trail(
    client, make_staff, person, account
):
    staff = make_staff(role="support")
    verified_login(client, staff)
    assert 'data-testid="link-form"' in client.get(f"/admin/customer/{person.pk}/").content.decode()
    assert _link(client, person, account).status_code == 302
    account.refresh_from_db()
    assert account.owner == person
    event = LinkEvent.objects.get()
    assert (event.proof, event.actor_kind, event.actor) == ("staff", "staff", staff)
    assert event.reason == "本人確認済み（電話・生年月日）"
    audit = AuditEvent.objects.get(action="linked")
    assert (audit.actor, audit.actor_kind, audit.customer) == (staff, "staff", person)
    assert audit.reason == "本人確認済み（電話・生年月日）"


@pytest.mark.parametrize("reason", ["", "   ", "ok"])
def test_support_cannot_link_without_a_reason(client, make_staff, person, account, reason):
    verified_login(client, make_staff(role="support"))
    assert _link(client, person, account, reason=reason).status_code == 302
    account.refresh_from_db()
    assert account.owner is None


def test_support_cannot_take_an_account_owned_by_someone_else(
    client, make_staff, person, account, make_customer
):
    other = make_customer("other@example.jp")
    LegacyAccount.objects.filter(pk=account.pk).update(owner=other, linked_at="2026-01-01T00:00Z")
    verified_login(client, make_staff(role="support"))
    response = _link(client, person, account)
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.owner == other
    assert AuditEvent.objects.filter(action="link_conflict", actor_kind="staff").exists()


def test_support_unlinks_with_a_reason(client, make_staff, person, account):
    staff = make_staff(role="support")
    verified_login(client, staff)
    _link(client, person, account)
    response = client.post(
        f"/admin/customer/{person.pk}/unlink/",
        {"account": account.pk, "reason": "お客様のご依頼（誤連携）"},
    )
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.owner is None
    audit = AuditEvent.objects.get(action="unlinked")
    assert (audit.actor, audit.reason) == (staff, "お客様のご依頼（誤連携）")


@pytest.mark.parametrize("body", [{}, {"account": "x", "reason": "ちゃんとした理由"}])
def test_bad_unlink_input_never_fails(client, make_staff, person, body):
    verified_login(client, make_staff(role="support"))
    assert client.post(f"/admin/customer/{person.pk}/unlink/", body).status_code == 302
    assert client.post("/admin/customer/999999/unlink/", body).status_code == 404


def test_nobody_edits_the_audit_trail(otp_admin_client, person, account):
    from accounts import audit

    event = audit.record("linked", request=None, customer=person, account=account, reason="r")
    base = "/admin/accounts/auditevent/"
    assert otp_admin_client.get(f"{base}add/").status_code == 403
    assert otp_admin_client.get(f"{base}{event.pk}/delete/").status_code == 403
    page = otp_admin_client.get(f"{base}{event.pk}/change/").content.decode()
    assert 'name="_save"' not in page
    assert otp_admin_client.post(f"{base}{event.pk}/change/", {"reason": "x"}).status_code == 403


def test_the_audit_trail_filters_by_customer_actor_action_and_date(
    otp_admin_client, make_staff, person, account, make_customer
):
    from accounts import audit

    staff = make_staff("support@example.jp", role="support")
    mine = audit.record(
        "linked", request=None, customer=person, actor=staff, actor_kind="staff", reason="r"
    )
    other = audit.record("proof_failed", request=None, customer=make_customer("x@example.jp"))
    base = "/admin/accounts/auditevent/"
    for query in (
        f"q={person.unified_id}",
        "q=hanako@example.jp",
        "q=support@example.jp",
        "action=linked",
        "actor_kind=staff",
        f"created_at__year={mine.created_at.year}&action=linked",
    ):
        page = otp_admin_client.get(f"{base}?{query}").content.decode()
        assert mine.reference in page, query
        assert other.reference not in page, query
