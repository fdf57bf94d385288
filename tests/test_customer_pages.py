"""What a customer sees, page by page, through Django's test client: the fixes a
walk through the site in Japanese asked for. The browser journey
(test_journey_customer) walks the same pages in Chromium."""

import html
import re
from io import StringIO
from urllib.parse import unquote

import pytest
from django.contrib.auth.hashers import make_password
from django.core.management import call_command
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from accounts import consent
from accounts.models import Customer
from linking.campaigns.models import Delivery
from tests.conftest import PASSWORD
from tests.fixtures.mfa import pass_second_factor, sign_in_with_password, stepped_up

pytest_plugins = ["tests.fixtures.campaigns"]

JSON = {"HTTP_ACCEPT": "application/json"}


def test_passkeys_say_why_they_are_off_where_the_address_cannot_have_them(
    client, customer, settings
):
    settings.PASSKEYS_ENABLED = False
    settings.SITE_URL = "http://127.0.0.1:8000"
    sign_in_with_password(client, customer)
    stepped_up(client)

    page = client.get("/accounts/2fa/").content.decode()
    assert "このサイトのアドレス（http://127.0.0.1:8000）ではパスキーを使えません" in page
    assert 'data-testid="add-passkey"' not in page
    assert client.get("/accounts/2fa/passkeys/add/").url == "/accounts/2fa/"
    response = client.post("/accounts/2fa/passkeys/registration/begin/", **JSON)
    assert response.status_code == 403
    assert response.json()["code"] == "passkeys_off"


def _in_site_layout(page: str) -> None:
    assert '<html lang="ja">' in page
    assert 'class="site-header"' in page
    assert 'href="/static/css/site.css"' in page


def test_a_stale_link_shows_our_404_page_in_japanese(customer_client, settings):
    settings.DEBUG = False
    response = customer_client.get("/link/suggested/50/")
    assert response.status_code == 404
    page = response.content.decode()
    _in_site_layout(page)
    assert "ページが見つかりません" in page
    assert 'href="/me/"' in page
    assert "Not Found" not in page


def test_a_server_error_shows_our_500_page_in_japanese(client, settings, db):
    settings.DEBUG = False
    settings.ROOT_URLCONF = "tests.error_urls"
    client.raise_request_exception = False
    response = client.get("/test-failure/")
    assert response.status_code == 500
    page = response.content.decode()
    _in_site_layout(page)
    assert "エラーが発生しました" in page
    assert "Server Error" not in page


def test_a_form_sent_without_its_csrf_token_shows_our_page(db, settings):
    settings.DEBUG = False
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"login": "a@example.jp", "password": "x"})
    assert response.status_code == 403
    page = response.content.decode()
    _in_site_layout(page)
    assert "もう一度お試しください" in page
    assert "CSRF" not in page
    assert settings.CSRF_COOKIE_NAME in response.cookies  # going back and resending works


def test_a_passkey_can_be_renamed_by_its_owner_only(verified_client, mfa_customer, make_customer):
    passkey = WebAuthnCredential.objects.create(
        user=mfa_customer, credential_id=b"x", public_key=b"y", sign_count=0, confirmed=True
    )
    response = verified_client.post(
        f"/accounts/2fa/passkeys/{passkey.pk}/rename/", {"name": " 仕事用PC "}
    )
    assert response.url == "/accounts/2fa/"
    passkey.refresh_from_db()
    assert passkey.name == "仕事用PC"
    assert "仕事用PC" in verified_client.get("/accounts/2fa/").content.decode()

    other = Client()
    other.force_login(make_customer("ren.ito@example.jp"))
    response = other.post(f"/accounts/2fa/passkeys/{passkey.pk}/rename/", {"name": "mine"})
    assert response.status_code == 404
    passkey.refresh_from_db()
    assert passkey.name == "仕事用PC"


def test_backup_codes_come_with_a_text_download_and_no_inline_script(verified_client, mfa_customer):
    response = verified_client.post("/accounts/2fa/backup-codes/")
    page = response.content.decode()
    link = re.search(r'href="data:text/plain;charset=utf-8,([^"]+)" download="([^"]+)"', page)
    assert link, page
    text = unquote(html.unescape(link.group(1)))
    shown = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", page)
    assert len(shown) == 10
    assert all(code in text for code in shown)
    assert mfa_customer.unified_id_display in text
    assert link.group(2).endswith(".txt")
    assert "data-print" in page and "data-copy-from" in page
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)


CAMPAIGN_TOKEN = "t" * 43


@pytest.fixture
def campaign_delivery(make_campaign, make_delivery, make_account, make_service) -> Delivery:
    """A campaign mail sent to a legacy customer who has no unified ID yet."""
    shop = make_service("shop", proofs=("code", "campaign"))
    account = make_account("S0001234", service=shop, email="Hanako.Yamada@example.jp")
    campaign = make_campaign(services=[shop], status="sending")
    return make_delivery(campaign, account, token=CAMPAIGN_TOKEN)


def test_a_campaign_recipient_signs_up_from_the_mail_and_links_without_signing_in_again(
    client, campaign_delivery, mailoutbox
):
    landing = client.get(f"/c/l/{CAMPAIGN_TOKEN}/").content.decode()
    signup = re.search(r'href="(/accounts/signup/\?[^"]+)" data-testid="campaign-signup"', landing)
    assert signup, landing
    form = client.get(html.unescape(signup.group(1))).content.decode()
    assert 'value="Hanako.Yamada@example.jp"' in form  # the address the mail went to

    response = client.post(
        html.unescape(signup.group(1)),
        {"email": "Hanako.Yamada@example.jp", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response["Location"] == "/accounts/confirm-email/"
    link = re.search(r"/accounts/confirm-email/\S+?/(?=\s|$)", mailoutbox[-1].body)
    assert client.get(link.group()).status_code == 200
    response = client.post(link.group())
    assert response["Location"] == "/c/confirm/"

    page = client.get("/c/confirm/")
    assert page.status_code == 200
    customer = Customer.objects.get(email__iexact="Hanako.Yamada@example.jp")
    assert customer.unified_id_display in page.content.decode()  # 1234 5678 9012
    # Confirming the address in the browser that signed up was the sign-in: linking
    # right after needs no password again.
    response = client.post("/c/confirm/")
    assert response["Location"] == "/link/"
    campaign_delivery.account.refresh_from_db()
    assert campaign_delivery.account.owner == customer


def test_the_second_factor_page_does_not_say_signed_in_until_the_code_is_in(client, mfa_customer):
    sign_in_with_password(client, mfa_customer)
    page = client.get("/accounts/2fa/verify/").content.decode()
    assert "ログインしました" not in page
    header = page.split("<main", 1)[0]
    assert 'href="/me/"' not in header and 'href="/link/"' not in header
    assert 'href="/accounts/logout/"' in header
    assert 'href="/accounts/logout/"' in page or 'action="/accounts/logout/"' in page

    pass_second_factor(client, TOTPDevice.objects.get(user=mfa_customer))
    page = client.get("/me/").content.decode()
    assert f"{mfa_customer.email} でログインしました。" in page


LEGACY_SECRET = "legacy-Secret-99"


def test_a_wrong_legacy_password_keeps_the_member_number_and_marks_the_password(
    customer_client, make_service, make_account
):
    shop = make_service("shop", proofs=("password",))
    make_account("S0001234", service=shop, password_hash=make_password(LEGACY_SECRET))
    stepped_up(customer_client)
    response = customer_client.post(
        "/link/service/shop/", {"pw-external_id": "S0001234", "pw-password": "wrong-guess"}
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert 'value="S0001234"' in page
    field = re.search(r"<input[^>]*name=\"pw-password\"[^>]*>", page).group()
    assert 'aria-invalid="true"' in field
    assert 'aria-describedby="id_pw-password_error"' in field
    assert 'id="id_pw-password_error"' in page
    assert "wrong-guess" not in page


def test_a_linked_service_shows_its_state_and_the_points_it_brought(
    customer_client, customer, make_service, make_account
):
    incentive = "連携すると 500 ポイントをプレゼント"
    shop = make_service("shop", proofs=("password",), incentive_ja=incentive)
    make_service("pos", proofs=("code",), incentive_ja="店舗のポイントもまとめて")
    make_account("S0001234", service=shop, password_hash=make_password(LEGACY_SECRET), points=1280)
    stepped_up(customer_client)
    response = customer_client.post(
        "/link/service/shop/",
        {"pw-external_id": "S0001234", "pw-password": LEGACY_SECRET},
        follow=True,
    )
    page = response.content.decode()
    assert "shop 会員の 1,280 ポイントが統合IDで合算されるようになりました。" in page
    shop_section = _section(page, "shop")
    assert "連携済み" in shop_section
    assert incentive not in shop_section
    assert 'class="button" href="/link/service/shop/"' not in shop_section
    assert "1,280ポイント" in shop_section
    pos_section = _section(page, "pos")
    assert "店舗のポイントもまとめて" in pos_section
    assert 'class="button" href="/link/service/pos/"' in pos_section


def test_each_this_is_mine_link_names_its_account(
    customer_client, customer, make_service, make_account
):
    for code in ("shop", "pos", "mail"):
        make_account(f"{code}-0001", service=make_service(code), email=customer.email)
    page = customer_client.get("/link/").content.decode()
    names = re.findall(r'href="/link/suggested/\d+/">(.*?)</a>', page)
    assert len(names) == 3
    assert len({re.sub(r"<[^>]+>", "", name) for name in names}) == 3


def _section(page: str, code: str) -> str:
    return re.search(
        rf'<section[^>]*aria-labelledby="service-{code}">.*?</section>', page, re.S
    ).group()


def test_the_demo_publishes_a_privacy_notice_and_sign_up_links_it_and_the_terms(client, db):
    call_command("seed_demo", stdout=StringIO())
    notice = client.get("/privacy/").content.decode()
    assert "利用目的" in notice
    assert "まだ公開されていません" not in notice and "No notice" not in notice

    signup = client.get("/accounts/signup/").content.decode()
    terms_line = re.search(r'data-testid="signup-terms">(.*?)</p>', signup, re.S).group(1)
    assert 'href="/terms/"' in terms_line and 'href="/privacy/"' in terms_line
    assert "会員規約" in client.get("/terms/").content.decode()
    demo = Customer.objects.get(email="demo@example.jp")
    assert not consent.needs_agreement(demo)  # the demo customer agreed at sign-up


def test_the_only_confirmed_address_offers_no_make_primary_or_resend(customer_client):
    stepped_up(customer_client)
    page = customer_client.get("/accounts/email/").content.decode()
    assert "hanako@example.jp" in page and "確認済み" in page
    assert "action_primary" not in page and "action_send" not in page
    assert "Make Primary" not in page and "Re-send" not in page
    assert 'name="action_add"' in page  # changing the address stays possible


def test_sign_in_methods_show_no_empty_heading_without_providers(customer_client):
    stepped_up(customer_client)
    page = customer_client.get("/accounts/3rdparty/").content.decode()
    assert "<h1>外部アカウントでのログイン</h1>" in page
    assert "<h2>" not in page.split("<main", 1)[1]  # nothing to add: no heading over nothing
    assert "Add a Third-Party Account" not in page
