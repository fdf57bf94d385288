"""Data export: after a fresh sign-in, the customer downloads everything held
about them as JSON."""

import json

import pytest
from allauth.socialaccount.models import SocialAccount
from django.test import Client
from django.utils import timezone

from accounts import audit, consent
from accounts.audit import AuditEvent
from accounts.models import ConsentNotice
from linking import claims
from tests.conftest import PASSWORD

pytest_plugins = ["tests.fixtures.campaigns"]


@pytest.fixture
def signed_in(customer) -> Client:
    client = Client(
        HTTP_USER_AGENT="Mozilla/5.0 (iPhone) Mobile Safari", REMOTE_ADDR="198.51.100.7"
    )
    client.post("/accounts/login/", {"login": customer.email, "password": PASSWORD})
    client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    return client


def test_the_download_needs_the_password_again(customer_client):
    response = customer_client.get("/me/export/?download=1")

    assert response.status_code == 302 and "/accounts/reauthenticate/" in response["Location"]


def test_a_customer_without_password_signs_in_at_their_idp_first(client, make_customer):
    customer = make_customer("line@example.jp")
    customer.set_unusable_password()
    customer.save()
    SocialAccount.objects.create(user=customer, provider="line", uid="U123")
    client.force_login(customer)

    response = client.get("/me/export/?download=1")

    assert response.status_code == 302 and "/accounts/reauthenticate/idp/" in response["Location"]


def test_the_export_holds_profile_identities_links_consents_deliveries_and_audit(
    signed_in, customer, make_account, make_campaign, make_delivery
):
    customer.name = "山田 花子"
    customer.save()
    SocialAccount.objects.create(
        user=customer, provider="google", uid="g-42", extra_data={"name": "Hanako Yamada"}
    )
    account = make_account("S0001234", email="hanako@example.jp", phone="090-1234-5678", points=120)
    make_delivery(make_campaign(name="春の連携キャンペーン"), account)
    claims.link(account=account, customer=customer, proof="password", request=None)
    audit.record(AuditEvent.Action.PROOF_FAILED, request=None, customer=customer, method="code")
    notice = ConsentNotice.objects.create(
        purpose_ja="目的",
        joint_companies_ja="各社",
        joint_data_ja="項目",
        joint_purposes_ja="目的",
        responsible_company_ja="責任者",
        published_at=timezone.now(),
    )
    consent.agree(customer=customer, notice=notice, source="signup")
    consent.set_marketing_email(customer=customer, granted=True, source="signup")

    response = signed_in.get("/me/export/?download=1")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert f"unified-id-{customer.unified_id}.json" in response["Content-Disposition"]
    assert "no-store" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]
    data = json.loads(response.content)
    assert data["profile"]["unified_id"] == customer.unified_id
    assert data["profile"]["name"] == "山田 花子"
    assert data["profile"]["marketing_email_consent"] is True
    assert [a["email"] for a in data["email_addresses"]] == ["hanako@example.jp"]
    assert data["sign_in_identities"][0]["claims"] == {"name": "Hanako Yamada"}
    assert [s["ip"] for s in data["sessions"]] == ["198.51.100.7"]
    linked = data["linked_accounts"][0]
    assert (linked["member_number"], linked["phone"], linked["points"]) == (
        "S0001234",
        "090-1234-5678",
        120,
    )
    assert [e["action"] for e in data["link_history"]] == ["link"]
    assert [(c["kind"], c["notice_version"]) for c in data["consents"]] == [
        ("notice", 1),
        ("marketing_granted", None),
    ]
    assert data["campaign_deliveries"][0]["campaign"] == "春の連携キャンペーン"
    assert {e["action"] for e in data["audit_entries"]} == {"linked", "proof_failed"}


def test_the_export_holds_nothing_of_other_customers(signed_in, make_customer, make_account):
    other = make_customer("taro@example.jp", name="鈴木 太郎")
    claims.link(
        account=make_account("S9", email="taro@example.jp"),
        customer=other,
        proof="staff",
        request=None,
    )

    response = signed_in.get("/me/export/?download=1")

    assert response.status_code == 200
    body = response.content.decode()

    assert "taro@example.jp" not in body and "鈴木" not in body and other.unified_id not in body


def test_the_export_page_offers_the_download(signed_in):
    page = signed_in.get("/me/export/").content.decode()

    assert 'href="?download=1"' in page


def test_the_export_holds_the_bound_line_account(signed_in, customer):
    from linking.line.models import LineFriend

    bound = LineFriend.objects.create(
        line_user_id="U" + "ab" * 16, customer=customer, linked_at=timezone.now(), is_friend=True
    )

    data = json.loads(signed_in.get("/me/export/?download=1").content)

    assert data["line"]["line_user_id"] == bound.line_user_id
    assert data["line"]["is_friend"] is True
