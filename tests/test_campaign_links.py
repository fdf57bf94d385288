"""What a campaign email leads to: the personal link and its one confirmation,
RFC 8058 unsubscribing, bounces (an email service's webhook through anymail, and
DSN mail), and the staff admin."""

import base64
import json

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Customer
from linking import claims
from linking.campaigns import content, selectors
from linking.campaigns.models import Campaign, Delivery, Suppression
from linking.models import LinkEvent
from tests.campaign_support import campaign_form
from tests.fixtures.mfa import stepped_up

pytest_plugins = ["tests.fixtures.campaigns"]

TOKEN = "t" * 43


@pytest.fixture
def customer_client(customer_client):
    """Linking needs step-up (accounts.stepup): the customer re-authenticated just now."""
    return stepped_up(customer_client)


@pytest.fixture
def delivery(make_campaign, make_delivery, make_account, make_service) -> Delivery:
    """A delivery that was sent, whose link carries TOKEN."""
    shop = make_service("shop", proofs=("code", "campaign"), incentive_ja="連携で500ポイント進呈")
    account = make_account("S0001234", service=shop, email="hanako@example.jp")
    campaign = make_campaign(services=[shop], status="sending")
    return make_delivery(campaign, account, token=TOKEN)


def _landing() -> str:
    return reverse("campaigns:landing", args=[TOKEN])


def test_the_landing_page_explains_the_incentive_and_counts_the_click(client, delivery):
    response = client.get(_landing())

    assert response.status_code == 200
    page = response.content.decode()
    assert "連携で500ポイント進呈" in page and "****1234" in page and "S0001234" not in page
    assert f"{reverse('account_signup')}?next={reverse('campaigns:confirm')}" in page
    delivery.refresh_from_db()
    assert delivery.clicked_at is not None
    assert delivery.account.owner is None


@pytest.mark.parametrize("token", ["wrong", "x" * 500, TOKEN.upper()])
def test_an_unknown_link_shows_a_friendly_page(client, delivery, token):
    response = client.get(reverse("campaigns:landing", args=[token]))
    assert response.status_code == 404
    assert reverse("linking:center") in response.content.decode()


def test_an_expired_link_no_longer_works(client, delivery):
    Delivery.objects.filter(pk=delivery.pk).update(token_expires_at=timezone.now())
    assert client.get(_landing()).status_code == 404


def test_one_confirmation_links_that_account_through_the_campaign(
    customer_client, customer, delivery
):
    customer_client.get(_landing())

    response = customer_client.post(reverse("campaigns:confirm"))

    assert response.status_code == 302 and response["Location"] == reverse("linking:center")
    delivery.account.refresh_from_db()
    assert delivery.account.owner == customer
    event = LinkEvent.objects.get(account=delivery.account)
    assert (event.proof, event.campaign_id) == ("campaign", delivery.campaign_id)
    counts = selectors.progress(delivery.campaign)
    assert (counts["clicked"], counts["linked"], counts["linked_otherwise"]) == (1, 1, 0)


def test_confirming_needs_a_followed_link_and_a_sign_in(customer_client, delivery):
    assert customer_client.post(reverse("campaigns:confirm")).status_code == 404
    anonymous = Client()
    anonymous.get(_landing())
    response = anonymous.post(reverse("campaigns:confirm"))
    assert response.status_code == 302 and reverse("account_login") in response["Location"]
    delivery.account.refresh_from_db()
    assert delivery.account.owner is None


def test_an_account_owned_by_someone_else_is_not_moved(customer_client, make_customer, delivery):
    other = make_customer("other@example.jp")
    claims.link(account=delivery.account, customer=other, proof="code", request=None)
    customer_client.get(_landing())

    customer_client.post(reverse("campaigns:confirm"))

    delivery.account.refresh_from_db()
    assert delivery.account.owner == other
    assert LinkEvent.objects.filter(account=delivery.account).count() == 1


def test_a_link_made_another_way_within_the_window_is_counted_apart(customer, delivery):
    claims.link(account=delivery.account, customer=customer, proof="code", request=None)

    counts = selectors.progress(delivery.campaign)

    assert (counts["linked"], counts["linked_otherwise"]) == (0, 1)


def test_a_service_that_does_not_accept_campaign_links_sends_to_its_own_proofs(
    customer_client, delivery
):
    service = delivery.account.service
    service.accepted_proofs = ["code"]
    service.save()
    customer_client.get(_landing())

    response = customer_client.post(reverse("campaigns:confirm"))

    assert response["Location"] == reverse("linking:service", args=[service.code])
    delivery.account.refresh_from_db()
    assert delivery.account.owner is None


def _unsubscribe_url(delivery: Delivery) -> str:
    return reverse("campaigns:unsubscribe", args=[content.unsubscribe_code(delivery.pk)])


def test_get_on_the_unsubscribe_link_only_asks(client, delivery):
    response = client.get(_unsubscribe_url(delivery))
    client.head(_unsubscribe_url(delivery))

    assert response.status_code == 200
    assert 'name="List-Unsubscribe" value="One-Click"' in response.content.decode()
    assert not Suppression.objects.exists()


def test_the_one_click_post_unsubscribes_without_cookies_or_csrf_token(delivery):
    mail_client = Client(enforce_csrf_checks=True)

    response = mail_client.post(
        _unsubscribe_url(delivery),
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 200
    assert not response.cookies.get("sessionid")
    assert Suppression.objects.get().email_key == "hanako@example.jp"
    delivery.refresh_from_db()
    assert delivery.unsubscribed_at is not None
    assert selectors.progress(delivery.campaign)["unsubscribed"] == 1


def test_a_forged_unsubscribe_link_changes_nothing(client, delivery):
    code = content.unsubscribe_code(delivery.pk)[:-2] + "xx"
    response = client.post(reverse("campaigns:unsubscribe", args=[code]))
    assert response.status_code == 404
    assert not Suppression.objects.exists()


WEBHOOK_SECRET = "postmark:s3cret-webhook"


@pytest.fixture
def webhook_secret(settings) -> str:
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": WEBHOOK_SECRET}
    return WEBHOOK_SECRET


@pytest.fixture(autouse=True)
def _postmark_as_the_email_service(settings) -> None:
    settings.ROOT_URLCONF = "tests.urls_postmark"


def _postmark(client, record: dict, secret: str | None = WEBHOOK_SECRET):
    """Postmark's tracking webhook, as Postmark posts it to anymail's URL."""
    headers = {}
    if secret:
        headers["Authorization"] = "Basic " + base64.b64encode(secret.encode()).decode()
    return client.post(
        reverse("anymail:postmark_tracking_webhook"),
        json.dumps(record),
        content_type="application/json",
        headers=headers,
    )


def _bounce(delivery: Delivery, kind: str = "HardBounce") -> dict:
    """A bounce record in Postmark's format (their documentation's example)."""
    return {
        "RecordType": "SpamComplaint" if kind == "SpamComplaint" else "Bounce",
        "MessageStream": "outbound",
        "ID": 4323372036854775807,
        "Type": kind,
        "TypeCode": 512 if kind == "SpamComplaint" else 1,
        "Name": "Hard bounce",
        "Tag": "campaign",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Metadata": {"delivery": str(delivery.pk)},
        "ServerID": 23,
        "Description": "The server was unable to deliver your message.",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": delivery.email,
        "From": "no-reply@example.jp",
        "BouncedAt": "2026-11-05T16:33:54.9070259Z",
        "DumpAvailable": False,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "連携のお願い",
    }


def test_a_hard_bounce_reported_by_the_email_service_suppresses_the_address(
    client, delivery, webhook_secret
):
    response = _postmark(client, _bounce(delivery))

    assert response.status_code == 200
    suppression = Suppression.objects.get()
    assert (suppression.email_key, suppression.reason) == ("hanako@example.jp", "bounced")
    assert "Postmark" in suppression.detail and "550 5.1.1" in suppression.detail
    delivery.refresh_from_db()
    assert delivery.bounced_at is not None
    assert selectors.progress(delivery.campaign)["bounced"] == 1


def test_a_spam_complaint_suppresses_the_address_as_a_complaint(client, delivery, webhook_secret):
    _postmark(client, _bounce(delivery, "SpamComplaint"))

    assert Suppression.objects.get().reason == "complained"


def test_a_delivery_report_suppresses_nothing(client, delivery, webhook_secret):
    record = {
        "RecordType": "Delivery",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Recipient": delivery.email,
        "DeliveredAt": "2026-11-05T16:33:54Z",
        "Details": "Test delivery webhook details",
        "Metadata": {"delivery": str(delivery.pk)},
        "ServerID": 23,
        "MessageStream": "outbound",
        "Tag": "campaign",
    }

    assert _postmark(client, record).status_code == 200
    assert not Suppression.objects.exists()


@pytest.mark.parametrize("secret", [None, "postmark:wrong", "someone:s3cret-webhook"])
def test_bounce_reports_without_the_webhook_secret_are_refused(
    client, delivery, webhook_secret, secret
):
    assert _postmark(client, _bounce(delivery), secret).status_code == 400
    assert not Suppression.objects.exists()


def test_bounce_reports_are_ignored_while_no_webhook_secret_is_set(client, delivery, settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": ""}

    _postmark(client, _bounce(delivery), secret=None)

    assert not Suppression.objects.exists()


DSN = """\
From: MAILER-DAEMON@mx.example.jp
To: bounces@localhost
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

Your message could not be delivered.
--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.jp

Final-Recipient: rfc822; hanako@example.jp
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 user unknown

--B
Content-Type: text/rfc822-headers

Message-ID: {message_id}
Subject: hello

--B--
"""


def test_the_mail_command_suppresses_hard_bounces_and_reads_mailto_unsubscribes(
    delivery, tmp_path, capsys
):
    bounce = tmp_path / "bounce.eml"
    bounce.write_text(DSN.format(message_id=content.message_id(delivery)))
    request = tmp_path / "unsubscribe.eml"
    request.write_text(
        "From: hanako@example.jp\nTo: unsubscribe@localhost\n"
        f"Subject: unsubscribe {content.unsubscribe_code(delivery.pk)}\n\n"
    )
    other = tmp_path / "other.eml"
    other.write_text("From: x@example.jp\nSubject: hello\n\nhi\n")

    call_command("read_campaign_mail", str(bounce), str(request), str(other))

    assert "suppressed 1 bounced, 1 unsubscribed, ignored 1" in capsys.readouterr().out
    delivery.refresh_from_db()
    assert delivery.bounced_at is not None and delivery.unsubscribed_at is not None
    assert Suppression.objects.get().email_key == "hanako@example.jp"


@pytest.fixture
def staff_client(client, db):
    """A superuser signed in with the second factor passed (staff always use 2FA)."""
    staff = Customer.objects.create_superuser("staff@example.jp", "staff-Pass-9921")
    device = TOTPDevice.objects.create(user=staff, name="staff", confirmed=True)
    client.force_login(staff)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def test_staff_preview_the_email_in_both_languages(staff_client, delivery):
    campaign = delivery.campaign
    Delivery.objects.all().delete()

    response = staff_client.get(reverse("admin:campaigns_campaign_preview", args=[campaign.pk]))

    page = response.content.decode()
    assert response.status_code == 200
    assert "連携で500ポイント進呈" in page
    assert "JA:" in page and "EN:" in page
    assert "サンプル商事株式会社" in page


def test_staff_send_a_test_to_themselves_in_both_languages(staff_client, delivery, mailoutbox):
    campaign = delivery.campaign

    staff_client.post(reverse("admin:campaigns_campaign_test", args=[campaign.pk]))

    assert [message.to for message in mailoutbox] == [["staff@example.jp"]] * 2
    assert all(message.subject.startswith("[TEST]") for message in mailoutbox)
    assert Delivery.objects.count() == 1


def test_staff_pause_and_cancel_and_see_progress(staff_client, delivery):
    campaign = delivery.campaign
    control = "admin:campaigns_campaign_control"

    staff_client.post(reverse(control, args=[campaign.pk, "pause"]))
    assert Campaign.objects.get().status == "paused"
    staff_client.post(reverse(control, args=[campaign.pk, "cancel"]))
    assert Campaign.objects.get().status == "cancelled"
    staff_client.post(reverse(control, args=[campaign.pk, "resume"]))
    assert Campaign.objects.get().status == "cancelled"
    response = staff_client.get(reverse("admin:campaigns_campaign_progress", args=[campaign.pk]))
    assert 'data-count="sent">1<' in response.content.decode()


def test_staff_create_a_campaign_and_unknown_placeholders_are_refused(staff_client, service):
    data = campaign_form(
        service,
        subject_ja="{{ nmae }}様",
        **{"steps-TOTAL_FORMS": 1, "steps-0-number": 1, "steps-0-days_after": 7},
    )
    add = reverse("admin:campaigns_campaign_add")

    refused = staff_client.post(add, data)
    assert refused.status_code == 200 and "nmae" in refused.content.decode()

    staff_client.post(add, {**data, "subject_ja": "{{ name }}様"})
    campaign = Campaign.objects.get()
    assert campaign.status == "draft"
    assert list(campaign.steps.values_list("number", "days_after")) == [(0, 0), (1, 7)]
