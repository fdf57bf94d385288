"""LINE's webhook: only requests signed with the Official Account's channel secret,
each event once, none too old; follow and unfollow recorded; the link command
answered with a link to our page."""

import time

import pytest
from django.urls import reverse

from linking.line.models import LineFriend, WebhookEvent
from tests.fakes.line import line_user_id
from tests.fixtures.line import post_events

pytestmark = pytest.mark.django_db


def test_follow_and_unfollow_are_recorded(client, fake_line):
    friend = line_user_id()

    post_events(client, fake_line, [fake_line.event("follow", friend)])
    assert LineFriend.objects.get(line_user_id=friend).is_friend
    post_events(client, fake_line, [fake_line.event("unfollow", friend)])

    assert not LineFriend.objects.get(line_user_id=friend).is_friend


def test_a_follow_that_arrives_after_a_newer_unfollow_changes_nothing(client, fake_line):
    friend = line_user_id()
    follow = fake_line.event("follow", friend)
    unfollow = fake_line.event("unfollow", friend)
    unfollow["timestamp"] = follow["timestamp"] + 1000

    post_events(client, fake_line, [unfollow])
    post_events(client, fake_line, [follow])

    assert not LineFriend.objects.get(line_user_id=friend).is_friend


def test_an_unsigned_request_is_refused(client, fake_line):
    body, _ = fake_line.signed([fake_line.event("follow", line_user_id())])

    response = client.post(reverse("line:webhook"), body, content_type="application/json")

    assert response.status_code == 400
    assert not LineFriend.objects.exists()


def test_a_request_signed_with_another_secret_is_refused(client, fake_line):
    event = fake_line.event("follow", line_user_id())

    response = post_events(client, fake_line, [event], secret="not-the-channel-secret")

    assert response.status_code == 401
    assert not LineFriend.objects.exists()
    assert not WebhookEvent.objects.exists()


def test_a_body_changed_after_signing_is_refused(client, fake_line):
    body, headers = fake_line.signed([fake_line.event("follow", line_user_id())])

    response = client.post(
        reverse("line:webhook"),
        body.replace(b'"follow"', b'"unfollow"'),
        content_type="application/json",
        headers={"x-line-signature": headers["x-line-signature"]},
    )

    assert response.status_code == 401


def test_without_a_channel_secret_everything_is_refused(client, fake_line, settings):
    settings.LINE_MESSAGING_CHANNEL_SECRET = ""

    response = post_events(
        client, fake_line, [fake_line.event("follow", line_user_id())], secret=""
    )

    assert response.status_code == 403
    assert not LineFriend.objects.exists()


def test_a_signed_body_that_is_not_a_webhook_is_a_clear_400(client, fake_line):
    from tests.fakes.line import signature

    for body in (b"not json", b'{"no": "events"}', b"\xff\xfe"):
        response = client.post(
            reverse("line:webhook"),
            body,
            content_type="application/json",
            headers={"x-line-signature": signature(body, fake_line.channel_secret)},
        )
        assert response.status_code == 400, body


def test_a_replayed_event_is_handled_once(client, fake_line):
    friend = line_user_id()
    event = fake_line.say(friend, "統合IDと連携")
    fake_line.pending()

    first = post_events(client, fake_line, [event])
    replay = post_events(client, fake_line, [event])

    assert (first.status_code, replay.status_code) == (200, 200)
    assert len(fake_line.calls(r"/v2/bot/user/.*/linkToken")) == 1
    assert WebhookEvent.objects.filter(webhook_event_id=event["webhookEventId"]).count() == 1


def test_an_old_event_is_refused_unless_it_is_a_recent_redelivery(client, fake_line):
    stale, redelivered = line_user_id(), line_user_id()
    an_hour_ago = int((time.time() - 3600) * 1000)
    old = fake_line.event("follow", stale)
    old["timestamp"] = an_hour_ago
    again = fake_line.event("follow", redelivered)
    again["timestamp"] = an_hour_ago
    again["deliveryContext"]["isRedelivery"] = True

    post_events(client, fake_line, [old, again])

    assert not LineFriend.objects.filter(line_user_id=stale).exists()
    assert LineFriend.objects.get(line_user_id=redelivered).is_friend


@pytest.mark.parametrize(
    ("command", "answer"),
    [
        ("統合IDと連携", "統合ID"),
        ("Link unified ID", "unified ID"),
        (" link UNIFIED id ", "unified ID"),
        ("統合ＩＤと連携", "統合ID"),
    ],
)
def test_the_link_command_is_answered_with_our_link_page(client, fake_line, command, answer):
    friend = line_user_id()
    event = fake_line.say(friend, command)
    fake_line.pending()

    post_events(client, fake_line, [event])

    [reply] = fake_line.messages(friend)
    assert reply.kind == "reply"
    assert answer in reply.texts[0]
    assert "http://localhost:8000/line/link/?linkToken=" in reply.texts[0]


def test_other_messages_are_not_answered(client, fake_line):
    friend = line_user_id()
    event = fake_line.say(friend, "こんにちは")
    fake_line.pending()

    post_events(client, fake_line, [event])

    assert fake_line.messages(friend) == []
    assert fake_line.calls(r"/v2/bot/user/.*/linkToken") == []


def test_old_event_records_expired_nonces_and_link_tokens_are_pruned_hourly(
    client, fake_line, customer
):
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from linking.line import tasks
    from linking.line.models import AccountLinkNonce, LinkToken

    post_events(client, fake_line, [fake_line.event("follow", line_user_id())])
    kept = WebhookEvent.objects.get()
    old = fake_line.event("follow", line_user_id())
    post_events(client, fake_line, [old])
    WebhookEvent.objects.filter(webhook_event_id=old["webhookEventId"]).update(
        received_at=timezone.now() - timedelta(days=3)
    )
    now = timezone.now()
    for name, expires_at in (("open", now + timedelta(minutes=5)), ("gone", now)):
        AccountLinkNonce.objects.create(
            nonce_hash=name * 16, customer=customer, link_token=name, expires_at=expires_at
        )

    LinkToken.objects.create(token_hash="a" * 64, line_user_id=line_user_id(), expires_at=now)
    assert tasks.prune() == 3

    assert list(WebhookEvent.objects.all()) == [kept]
    assert list(AccountLinkNonce.objects.values_list("link_token", flat=True)) == ["open"]
    assert not LinkToken.objects.exists()
    assert settings.CELERY_BEAT_SCHEDULE["line-prune"]["task"] == "line.prune"


def test_an_event_of_a_type_unknown_to_the_sdk_is_skipped_not_the_request(client, fake_line):
    friend = line_user_id()
    unknown = {**fake_line.event("follow", friend), "type": "somethingNew"}
    malformed = {"type": "accountLink"}

    response = post_events(
        client, fake_line, [unknown, malformed, fake_line.event("follow", friend)]
    )

    assert response.status_code == 200
    assert LineFriend.objects.get(line_user_id=friend).is_friend
