"""LINE as a campaign channel, against the fake LINE platform: who gets LINE and who
gets email, the personal link in the push, opt-outs and unfollows, retry keys that
keep a push to one delivery even when a worker is killed mid-send, and the funnel
per channel."""

import re
from collections import Counter
from datetime import timedelta
from pathlib import Path

from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import consent
from linking.campaigns import by_line, control, links, planning, selectors, sending
from linking.campaigns.models import Campaign, CampaignStep, Delivery, Suppression
from linking.line.models import LineFriend
from linking.models import LegacyAccount
from tests.campaign_support import SmtpSink, send_everything, wait_until, worker_on_test_database
from tests.fakes.line import FakeLinePlatform, line_user_id
from tests.fixtures.line import post_events

pytest_plugins = ["tests.fixtures.campaigns"]

LINE_TEXT = "{{ name }}様、{{ service }}の会員番号 {{ member_number }} を統合IDへ\n{{ link }}"
Channels = CampaignStep.Channels


def _member(service, external_id, fake: FakeLinePlatform, *, email="", friend=None):
    """A legacy account; friend True/False gives it a LINE user ID (a friend of the
    Official Account or not), None none."""
    line_id = ""
    if friend is not None:
        line_id = line_user_id()
        fake.set_friend(line_id, friend)
        LineFriend.objects.create(line_user_id=line_id, is_friend=friend)
    return LegacyAccount.objects.create(
        service=service,
        external_id=external_id,
        name=f"会員{external_id}",
        email=email,
        email_key=email,
        line_user_id=line_id,
    )


def _line_campaign(make_campaign, channel: str, **fields) -> Campaign:
    campaign = make_campaign(steps=(), line_text_ja=LINE_TEXT, **fields)
    CampaignStep.objects.create(campaign=campaign, number=0, channel=channel)
    return campaign


def _start(campaign: Campaign) -> None:
    control.start(campaign)
    planning.plan_step(campaign=campaign, number=0)


def _token(text: str) -> str:
    match = re.search(r"/l/([0-9a-f]{64})/", text)
    assert match, text
    return match[1]


def test_line_then_email_goes_by_line_to_friends_and_by_email_to_the_others(
    fake_line, smtp_sink: SmtpSink, make_campaign, service
):
    friend = _member(service, "F1", fake_line, email="f1@example.jp", friend=True)
    friend_without_email = _member(service, "F2", fake_line, friend=True)
    bounced_friend = _member(service, "F3", fake_line, email="gone@example.jp", friend=True)
    Suppression.objects.create(email_key="gone@example.jp", reason="bounced")
    not_a_friend = _member(service, "N1", fake_line, email="n1@example.jp", friend=False)
    no_line = _member(service, "E1", fake_line, email="e1@example.jp")
    campaign = _line_campaign(make_campaign, Channels.LINE_THEN_EMAIL)

    _start(campaign)
    sent = send_everything(campaign)

    by_line = {friend, friend_without_email, bounced_friend}
    assert sent == 5
    assert Counter(m.to for m in fake_line.messages()) == {a.line_user_id: 1 for a in by_line}
    assert smtp_sink.recipients() == {"n1@example.jp": 1, "e1@example.jp": 1}
    channels = dict(Delivery.objects.values_list("account__external_id", "channel"))
    assert channels == {"F1": "line", "F2": "line", "F3": "line", "N1": "email", "E1": "email"}
    # The push is the personal link: it opens the landing page of that delivery.
    (push,) = fake_line.messages(friend.line_user_id)
    assert push.texts[0].startswith("会員F1様、")
    token = _token(push.texts[0])
    assert links.find(token).account == friend
    assert Client().get(reverse("campaigns:landing", args=[token])).status_code == 200
    keys = [call.retry_key for call in fake_line.calls(r"/v2/bot/message/push")]
    assert len(set(keys)) == 3 and None not in keys
    assert no_line.campaign_deliveries.get().status == "sent"
    assert not_a_friend.campaign_deliveries.get().status == "sent"


def test_a_line_only_step_reaches_friends_only(fake_line, smtp_sink, make_campaign, service):
    friend = _member(service, "F1", fake_line, email="f1@example.jp", friend=True)
    _member(service, "N1", fake_line, email="n1@example.jp", friend=False)
    _member(service, "E1", fake_line, email="e1@example.jp")
    campaign = _line_campaign(make_campaign, Channels.LINE)

    _start(campaign)
    send_everything(campaign)

    assert [m.to for m in fake_line.messages()] == [friend.line_user_id]
    assert smtp_sink.count() == 0
    assert Delivery.objects.get().account == friend


def test_who_unfollows_or_opts_out_after_planning_gets_no_push(
    fake_line, client, smtp_sink: SmtpSink, make_campaign, service, customer
):
    stays = _member(service, "F1", fake_line, email="f1@example.jp", friend=True)
    leaves = _member(service, "F2", fake_line, email="f2@example.jp", friend=True)
    leaves_no_email = _member(service, "F3", fake_line, friend=True)
    refuses = _member(service, "F4", fake_line, email=customer.email, friend=True)
    unsubscribes = _member(service, "F5", fake_line, email="f5@example.jp", friend=True)
    campaign = _line_campaign(make_campaign, Channels.LINE_THEN_EMAIL)
    _start(campaign)

    # LINE tells our webhook, signed; the customer with that address says no; an
    # address is unsubscribed.
    fake_line.unfollow(leaves.line_user_id)
    fake_line.unfollow(leaves_no_email.line_user_id)
    assert post_events(client, fake_line, fake_line.pending()).status_code == 200
    consent.set_marketing_email(customer=customer, granted=False, source="test")
    Suppression.objects.create(email_key="f5@example.jp", reason="unsubscribed")
    send_everything(campaign)

    assert [m.to for m in fake_line.messages()] == [stays.line_user_id]
    # "LINE, then email": one who is no longer a friend is emailed instead.
    assert smtp_sink.recipients() == {"f2@example.jp": 1}
    outcome = {
        d.account_id: (d.channel, d.status, d.error)
        for d in Delivery.objects.filter(campaign=campaign)
    }
    assert outcome == {
        stays.pk: ("line", "sent", ""),
        leaves.pk: ("email", "sent", ""),
        leaves_no_email.pk: ("line", "skipped", "not a LINE friend"),
        refuses.pk: ("line", "skipped", "opted out"),
        unsubscribes.pk: ("line", "skipped", "opted out"),
    }


def test_a_push_line_cannot_answer_waits_and_goes_again_with_its_key(
    fake_line, smtp_sink, make_campaign, service, settings
):
    friend = _member(service, "F1", fake_line, friend=True)
    campaign = _line_campaign(make_campaign, Channels.LINE)
    _start(campaign)
    settings.LINE_MESSAGING_ACCESS_TOKEN = "revoked"  # LINE answers 401

    send_everything(campaign)

    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert "401" in delivery.error
    first_key = fake_line.calls(r"/v2/bot/message/push")[0].retry_key

    settings.LINE_MESSAGING_ACCESS_TOKEN = fake_line.access_token
    Delivery.objects.filter(pk=delivery.pk).update(not_before=delivery.sent_at)
    send_everything(campaign)

    assert [m.to for m in fake_line.messages()] == [friend.line_user_id]
    assert fake_line.messages()[0].retry_key == first_key
    assert Delivery.objects.get().status == "sent"


def test_the_funnel_counts_sent_clicked_and_linked_per_channel(
    fake_line, smtp_sink: SmtpSink, make_campaign, service, otp_admin_client
):
    _member(service, "F1", fake_line, email="f1@example.jp", friend=True)
    _member(service, "F2", fake_line, friend=True)
    _member(service, "E1", fake_line, email="e1@example.jp")
    campaign = _line_campaign(make_campaign, Channels.LINE_THEN_EMAIL)
    _start(campaign)
    send_everything(campaign)
    (push, _other) = fake_line.messages()
    Client().get(reverse("campaigns:landing", args=[_token(push.texts[0])]))
    Delivery.objects.filter(clicked_at__isnull=False).update(linked_at=timezone.now())

    by_channel = selectors.funnel_by_channel(campaign)

    assert by_channel == {
        "email": {"reached": 1, "clicked": 0, "linked": 0},
        "line": {"reached": 2, "clicked": 1, "linked": 1},
    }
    progress = otp_admin_client.get(
        reverse("admin:campaigns_campaign_progress", args=[campaign.pk]), HTTP_ACCEPT_LANGUAGE="ja"
    ).content.decode()
    rows = re.findall(
        r"<tr><th scope=\"row\">([^<]+)</th><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td>", progress
    )
    assert rows == [("メール", "1", "0", "0"), ("LINE", "2", "1", "1")]


def test_a_worker_killed_mid_campaign_pushes_each_line_message_at_most_once(
    transactional_db,
    fake_line,
    smtp_sink: SmtpSink,
    make_campaign,
    service,
    tmp_path: Path,
    settings,
):
    """The acceptance run: a real worker on the real broker, friends and strangers,
    one unfollows midway (a signed webhook), one opts out, the worker is SIGKILLed
    and a new one (with beat) finishes."""
    settings.CAMPAIGN_LEASE_SECONDS = 3
    settings.CAMPAIGN_TICK_SECONDS = 1
    friends = [
        _member(service, f"F{n:03d}", fake_line, email=f"f{n:03d}@example.jp", friend=True)
        for n in range(100)
    ]
    strangers = [
        _member(service, f"N{n:03d}", fake_line, email=f"n{n:03d}@example.jp", friend=False)
        for n in range(20)
    ]
    emails_only = [
        _member(service, f"E{n:03d}", fake_line, email=f"e{n:03d}@example.jp") for n in range(20)
    ]
    # 600 a minute: bursts of 50 every 5 seconds, so the kill lands mid-campaign.
    campaign = _line_campaign(make_campaign, Channels.LINE_THEN_EMAIL, rate_per_minute=600)
    env = {
        **smtp_sink.env(),
        "CAMPAIGN_LEASE_SECONDS": "3",
        "CAMPAIGN_TICK_SECONDS": "1",
        "CAMPAIGN_CHUNK_SIZE": "10",
        "LINE_API_URL": settings.LINE_API_URL,
        "LINE_MESSAGING_ACCESS_TOKEN": fake_line.access_token,
        "LINE_MESSAGING_CHANNEL_SECRET": fake_line.channel_secret,
    }
    # From the 31st push on, LINE takes each push and its answer never comes back.
    fake_line.hold_answers_after(30)
    with worker_on_test_database(tmp_path, **env) as worker:
        worker.start()
        control.start(campaign)
        wait_until(lambda: len(fake_line.messages()) >= 10, what="the first pushes")
        waiting = list(
            Delivery.objects.filter(campaign=campaign, channel="line", status="pending")
            .select_related("account")
            .order_by("-pk")[:2]
        )
        assert len(waiting) == 2, "every push went out before anyone could unfollow"
        unfollower, refuser = (delivery.account for delivery in waiting)
        fake_line.unfollow(unfollower.line_user_id)
        assert post_events(Client(), fake_line, fake_line.pending()).status_code == 200
        Suppression.objects.create(email_key=refuser.email, reason="unsubscribed")
        wait_until(lambda: fake_line.held() >= 1, what="a push LINE took, unanswered")

        worker.kill()
        fake_line.release_answers()
        assert len(fake_line.messages()) < 98, "the worker finished before it was killed"
        stranded = Delivery.objects.filter(
            channel="line", status__in=["pending", "leased", "sending"]
        ).count()
        worker.start(beat=True)
        wait_until(
            lambda: Campaign.objects.get(pk=campaign.pk).status == "finished",
            what="the campaign to finish",
        )
        # Read while the test database is the one the worker wrote to.
        assert stranded > 0
        delivered = Counter(message.to for message in fake_line.messages())
        expected = {a.line_user_id for a in friends} - {
            unfollower.line_user_id,
            refuser.line_user_id,
        }
        # Each friend's push arrived once: a push retried after the kill carried its key.
        assert delivered == dict.fromkeys(expected, 1), worker.log()[-3000:]
        accepted = [
            c.retry_key for c in fake_line.calls(r"/v2/bot/message/push") if c.status == 200
        ]
        assert len(accepted) == len(set(accepted)) == len(expected)
        # The pushes LINE took unanswered went again after the kill, with their keys.
        assert any(c.status == 409 for c in fake_line.calls(r"/v2/bot/message/push"))
        # Email for the rest, the unfollower included; at most once each, and one that
        # never arrived was handed over by the killed worker (unconfirmed, never resent).
        mailed = smtp_sink.recipients()
        assert max(mailed.values()) == 1
        wanted = {a.email for a in strangers + emails_only} | {unfollower.email}
        assert set(mailed) <= wanted
        unconfirmed = set(
            Delivery.objects.filter(status="unconfirmed", channel="email").values_list(
                "email", flat=True
            )
        )
        assert wanted - set(mailed) <= unconfirmed
        assert Delivery.objects.get(account=refuser).status == "skipped"
        assert Delivery.objects.get(account=unfollower).channel == "email"
        assert not Delivery.objects.filter(status__in=["pending", "leased", "sending"]).exists()
        assert LineFriend.objects.get(line_user_id=unfollower.line_user_id).is_friend is False


def test_quiet_hours_hold_back_line_and_email_alike(
    fake_line, smtp_sink: SmtpSink, make_campaign, service, settings
):
    friend = _member(service, "F1", fake_line, email="f1@example.jp", friend=True)
    _member(service, "E1", fake_line, email="e1@example.jp")
    campaign = _line_campaign(make_campaign, Channels.LINE_THEN_EMAIL)
    _start(campaign)
    now = timezone.localtime()
    hour = f"{(now - timedelta(hours=1)):%H:%M}-{(now + timedelta(hours=1)):%H:%M}"
    settings.CAMPAIGN_QUIET_HOURS = hour

    run = sending.send_chunk(campaign.pk)

    assert run.sent == 0 and 3500 < run.wait_seconds <= 3600
    assert fake_line.messages() == [] and smtp_sink.count() == 0
    assert set(Delivery.objects.values_list("status", flat=True)) == {"pending"}

    later = f"{(now + timedelta(hours=1)):%H:%M}-{(now + timedelta(hours=2)):%H:%M}"
    settings.CAMPAIGN_QUIET_HOURS = later
    assert send_everything(campaign) == 2
    assert [m.to for m in fake_line.messages()] == [friend.line_user_id]
    assert smtp_sink.recipients() == {"e1@example.jp": 1}


def test_a_line_message_is_in_the_accounts_language_when_the_campaign_has_it(
    make_campaign, make_account, make_service
):
    app = make_service("app")
    japanese = make_account("A1", service=app, name="佐藤")
    english = make_account("A2", service=app, name="Jane", attributes={"language": "en"})
    both = make_campaign(
        services=[app],
        line_text_ja="{{ name }}様 {{ link }}",
        line_text_en="Dear {{ name }} {{ link }}",
    )
    japanese_only = make_campaign(services=[app], line_text_ja="{{ name }}様 {{ link }}")

    assert by_line.text(both, japanese, link="L") == "佐藤様 L"
    assert by_line.text(both, english, link="L") == "Dear Jane L"
    assert by_line.text(japanese_only, english, link="L") == "Jane様 L"
