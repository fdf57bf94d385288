"""Sessions: the list of where a customer is signed in, ending the others, and the
idle and absolute timeouts (accounts.sessions)."""

import re
import time

import pytest
from allauth.usersessions.models import UserSession
from django.test import Client

from accounts.sessions import LAST_SEEN_AT, SIGNED_IN_AT
from tests.conftest import PASSWORD

PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Mobile Safari"
LAPTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/140.0"


def _sign_in(customer, *, user_agent: str, ip: str) -> Client:
    client = Client(HTTP_USER_AGENT=user_agent, REMOTE_ADDR=ip)
    response = client.post("/accounts/login/", {"login": customer.email, "password": PASSWORD})
    assert response.status_code == 302
    return client


def test_it_lists_each_signed_in_device_with_its_ip(customer):
    phone = _sign_in(customer, user_agent=PHONE, ip="198.51.100.7")
    _sign_in(customer, user_agent=LAPTOP, ip="203.0.113.9")

    page = phone.get("/accounts/sessions/").content.decode()

    # Device names (ua-parser), not user-agent strings.
    assert "Mobile Safari（iOS 18, iPhone）" in page and "Chrome（Windows 10）" in page
    assert PHONE not in page and "Windows NT" not in page
    assert "198.51.100.7" in page and "203.0.113.9" in page
    # The page is called what the link to it on /me/ says.
    link = re.search(r'<a href="/accounts/sessions/">(.*?)</a>', phone.get("/me/").content.decode())
    assert f"<h1>{link.group(1)}</h1>" in page
    assert UserSession.objects.filter(user=customer).count() == 2


def test_ending_the_other_sessions_signs_the_other_device_out(customer):
    phone = _sign_in(customer, user_agent=PHONE, ip="198.51.100.7")
    laptop = _sign_in(customer, user_agent=LAPTOP, ip="203.0.113.9")

    response = phone.post("/accounts/sessions/")

    assert response.status_code == 302
    assert laptop.get("/me/").status_code == 302  # back to the sign-in page
    assert phone.get("/me/").status_code == 200
    assert list(UserSession.objects.filter(user=customer).values_list("user_agent", flat=True)) == [
        PHONE
    ]


def test_a_customer_sees_only_their_own_sessions(customer, make_customer):
    other = make_customer("taro@example.jp")
    _sign_in(other, user_agent=LAPTOP, ip="203.0.113.9")
    phone = _sign_in(customer, user_agent=PHONE, ip="198.51.100.7")

    page = phone.get("/accounts/sessions/").content.decode()

    assert "203.0.113.9" not in page and "198.51.100.7" in page


def _age(client: Client, key: str, seconds: int) -> None:
    session = client.session
    session[key] = int(time.time()) - seconds
    session.save()


@pytest.mark.parametrize("key", [LAST_SEEN_AT, SIGNED_IN_AT])
def test_a_sign_in_past_its_timeout_ends(customer, settings, key):
    settings.SESSION_IDLE_TIMEOUT = 3600
    settings.SESSION_COOKIE_AGE = 86400
    client = _sign_in(customer, user_agent=PHONE, ip="198.51.100.7")
    limit = settings.SESSION_IDLE_TIMEOUT if key == LAST_SEEN_AT else settings.SESSION_COOKIE_AGE

    _age(client, key, limit + 60)
    response = client.get("/me/")

    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert "_auth_user_id" not in client.session


def test_a_sign_in_within_its_timeouts_stays_and_refreshes_last_seen(customer, settings):
    settings.SESSION_IDLE_TIMEOUT = 3600
    client = _sign_in(customer, user_agent=PHONE, ip="198.51.100.7")
    _age(client, LAST_SEEN_AT, 600)
    aged = client.session[LAST_SEEN_AT]
    before = UserSession.objects.get(user=customer).last_seen_at

    assert client.get("/me/").status_code == 200

    assert UserSession.objects.get(user=customer).last_seen_at > before
    assert client.session[LAST_SEEN_AT] > aged


def test_a_session_that_passed_the_second_factor_can_still_be_ended(mfa_customer):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from tests.fixtures.mfa import pass_second_factor

    device = TOTPDevice.objects.get(user=mfa_customer)
    laptop = _sign_in(mfa_customer, user_agent=LAPTOP, ip="203.0.113.9")
    pass_second_factor(laptop, device)  # the session key changes here
    phone = _sign_in(mfa_customer, user_agent=PHONE, ip="198.51.100.7")
    pass_second_factor(phone, device, drift=1)

    phone.post("/accounts/sessions/")

    assert laptop.get("/me/").status_code == 302
    assert phone.get("/me/").status_code == 200
