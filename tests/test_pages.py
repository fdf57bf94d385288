"""The pages a customer sees: our layout around allauth's pages, sign-in buttons of the
configured identity providers, the member card, and pages fit for a 360 px phone with no
inline script or style (ready for a strict Content-Security-Policy)."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.template.loader import get_template
from django.templatetags.static import static

from tests.conftest import PASSWORD

TEMPLATES = Path(settings.BASE_DIR) / "templates"

ANONYMOUS_PAGES = [
    "/",
    "/accounts/login/",
    "/accounts/signup/",
    "/accounts/password/reset/",
    "/accounts/password/reset/done/",
    "/accounts/confirm-email/",
]
CUSTOMER_PAGES = [
    "/me/",
    "/accounts/logout/",
    "/accounts/3rdparty/",
    "/accounts/email/",
    "/accounts/reauthenticate/",
    "/accounts/password/change/",
]


@pytest.fixture
def providers(settings):
    """LINE, Google and one OpenID Connect IdP configured."""
    settings.SOCIALACCOUNT_PROVIDERS = {
        **settings.SOCIALACCOUNT_PROVIDERS,
        "openid_connect": {
            "APPS": [
                {
                    "provider_id": "group-sso",
                    "name": "グループSSO",
                    "client_id": "client",
                    "secret": "secret",
                    "settings": {"server_url": "https://sso.example.jp"},
                }
            ]
        },
        "line": {
            "SCOPE": ["openid", "profile", "email"],
            "APPS": [{"client_id": "l", "secret": "s"}],
        },
        "google": {
            "SCOPE": ["openid", "profile", "email"],
            "APPS": [{"client_id": "g", "secret": "s"}],
        },
    }


@pytest.fixture
def no_providers(settings):
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {"APPS": []},
        "line": {"SCOPE": ["openid"], "APPS": []},
        "google": {"SCOPE": ["openid"], "APPS": []},
    }


def _text(response) -> str:
    html = response.content.decode()
    return re.sub(r">\s+", ">", re.sub(r"\s+<", "<", html))


def _h1(page: str) -> str:
    match = re.search(r"<h1>(.*?)</h1>", page, re.S)
    assert match, "the page has no <h1>"
    return match.group(1)


def _assert_inside_our_layout(page: str) -> None:
    assert '<header class="site-header">' in page
    assert '<a class="brand" href="/">統合ID</a>' in page
    assert '<nav class="site-nav" aria-label="メインメニュー">' in page
    assert '<form class="language-switch" action="/i18n/setlang/" method="post">' in page
    assert '<footer class="site-footer">' in page
    assert f'<link rel="stylesheet" href="{static("css/site.css")}">' in page


@pytest.mark.django_db
def test_the_login_page_is_allauths_inside_our_layout_in_japanese(client):
    page = _text(client.get("/accounts/login/"))

    _assert_inside_our_layout(page)
    assert page.count("<html") == 1
    assert re.search(r"<title>\s*ログイン\s*\| 統合ID</title>", page)
    assert _h1(page) == "ログイン"
    assert '<label for="id_login">メールアドレス</label>' in page
    assert '<label for="id_password">パスワード</label>' in page
    assert "パスワードをお忘れですか?" in page
    assert '<label class="choice" for="id_remember">' in page
    assert '<button class="button primary" type="submit">ログイン</button>' in page
    assert "統合IDをお持ちでない方は" in page


@pytest.mark.django_db
def test_the_signup_page_is_inside_our_layout_in_japanese(client):
    page = _text(client.get("/accounts/signup/"))

    _assert_inside_our_layout(page)
    assert _h1(page) == "新規登録"
    assert "すでに統合IDをお持ちの方は" in page
    assert '<button class="button primary" type="submit">新規登録</button>' in page
    assert "パスワード (再入力)" in page


@pytest.mark.django_db
def test_a_failed_sign_in_shows_a_japanese_alert(client, customer):
    response = client.post(
        "/accounts/login/", {"login": "hanako@example.jp", "password": "wrong-password-1"}
    )
    page = _text(response)

    assert response.status_code == 200
    assert '<div class="alert error" role="alert">' in page
    assert "入力されたメールアドレスもしくはパスワードが正しくありません。" in page


@pytest.mark.django_db
def test_signup_errors_sit_beside_their_field_in_japanese(client):
    page = _text(
        client.post(
            "/accounts/signup/",
            {"email": "taro@example.jp", "password1": "short", "password2": "short"},
        )
    )

    assert '<div class="field has-error"><label for="id_password1">パスワード</label>' in page
    assert 'aria-invalid="true"' in page
    assert '<ul class="errorlist" id="id_password1_error">' in page
    assert "このパスワードは短すぎます。" in page


@pytest.mark.django_db
def test_after_signup_the_verification_page_is_japanese(client):
    response = client.post(
        "/accounts/signup/",
        {"email": "taro@example.jp", "password1": PASSWORD, "password2": PASSWORD},
        follow=True,
    )
    page = _text(response)

    assert response.redirect_chain[-1][0] == "/accounts/confirm-email/"
    _assert_inside_our_layout(page)
    assert _h1(page) == "メールアドレスを確認してください"
    assert "メールに記載されたリンクを開いて、新規登録を完了してください。" in page


@pytest.mark.django_db
def test_the_password_reset_page_is_japanese(client):
    page = _text(client.get("/accounts/password/reset/"))

    _assert_inside_our_layout(page)
    assert _h1(page) == "パスワードの再設定"
    assert "パスワードを再設定する</button>" in page


def test_the_logout_page_asks_in_japanese(customer_client):
    page = _text(customer_client.get("/accounts/logout/"))

    _assert_inside_our_layout(page)
    assert _h1(page) == "ログアウト"
    assert "ログアウトしますか?" in page
    assert '<button class="button primary" type="submit">ログアウト</button>' in page


def test_the_reauthenticate_page_is_japanese(customer_client):
    page = _text(customer_client.get("/accounts/reauthenticate/"))

    _assert_inside_our_layout(page)
    assert _h1(page) == "本人確認"
    assert "アカウント保護のため、もう一度本人確認をお願いします。" in page
    assert '<button class="button primary" type="submit">確認する</button>' in page


def test_the_connections_page_is_japanese(customer_client, providers):
    page = _text(customer_client.get("/accounts/3rdparty/"))

    _assert_inside_our_layout(page)
    assert _h1(page) == "外部アカウントでのログイン"
    assert "ログインに使える外部アカウントはまだありません。" in page
    assert 'action="/accounts/line/login/?process=connect"' in page
    assert "LINEアカウントを追加" in page


@pytest.mark.django_db
def test_the_login_page_offers_a_button_per_configured_provider(client, providers):
    page = _text(client.get("/accounts/login/"))

    buttons = re.findall(
        r'<form class="provider-form" method="post" action="([^"]+)">'
        r'<input type="hidden" name="csrfmiddlewaretoken" value="[^"]+">'
        r'<button type="submit" class="provider provider-([a-z_]+)">.*?'
        r'<span class="provider-label">([^<]+)</span>',
        page,
        re.S,
    )
    assert buttons == [
        ("/accounts/line/login/?process=login", "line", "LINEでログイン"),
        ("/accounts/google/login/?process=login", "google", "Googleでログイン"),
        (
            "/accounts/oidc/group-sso/login/?process=login",
            "openid_connect",
            "グループSSOでログイン",
        ),
    ]
    assert "または、次のアカウントで続ける" in page


@pytest.mark.django_db
def test_the_signup_page_offers_signing_up_with_a_provider(client, providers):
    page = _text(client.get("/accounts/signup/"))

    assert "LINEで新規登録" in page
    assert "Googleで新規登録" in page


@pytest.mark.django_db
def test_the_home_page_offers_the_providers_in_english_too(client, providers):
    page = _text(client.get("/", HTTP_ACCEPT_LANGUAGE="en"))

    assert "Sign in with LINE" in page
    assert "Sign in with Google" in page


@pytest.mark.django_db
def test_a_provider_button_goes_straight_to_the_provider(client, providers):
    """The button posts to allauth's login URL, which redirects to the IdP at once."""
    client.get("/accounts/login/")

    response = client.post("/accounts/line/login/?process=login")

    assert response.status_code == 302
    assert response["Location"].startswith(f"{settings.LINE_LOGIN_URL}/oauth2/v2.1/authorize?")


@pytest.mark.django_db
def test_no_provider_buttons_without_configured_providers(client, no_providers):
    for url in ("/", "/accounts/login/", "/accounts/signup/"):
        page = _text(client.get(url))

        assert 'class="provider-list"' not in page
        assert "でログイン" not in page
        assert "次のアカウントで続ける" not in page


def test_my_page_shows_the_grouped_unified_id_and_an_inline_svg_qr_code(customer_client, customer):
    customer.unified_id = "123456789012"
    customer.save()

    page = _text(customer_client.get("/me/"))

    _assert_inside_our_layout(page)
    assert '<p class="unified-id" data-testid="unified-id">1234 5678 9012</p>' in page
    qr = re.search(
        r'<div class="card-qr" role="img" aria-label="統合IDのQRコード">(<svg.*?</svg>)</div>',
        page,
        re.S,
    )
    assert qr, "no inline SVG QR code on the member card"
    assert "<path" in qr.group(1)
    assert "<img" not in qr.group(0)


def test_my_page_lists_sign_in_methods_and_email(customer_client):
    page = _text(customer_client.get("/me/"))

    assert "メールアドレスとパスワード" in page
    assert 'hanako@example.jp<span class="badge ok">確認済み</span>' in page
    assert 'href="/accounts/3rdparty/">ログイン方法の追加・解除</a>' in page


def test_the_menu_of_a_signed_in_customer(customer_client):
    page = _text(customer_client.get("/me/"))

    nav = re.search(r'<nav class="site-nav"[^>]*>(.*?)</nav>', page, re.S).group(1)
    assert re.findall(r'<a href="([^"]+)">([^<]+)</a>', nav) == [
        ("/me/", "マイページ"),
        ("/link/", "連携アカウント"),
        ("/accounts/logout/", "ログアウト"),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("url", ANONYMOUS_PAGES)
def test_every_public_page_has_the_viewport_tag_and_no_inline_code(client, url):
    page = client.get(url).content.decode()

    _assert_phone_ready_and_csp_ready(page)


@pytest.mark.parametrize("url", CUSTOMER_PAGES)
def test_every_customer_page_has_the_viewport_tag_and_no_inline_code(customer_client, url):
    page = customer_client.get(url).content.decode()

    _assert_phone_ready_and_csp_ready(page)


def _assert_phone_ready_and_csp_ready(page: str) -> None:
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "<style" not in page
    assert not re.search(r"\sstyle=", page)
    assert not re.search(r"\son[a-z]+=", page)
    assert "javascript:" not in page
    for script in re.findall(r"<script\b([^>]*)>", page):
        # External scripts from our own origin and non-executable data blocks only.
        assert "src=" in script or 'type="application/json"' in script


@pytest.mark.parametrize(
    "template_path",
    sorted(TEMPLATES.rglob("*.html")),
    ids=lambda path: str(path.relative_to(TEMPLATES)),
)
def test_every_template_compiles(template_path):
    template = get_template(str(template_path.relative_to(TEMPLATES)))

    assert template.origin.name == str(template_path)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_on_a_360px_phone_nothing_scrolls_sideways_and_everything_is_thumb_sized(
    page, live_server, providers
):
    sizes_js = """() => {
        const tappable = document.querySelectorAll(
            '.site-header a, .site-header button, main button, main .button, main input, '
            + 'main select, main textarea, main label.choice, .helptext a');
        return {
            scroll: document.documentElement.scrollWidth,
            small: [...tappable]
                .filter(el => el.type !== 'hidden' && el.type !== 'checkbox' && el.type !== 'radio')
                .filter(el => el.getBoundingClientRect().height < 44)
                .map(el => el.outerHTML.slice(0, 80)),
        };
    }"""
    for url in ("/", "/accounts/login/", "/accounts/signup/", "/accounts/password/reset/"):
        page.goto(live_server.url + url)

        measured = page.evaluate(sizes_js)

        assert measured["scroll"] <= 360, url
        assert measured["small"] == [], url


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_in_a_browser_the_language_switch_works_on_allauth_pages_and_sticks(page, live_server):
    page.goto(live_server.url + "/accounts/login/")
    assert page.locator("h1").inner_text() == "ログイン"

    page.get_by_role("button", name="English").click()

    assert page.url == live_server.url + "/accounts/login/"
    assert page.locator("h1").inner_text() == "Sign In"
    page.goto(live_server.url + "/accounts/signup/")
    assert page.locator("h1").inner_text() == "Sign Up"
    assert page.locator("html").get_attribute("lang") == "en"
