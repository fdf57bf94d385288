"""LINE's webhook: only requests signed with the Official Account's channel secret,
each event once, none too old; follow and unfollow recorded; the link command
answered with a link to our page, by a worker, with LINE's own trouble tried again."""

import logging
import time
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from linking.line.models import LineFriend, LinkToken, WebhookEvent
from linking.line.webhook import send_link
from tests.campaign_support import wait_until, worker_on_test_database
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


def test_line_trouble_with_a_reply_is_tried_again_three_times(client, fake_line, caplog):
    friend, other = line_user_id(), line_user_id()
    events = [fake_line.say(friend, "統合IDと連携"), fake_line.say(other, "統合IDと連携")]
    fake_line.pending()
    fake_line.fail_replies(2)

    post_events(client, fake_line, events[:1])

    assert [call.status for call in fake_line.calls("/v2/bot/message/reply")] == [500, 500, 200]
    assert len(fake_line.messages(friend)) == 1

    fake_line.fail_replies(4)
    with caplog.at_level(logging.WARNING, logger="linking.line.webhook"):
        post_events(client, fake_line, events[1:])

    replies = [call.status for call in fake_line.calls("/v2/bot/message/reply")]
    assert replies[3:] == [500, 500, 500, 500]
    assert fake_line.messages(other) == []
    assert "LINE call for line.send_link failed: LINE answered 500" in caplog.text


def test_a_refused_reply_is_logged_and_not_tried_again(fake_line, caplog):
    friend = line_user_id()
    fake_line.set_friend(friend)

    with caplog.at_level(logging.WARNING, logger="linking.line.webhook"):
        send_link.apply(("a-spent-reply-token", friend, "ja"))

    assert [call.status for call in fake_line.calls("/v2/bot/message/reply")] == [400]
    assert "LINE call for line.send_link failed: LINE answered 400" in caplog.text


@pytest.mark.django_db(transaction=True)
class TestWithARealWorker:
    """The request records the event and calls LINE for nothing; a real worker, on the
    real broker, answers."""

    @pytest.fixture
    def worker_in_process(self) -> None:
        """Off: the worker below is the only one that answers."""

    def test_the_webhook_answers_without_calling_line_and_a_worker_replies(
        self, fake_line, settings, tmp_path: Path
    ):
        friend = line_user_id()
        event = fake_line.say(friend, "統合IDと連携")
        fake_line.pending()
        env = {
            "LINE_API_URL": settings.LINE_API_URL,
            "LINE_MESSAGING_ACCESS_TOKEN": fake_line.access_token,
            "LINE_MESSAGING_CHANNEL_SECRET": fake_line.channel_secret,
        }
        with worker_on_test_database(tmp_path, **env) as worker:
            assert post_events(Client(), fake_line, [event]).status_code == 200
            assert fake_line.calls() == []
            worker.start()

            wait_until(lambda: fake_line.messages(friend), what="the bot's reply")
            [reply] = fake_line.messages(friend)
            assert "/line/link/?linkToken=" in reply.texts[0]
            assert LinkToken.objects.filter(line_user_id=friend).count() == 1


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
