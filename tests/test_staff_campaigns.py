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
