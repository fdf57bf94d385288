"""Campaigns in the admin: the progress page offers only what the campaign's status
allows and counts the audience before the start; saving keeps staff on the form."""

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from linking import claims
from linking.campaigns import control
from linking.campaigns.models import Campaign
from tests.campaign_support import campaign_form

pytest_plugins = ["tests.fixtures.campaigns"]

CONTROL = "admin:campaigns_campaign_control"


def _progress(client, campaign: Campaign):
    response = client.get(reverse("admin:campaigns_campaign_progress", args=[campaign.pk]))
    assert response.status_code == 200
    return response


def _offered(client, campaign: Campaign) -> list[str]:
    return [action for action, _label in _progress(client, campaign).context["actions"]]


def test_progress_offers_only_the_actions_the_status_allows(otp_admin_client, make_campaign):
    campaign = make_campaign(start_at=timezone.now() + timedelta(days=1))
    assert _offered(otp_admin_client, campaign) == ["start", "cancel"]
    control.start(campaign)
    assert campaign.status == "scheduled"
    assert _offered(otp_admin_client, campaign) == ["pause", "cancel"]
    control.pause(campaign)
    page = _progress(otp_admin_client, campaign).content.decode()
    assert reverse(CONTROL, args=[campaign.pk, "resume"]) in page
    assert reverse(CONTROL, args=[campaign.pk, "start"]) not in page
    assert reverse(CONTROL, args=[campaign.pk, "pause"]) not in page
    control.cancel(campaign)
    page = _progress(otp_admin_client, campaign).content.decode()
    assert 'data-testid="actions"' not in page


def test_progress_counts_the_audience_before_the_start(
    otp_admin_client, make_campaign, make_account, customer
):
    make_account("S1", email="a@example.jp")
    make_account("S2", email="b@example.jp")
    make_account("S3")  # no address
    linked = make_account("S4", email="c@example.jp")
    claims.link(account=linked, customer=customer, proof="code", request=None)
    campaign = make_campaign(start_at=timezone.now() + timedelta(days=1))

    response = _progress(otp_admin_client, campaign)
    assert response.context["audience"] == 2
    assert "2 件" in response.content.decode()

    control.start(campaign)
    control.pause(campaign)
    Campaign.objects.filter(pk=campaign.pk).update(started_at=timezone.now())
    assert _progress(otp_admin_client, campaign).context["audience"] is None


def test_save_and_continue_editing_stays_on_the_form(otp_admin_client, service):
    data = campaign_form(service, name="秋の連携キャンペーン", _continue="1")
    response = otp_admin_client.post(reverse("admin:campaigns_campaign_add"), data)
    campaign = Campaign.objects.get()
    change = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    assert response.status_code == 302 and response["Location"] == change

    form = otp_admin_client.get(change)
    assert form.status_code == 200
    assert 'name="name" value="秋の連携キャンペーン"' in form.content.decode()

    saved = otp_admin_client.post(change, {**data, "name": "秋の連携キャンペーン 2"})
    assert saved["Location"] == change
    assert Campaign.objects.get().name == "秋の連携キャンペーン 2"


def _with_step(data: dict, channel: str) -> dict:
    return {
        **data,
        "steps-TOTAL_FORMS": 1,
        "steps-0-number": 0,
        "steps-0-days_after": 0,
        "steps-0-channel": channel,
    }


def test_a_step_sent_by_line_needs_a_line_message_with_the_link(otp_admin_client, service):
    add = reverse("admin:campaigns_campaign_add")
    data = _with_step(campaign_form(service), "line_then_email")

    refused = otp_admin_client.post(add, {**data, "line_text_ja": "統合IDへどうぞ"})
    assert refused.status_code == 200
    assert "LINE で送るステップには、{{ link }} を含む LINE メッセージが必要です。" in (
        refused.content.decode()
    )
    assert not Campaign.objects.exists()

    saved = otp_admin_client.post(add, {**data, "line_text_ja": "{{ name }}様 {{ link }}"})
    assert saved.status_code == 302
    step = Campaign.objects.get().steps.get()
    assert (step.number, step.channel) == (0, "line_then_email")


def test_the_step_form_offers_the_channels_in_japanese(otp_admin_client):
    page = otp_admin_client.get(reverse("admin:campaigns_campaign_add")).content.decode()

    assert "LINE（友だちでない人にはメール）" in page
    assert "LINE メッセージ（日本語）" in page


def test_the_preview_shows_the_line_message_in_each_language(otp_admin_client, make_campaign):
    campaign = make_campaign(
        line_text_ja="{{ service }}の会員番号 {{ member_number }}\n{{ link }}",
        line_text_en="Member {{ member_number }}: {{ link }}",
    )

    page = otp_admin_client.get(
        reverse("admin:campaigns_campaign_preview", args=[campaign.pk])
    ).content.decode()

    assert page.count('data-testid="line-preview"') == 2
    assert "の会員番号 ****1234" in page and "Member ****1234: " in page
    assert "/c/preview-link/" in page
