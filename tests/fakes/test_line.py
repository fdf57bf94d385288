"""The fake LINE platform answers our client (linking/line/client.py, the official
SDK underneath) as LINE does; the LINE tests lean on it."""

import json

import pytest
import requests

from linking.line import client
from linking.line.client import LineError, Push
from tests.fakes.idp import LINE
from tests.fakes.line import line_user_id, signature
from tests.fakes.test_idp import authorize, exchange, redirect_params


def test_a_link_token_is_issued_for_a_user(fake_line):
    token = client.issue_link_token(line_user_id=line_user_id())

    assert len(token) >= 32
    assert [call.status for call in fake_line.calls(r"/v2/bot/user/.*/linkToken")] == [200]


def test_a_wrong_access_token_is_refused(fake_line, settings):
    settings.LINE_MESSAGING_ACCESS_TOKEN = "not-the-channel-token"

    with pytest.raises(LineError) as refused:
        client.issue_link_token(line_user_id=line_user_id())

    assert refused.value.status == 401
    assert not refused.value.retryable


def test_a_push_with_a_retry_key_is_delivered_once(fake_line):
    friend = line_user_id()
    fake_line.set_friend(friend)
    key = client.retry_key("campaign", 1, "step", 2, "account", 3)

    first = client.push_text(line_user_id=friend, text="こんにちは", retry_key=key)
    again = client.push_text(line_user_id=friend, text="こんにちは", retry_key=key)
    other = client.push_text(
        line_user_id=friend, text="こんにちは", retry_key=client.retry_key("campaign", 1, "x")
    )

    assert (first, again, other) == (Push.SENT, Push.ALREADY_SENT, Push.SENT)
    assert [m.texts for m in fake_line.messages(friend)] == [("こんにちは",), ("こんにちは",)]
    assert [c.status for c in fake_line.calls(r"/v2/bot/message/push")] == [200, 409, 200]
    assert key == client.retry_key("campaign", 1, "step", 2, "account", 3)


def test_a_push_to_someone_who_unfollowed_is_accepted_and_not_delivered(fake_line):
    gone = line_user_id()
    fake_line.set_friend(gone)
    fake_line.unfollow(gone)

    answer = client.push_text(line_user_id=gone, text="hi", retry_key=client.retry_key("gone"))

    assert answer is Push.SENT
    assert fake_line.messages(gone) == []
    assert [m.to for m in fake_line.messages(delivered=False)] == [gone]


def test_a_reply_token_is_used_once(fake_line):
    friend = line_user_id()
    event = fake_line.say(friend, "hello")

    client.reply_text(reply_token=event["replyToken"], text="はい")
    with pytest.raises(LineError) as refused:
        client.reply_text(reply_token=event["replyToken"], text="はい")

    assert refused.value.status == 400
    assert [m.texts for m in fake_line.messages(friend)] == [("はい",)]


def test_profiles_are_for_friends_only(fake_line):
    friend, stranger = line_user_id(), line_user_id()
    fake_line.set_friend(friend, name="山田 花子")

    assert client.profile(line_user_id=friend).display_name == "山田 花子"
    with pytest.raises(LineError) as refused:
        client.profile(line_user_id=stranger)
    assert refused.value.status == 404


def test_friendship_status_needs_a_line_login_access_token(fake_line, fake_idp):
    user = line_user_id()
    fake_idp.set_user(LINE, sub=user)
    response, verifier = authorize(fake_idp.server, LINE)
    code = redirect_params(response)["code"]
    token = exchange(fake_idp.server, LINE, code, verifier).json()["access_token"]

    assert client.is_friend(login_access_token=token) is False
    fake_line.set_friend(user)
    assert client.is_friend(login_access_token=token) is True
    with pytest.raises(LineError):
        client.is_friend(login_access_token="guess")


def test_the_dialog_sends_a_signed_account_link_event_once(fake_line):
    user = line_user_id()
    token = client.issue_link_token(line_user_id=user)
    dialog = client.account_link_url(link_token=token, nonce="n-1")

    first = requests.get(dialog, allow_redirects=False, timeout=10)
    again = requests.get(dialog, allow_redirects=False, timeout=10)
    [event] = fake_line.pending()

    assert first.headers["Location"] == fake_line.chat_url(user)
    assert again.status_code == 400
    assert event["type"] == "accountLink"
    assert event["source"]["userId"] == user
    assert event["link"] == {"result": "ok", "nonce": "n-1"}


def test_someone_else_at_the_dialog_makes_the_link_fail(fake_line):
    token = client.issue_link_token(line_user_id=line_user_id())
    fake_line.at_dialog(line_user_id())

    requests.get(client.account_link_url(link_token=token, nonce="n-2"), timeout=10)

    assert fake_line.pending()[0]["link"]["result"] == "failed"


def test_webhook_bodies_are_signed_with_the_channel_secret(fake_line):
    body, headers = fake_line.signed([fake_line.event("follow", line_user_id())])

    assert headers["x-line-signature"] == signature(body, fake_line.channel_secret)
    assert len(json.loads(body)["events"][0]["webhookEventId"]) == 26
