"""Consent (APPI): versioned notices on purpose of use and joint use, agreed at
sign-up and before the first link; marketing email consent, withdrawable at any
time, which campaigns respect."""

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import override

from accounts import consent
from accounts.models import ConsentNotice, ConsentRecord, Customer
from linking import claims
from linking.campaigns import control, planning, sending
from linking.campaigns.models import Delivery
from tests.campaign_support import SmtpSink
from tests.conftest import PASSWORD

pytest_plugins = ["tests.fixtures.campaigns"]


@pytest.fixture
def make_notice(db):
    def make(
        *, published: bool = True, companies: str = "株式会社サンプル商事、サンプル電鉄株式会社"
    ):
        return ConsentNotice.objects.create(
            purpose_ja="会員サービスの提供、ポイントの合算、ご案内の送付のため",
            purpose_en="To run the membership, combine points and send you information",
            joint_companies_ja=companies,
            joint_companies_en="Sample Trading Co., Ltd. and Sample Railway Co., Ltd.",
            joint_data_ja="氏名、メールアドレス、電話番号、会員番号、ポイント残高",
            joint_data_en="Name, email address, phone number, member numbers, points",
            joint_purposes_ja="グループ共通IDによる本人確認とサービスの提供",
            joint_purposes_en="Identifying you with the group ID and providing services",
            responsible_company_ja="株式会社サンプルホールディングス（東京都千代田区）",
            responsible_company_en="Sample Holdings, Inc. (Chiyoda, Tokyo)",
            published_at=timezone.now() if published else None,
        )

    return make


def _signup(client, **extra):
    data = {"email": "new@example.jp", "password1": PASSWORD, "password2": PASSWORD, **extra}
    return client.post("/accounts/signup/", data)


def test_the_signup_page_asks_for_agreement_to_the_current_notice(client, make_notice):
    make_notice()
    page = client.get("/accounts/signup/").content.decode()

    assert 'name="agree"' in page and "required" in page
    assert 'name="notice_version" value="1"' in page
    assert "/privacy/" in page


def test_signing_up_without_agreeing_creates_no_customer(client, make_notice):
    make_notice()

    response = _signup(client, notice_version="1")

    assert response.status_code == 200
    assert not Customer.objects.filter(email="new@example.jp").exists()


def test_signing_up_records_the_agreed_version_and_the_marketing_choice(client, make_notice):
    make_notice()
    notice = make_notice(companies="株式会社サンプル商事")  # version 2 is current

    response = _signup(client, agree="on", notice_version="2")

    assert response.status_code == 302
    customer = Customer.objects.get(email="new@example.jp")
    records = list(ConsentRecord.objects.filter(customer=customer).order_by("kind"))
    assert [(r.kind, r.notice, r.source) for r in records] == [
        ("marketing_withdrawn", None, "signup"),
        ("notice", notice, "signup"),
    ]
    assert records[1].customer_unified_id == customer.unified_id
    assert customer.marketing_email_consent is False


def test_a_notice_published_while_the_form_was_open_must_be_read_first(client, make_notice):
    make_notice()
    make_notice()

    response = _signup(client, agree="on", notice_version="1")

    assert response.status_code == 200
    assert not Customer.objects.filter(email="new@example.jp").exists()


def test_opting_in_at_signup_records_marketing_consent(client, make_notice):
    make_notice()

    _signup(client, agree="on", notice_version="1", marketing_email="on")

    customer = Customer.objects.get(email="new@example.jp")
    assert customer.marketing_email_consent is True
    assert customer.consent_records.filter(kind="marketing_granted").count() == 1


def test_the_link_center_asks_before_the_first_proof(
    customer_client, customer, make_notice, service
):
    make_notice()
    current = make_notice()

    response = customer_client.get(f"/link/service/{service.code}/")

    assert response.status_code == 302
    assert response["Location"] == "/me/agreement/?next=%2Flink%2Fservice%2Fstore%2F"
    page = customer_client.get(response["Location"]).content.decode()
    assert "株式会社サンプル商事" in page and "株式会社サンプルホールディングス" in page

    response = customer_client.post(
        "/me/agreement/",
        {"agree": "on", "notice_version": "2", "next": f"/link/service/{service.code}/"},
    )

    assert response["Location"] == f"/link/service/{service.code}/"
    record = ConsentRecord.objects.get(customer=customer)
    assert (record.kind, record.notice, record.source) == ("notice", current, "link")
    assert customer_client.get(f"/link/service/{service.code}/").status_code == 200


def test_a_new_version_is_asked_for_again_and_both_answers_are_kept(
    customer_client, customer, make_notice, service
):
    first = make_notice()
    consent.agree(customer=customer, notice=first, source="link")
    assert customer_client.get(f"/link/service/{service.code}/").status_code == 200

    make_notice()

    assert customer_client.get(f"/link/service/{service.code}/").status_code == 302
    customer_client.post("/me/agreement/", {"agree": "on", "notice_version": "2"})
    versions = ConsentRecord.objects.filter(customer=customer).values_list(
        "notice__version", flat=True
    )
    assert sorted(versions) == [1, 2]


def test_agreement_needs_the_box_ticked(customer_client, customer, make_notice):
    make_notice()

    response = customer_client.post("/me/agreement/", {"notice_version": "1"})

    assert response.status_code == 200
    assert not ConsentRecord.objects.filter(customer=customer).exists()


def test_bad_input_to_the_agreement_never_fails(customer_client, make_notice):
    make_notice()

    response = customer_client.post(
        "/me/agreement/?next=https://evil.example/",
        {"agree": "on", "notice_version": "x" * 50, "next": "//evil.example"},
    )

    assert response.status_code == 200


def test_drafts_are_not_asked_for_and_published_notices_are_never_edited(
    customer_client, make_notice, service
):
    draft = make_notice(published=False)
    assert customer_client.get(f"/link/service/{service.code}/").status_code == 200
    draft.published_at = timezone.now()
    draft.save()

    draft.purpose_ja = "別の目的"
    with pytest.raises(PermissionError):
        draft.save()


def test_consent_records_are_append_only(customer, make_notice):
    record = consent.agree(customer=customer, notice=make_notice(), source="settings")

    with pytest.raises(PermissionError):
        record.save()
    with pytest.raises(PermissionError):
        ConsentRecord.objects.filter(pk=record.pk).update(source="link")
    with pytest.raises(PermissionError):
        ConsentRecord.objects.filter(pk=record.pk).delete()


def test_the_notice_page_speaks_the_visitors_language(client, make_notice):
    make_notice()

    ja = client.get("/privacy/").content.decode()
    client.post("/i18n/setlang/", {"language": "en", "next": "/privacy/"})
    en = client.get("/privacy/").content.decode()

    assert "株式会社サンプルホールディングス" in ja
    assert "Sample Holdings, Inc." in en
    with override("en"):
        assert ConsentNotice.objects.get().purpose.startswith("To run")


def test_marketing_consent_is_withdrawn_on_its_own_page(customer_client, customer):
    consent.set_marketing_email(customer=customer, granted=True, source="signup")

    response = customer_client.post("/me/marketing/", {})

    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.marketing_email_consent is False
    kinds = list(
        ConsentRecord.objects.filter(customer=customer)
        .order_by("created_at", "pk")
        .values_list("kind", flat=True)
    )
    assert kinds == ["marketing_granted", "marketing_withdrawn"]
    assert "marketing_email" in customer_client.get("/me/marketing/").content.decode()


def test_campaigns_skip_the_other_records_of_a_customer_who_withdrew(
    make_campaign, make_account, make_service, customer
):
    owned = make_account("S1", email="hanako@example.jp")
    claims.link(account=owned, customer=customer, proof="staff", request=None)
    other_service = make_service("app")
    same_person = make_account("A1", email="Hanako@Example.jp", service=other_service)
    by_sign_in_email = make_account("A2", email="hanako@example.jp", service=other_service)
    stranger = make_account("A3", email="taro@example.jp", service=other_service)
    campaign = make_campaign(services=[other_service])
    assert set(planning.audience(campaign)) == {same_person, by_sign_in_email, stranger}

    consent.set_marketing_email(customer=customer, granted=False, source="settings")

    assert set(planning.audience(campaign)) == {stranger}


def test_a_withdrawal_after_planning_stops_the_send(
    make_campaign, make_account, make_service, customer, smtp_sink: SmtpSink
):
    other_service = make_service("app")
    make_account("A1", email="hanako@example.jp", service=other_service)
    make_account("A2", email="taro@example.jp", service=other_service)
    campaign = make_campaign(services=[other_service])
    control.start(campaign)
    planning.plan_step(campaign=campaign, number=0)

    consent.set_marketing_email(customer=customer, granted=False, source="settings")
    while True:
        run = sending.send_chunk(campaign.pk)
        if not run.keep_sending or run.wait_seconds:
            break

    assert smtp_sink.recipients() == {"taro@example.jp": 1}
    skipped = Delivery.objects.get(email_key="hanako@example.jp")
    assert (skipped.status, skipped.error) == ("skipped", "marketing email refused")


def test_a_customer_who_signs_up_through_line_reads_the_notice_first(client, fake_idp, make_notice):
    notice = make_notice()
    fake_idp.set_user("line", sub="U-consent", name="LINE 花子")
    response = fake_idp.sign_in(client, "line")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("consent"))
    page = client.get(response["Location"]).content.decode()
    assert notice.responsible_company_ja in page
