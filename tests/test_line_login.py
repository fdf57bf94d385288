"""LINE Login and the Official Account: bot_prompt offers the friend add at sign-in,
and after a LINE sign-in LINE's friendship status is recorded and shown."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse

from linking.line.models import LineFriend
from tests.fakes.idp import LINE
from tests.fakes.line import line_user_id

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("bot_prompt", ["normal", "aggressive"])
def test_line_login_asks_to_add_the_official_account(client, fake_idp, settings, bot_prompt):
    settings.LINE_BOT_PROMPT = bot_prompt

    authorize = fake_idp.start_login(client, LINE)

    assert parse_qs(urlsplit(authorize).query)["bot_prompt"] == [bot_prompt]


def test_without_the_setting_line_login_does_not_ask(client, fake_idp, settings):
    settings.LINE_BOT_PROMPT = ""

    authorize = fake_idp.start_login(client, LINE)

    assert "bot_prompt" not in parse_qs(urlsplit(authorize).query)


@pytest.mark.parametrize("is_friend", [True, False])
def test_friendship_is_recorded_after_a_line_sign_in(client, fake_idp, fake_line, is_friend):
    user = line_user_id()
    fake_idp.set_user(LINE, sub=user, name="山田 花子")
    fake_line.set_friend(user, is_friend)

    fake_idp.sign_in(client, LINE)

    assert LineFriend.objects.get(line_user_id=user).is_friend is is_friend
    assert LineFriend.objects.get(line_user_id=user).customer is None
    page = client.get(reverse("linking:center")).content.decode()
    expected = "公式アカウントと友だちです" if is_friend else "公式アカウントと友だちではありません"
    assert expected in page


def test_a_line_sign_in_works_when_friendship_status_cannot_be_had(
    client, fake_idp, fake_line, settings
):
    user = line_user_id()
    fake_idp.set_user(LINE, sub=user)
    settings.LINE_API_TIMEOUT_SECONDS = 5
    fake_line.fail_friendship_status()

    response = fake_idp.sign_in(client, LINE)

    assert response.status_code == 302 and response["Location"] == reverse("me")
    assert not LineFriend.objects.exists()
