"""LINE account link: a friend asks the bot, a signed-in customer confirms on our
page, LINE's dialog sends the accountLink event with our nonce, and the LINE user is
bound to that unified ID. The nonce works once, for its own LINE user, while fresh."""

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.urls import reverse
from django.utils import timezone

from accounts.audit import AuditEvent
from linking.line.models import AccountLinkNonce, LineFriend
from tests.fakes.line import line_user_id
from tests.fixtures.line import post_events
from tests.fixtures.mfa import stepped_up

pytestmark = pytest.mark.django_db


def ask_the_bot(client, fake_line, friend: str) -> str:
    """The friend sends the link command; returns our page's URL from the reply."""
    fake_line.follow(friend, name="山田 花子")
    fake_line.say(friend, "統合IDと連携")
    post_events(client, fake_line, fake_line.pending())
    [reply] = fake_line.messages(friend)
    return re.search(r"http://\S+", reply.texts[0]).group(0)


def confirm(client, link_page: str) -> str:
    """The signed-in customer confirms; returns LINE's dialog URL."""
    path = link_page.removeprefix("http://localhost:8000")
    response = client.post(path)
    assert response.status_code == 302, response.content
    return response["Location"]


def through_the_dialog(client, fake_line, dialog: str) -> dict:
    """LINE's dialog; its accountLink event delivered to our webhook."""
    assert requests.get(dialog, allow_redirects=False, timeout=10).status_code == 302
    [event] = fake_line.pending()
    assert post_events(client, fake_line, [event]).status_code == 200
    return event


def test_a_friend_is_bound_to_the_customer_who_confirms(
    client, customer_client, fake_line, customer
):
    friend = line_user_id()
    page = ask_the_bot(client, fake_line, friend)

    shown = customer_client.get(page.removeprefix("http://localhost:8000"))
    dialog = confirm(customer_client, page)
    through_the_dialog(client, fake_line, dialog)

    assert "山田 花子" in shown.content.decode()
    bound = LineFriend.objects.get(line_user_id=friend)
    assert (bound.customer, bound.is_friend) == (customer, True)
    assert "連携が完了しました" in fake_line.messages(friend)[-1].texts[0]
    assert AuditEvent.objects.filter(action="line_linked", customer=customer).count() == 1
    assert AuditEvent.objects.get(action="line_link_confirmed").ip == "127.0.0.1"
    center = customer_client.get(reverse("linking:center")).content.decode()
    assert "公式アカウントと友だちです" in center


def test_the_nonce_is_long_random_and_stored_hashed(client, customer_client, fake_line):
    dialog = confirm(customer_client, ask_the_bot(client, fake_line, line_user_id()))

    [nonce] = parse_qs(urlsplit(dialog).query)["nonce"]
    stored = AccountLinkNonce.objects.get()
    assert len(nonce) >= 43  # 256 bits, base64url
    assert nonce not in stored.nonce_hash and len(stored.nonce_hash) == 64


def test_someone_not_signed_in_is_sent_to_sign_in_and_back(client, fake_line):
    page = ask_the_bot(client, fake_line, line_user_id()).removeprefix("http://localhost:8000")

    response = client.get(page)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    assert "linkToken" in parse_qs(urlsplit(response["Location"]).query)["next"][0]


def test_a_link_token_our_bot_did_not_hand_out_is_refused(customer_client, fake_line):
    response = customer_client.get(reverse("line:link") + "?linkToken=made-up")
    posted = customer_client.post(reverse("line:link") + "?linkToken=made-up")

    assert (response.status_code, posted.status_code) == (400, 400)
    assert not AccountLinkNonce.objects.exists()


def test_a_nonce_works_once(client, customer_client, fake_line, customer):
    friend = line_user_id()
    event = through_the_dialog(
        client, fake_line, confirm(customer_client, ask_the_bot(client, fake_line, friend))
    )
    LineFriend.objects.filter(line_user_id=friend).update(customer=None, linked_at=None)

    replay = {**event, "webhookEventId": fake_line.event("follow", friend)["webhookEventId"]}
    post_events(client, fake_line, [replay])

    assert LineFriend.objects.get(line_user_id=friend).customer is None
    assert AuditEvent.objects.filter(action="line_link_refused").count() == 1


def test_an_expired_nonce_binds_nobody(client, customer_client, fake_line):
    friend = line_user_id()
    dialog = confirm(customer_client, ask_the_bot(client, fake_line, friend))
    AccountLinkNonce.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    through_the_dialog(client, fake_line, dialog)

    assert LineFriend.objects.get(line_user_id=friend).customer is None
    assert AuditEvent.objects.filter(action="line_link_refused").exists()


def test_a_nonce_is_only_good_for_the_line_user_it_was_made_for(client, customer_client, fake_line):
    friend, intruder = line_user_id(), line_user_id()
    dialog = confirm(customer_client, ask_the_bot(client, fake_line, friend))
    [nonce] = parse_qs(urlsplit(dialog).query)["nonce"]
    forged = fake_line.event("accountLink", intruder)
    forged["link"] = {"result": "ok", "nonce": nonce}

    post_events(client, fake_line, [forged])

    assert not LineFriend.objects.filter(customer__isnull=False).exists()


def test_a_failed_link_binds_nothing_and_is_audited(client, customer_client, fake_line):
    friend = line_user_id()
    dialog = confirm(customer_client, ask_the_bot(client, fake_line, friend))
    fake_line.at_dialog(line_user_id())

    through_the_dialog(client, fake_line, dialog)

    assert LineFriend.objects.get(line_user_id=friend).customer is None
    assert AuditEvent.objects.filter(action="line_link_failed").exists()


def test_a_line_user_bound_to_someone_else_is_not_moved(
    client, customer_client, fake_line, make_customer
):
    friend = line_user_id()
    other = make_customer("jiro@example.jp")
    LineFriend.objects.create(line_user_id=friend, customer=other, linked_at=timezone.now())

    through_the_dialog(
        client, fake_line, confirm(customer_client, ask_the_bot(client, fake_line, friend))
    )

    assert LineFriend.objects.get(line_user_id=friend).customer == other
    assert AuditEvent.objects.filter(action="line_link_conflict").exists()
    assert "別の統合ID" in fake_line.messages(friend)[-1].texts[0]


def test_a_new_line_account_replaces_the_customers_earlier_one(
    client, customer_client, fake_line, customer
):
    earlier, new = line_user_id(), line_user_id()
    LineFriend.objects.create(line_user_id=earlier, customer=customer, linked_at=timezone.now())

    through_the_dialog(
        client, fake_line, confirm(customer_client, ask_the_bot(client, fake_line, new))
    )

    assert LineFriend.objects.get(customer=customer).line_user_id == new
    assert LineFriend.objects.get(line_user_id=earlier).customer is None
    assert AuditEvent.objects.filter(action="line_unlinked", data__line_user_id=earlier).exists()


def test_the_customer_unlinks_after_reauthenticating(client, customer, fake_line):
    from tests.conftest import PASSWORD

    friend = line_user_id()
    LineFriend.objects.create(line_user_id=friend, customer=customer, linked_at=timezone.now())
    client.post("/accounts/login/", {"login": customer.email, "password": PASSWORD})
    session = client.session
    session["account_authentication_methods"] = [
        {**m, "at": m["at"] - 3600} for m in session.get("account_authentication_methods", [])
    ]
    session.save()

    asked = client.post(reverse("line:unlink"))
    assert asked.status_code == 302 and "reauthenticate" in asked["Location"]
    assert LineFriend.objects.get(line_user_id=friend).customer == customer
    stepped_up(client)
    client.post(reverse("line:unlink"))

    assert LineFriend.objects.get(line_user_id=friend).customer is None
    assert AuditEvent.objects.filter(action="line_unlinked", customer=customer).exists()


def test_binding_learns_friendship_from_line(client, customer_client, fake_line, customer):
    """A friend since before the webhook was on: no follow event, LINE's profile says."""
    friend = line_user_id()
    fake_line.set_friend(friend)
    fake_line.say(friend, "統合IDと連携")
    post_events(client, fake_line, fake_line.pending())
    page = re.search(r"http://\S+", fake_line.messages(friend)[0].texts[0]).group(0)

    through_the_dialog(client, fake_line, confirm(customer_client, page))

    assert LineFriend.objects.get(customer=customer).is_friend


def test_the_confirm_page_is_japanese_first_and_english_on_request(
    client, customer_client, fake_line
):
    path = ask_the_bot(client, fake_line, line_user_id()).removeprefix("http://localhost:8000")

    japanese = customer_client.get(path).content.decode()
    english = customer_client.get(path, HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert "LINEと統合IDを連携" in japanese
    assert "Link LINE with your unified ID" in english
    assert "It cannot sign in for you" in english


def test_the_bots_link_confirms_once(client, customer_client, fake_line):
    page = ask_the_bot(client, fake_line, line_user_id())

    confirm(customer_client, page)
    again = customer_client.post(page.removeprefix("http://localhost:8000"))

    assert again.status_code == 400
    assert AccountLinkNonce.objects.count() == 1
