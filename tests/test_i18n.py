"""Japanese first, English second: what language a customer sees, and that the Japanese
catalog is complete."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.template import engines
from django.templatetags.i18n import BlockTranslateNode, TranslateNode
from django.utils import translation

CATALOG = Path(settings.BASE_DIR) / "config" / "locale" / "ja" / "LC_MESSAGES" / "django.po"
TEMPLATES = Path(settings.BASE_DIR) / "templates"

# What each page says in each language: (Japanese, English).
PAGES = {
    "/": [("すべてのサービスを、ひとつのIDで", "One ID for all our services")],
    "/accounts/login/": [("<h1>ログイン</h1>", "<h1>Sign In</h1>"), ("パスワード", "Password")],
    "/accounts/signup/": [("<h1>新規登録</h1>", "<h1>Sign Up</h1>"), ("パスワード", "Password")],
}


def _text(response) -> str:
    """The page with the whitespace inside tags collapsed, as a reader would see it."""
    html = response.content.decode()
    return re.sub(r">\s+", ">", re.sub(r"\s+<", "<", html))


def _get(client, url: str, accept_language: str | None = None):
    headers = {"HTTP_ACCEPT_LANGUAGE": accept_language} if accept_language else {}
    response = client.get(url, **headers)
    assert response.status_code == 200
    return response


@pytest.mark.django_db
@pytest.mark.parametrize("accept_language", ["ja", "ja-JP,ja;q=0.9,en;q=0.5", None])
@pytest.mark.parametrize("url", PAGES)
def test_a_japanese_browser_or_one_sending_no_language_sees_japanese(client, url, accept_language):
    page = _text(_get(client, url, accept_language))

    assert '<html lang="ja">' in page
    assert "| 統合ID</title>" in page
    for japanese, english in PAGES[url]:
        assert japanese in page
        assert english not in page
    assert ">ログイン</a>" in page
    assert ">新規登録</a>" in page


@pytest.mark.django_db
@pytest.mark.parametrize("url", PAGES)
def test_an_english_browser_sees_english(client, url):
    page = _text(_get(client, url, "en-US,en;q=0.9"))

    assert '<html lang="en">' in page
    assert "| Unified ID</title>" in page
    for japanese, english in PAGES[url]:
        assert english in page
        assert japanese not in page
    assert ">Sign in</a>" in page
    assert ">Sign up</a>" in page


@pytest.mark.parametrize("accept_language", ["ja", None])
def test_my_page_is_japanese(customer_client, accept_language):
    page = _text(_get(customer_client, "/me/", accept_language))

    assert '<html lang="ja">' in page
    assert "<h1>マイページ</h1>" in page
    assert "会員証" in page
    assert "ログイン方法" in page
    assert ">ログアウト</a>" in page
    assert "My page" not in page


def test_my_page_is_english_for_an_english_browser(customer_client):
    page = _text(_get(customer_client, "/me/", "en"))

    assert "<h1>My page</h1>" in page
    assert "Member card" in page
    assert "マイページ" not in page


@pytest.mark.django_db
def test_choosing_english_sticks_on_the_next_request(client):
    response = client.post(
        "/i18n/setlang/", {"language": "en", "next": "/accounts/login/"}, HTTP_ACCEPT_LANGUAGE="ja"
    )

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    # The browser still asks for Japanese; the choice wins.
    page = _text(_get(client, "/accounts/login/", "ja"))
    assert "<h1>Sign In</h1>" in page
    assert '<html lang="en">' in page
    page = _text(_get(client, "/", "ja"))
    assert "One ID for all our services" in page


@pytest.mark.django_db
def test_choosing_japanese_again_switches_back(client):
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    client.post("/i18n/setlang/", {"language": "ja", "next": "/"})

    page = _text(_get(client, "/accounts/signup/", "en"))

    assert "<h1>新規登録</h1>" in page


def test_a_signed_in_customer_can_switch_language_from_my_page(customer_client):
    page = _text(_get(customer_client, "/me/"))
    assert 'name="next" value="/me/"' in page

    response = customer_client.post("/i18n/setlang/", {"language": "en", "next": "/me/"})

    assert response["Location"] == "/me/"
    assert "<h1>My page</h1>" in _text(_get(customer_client, "/me/"))


@pytest.mark.django_db
def test_the_language_switch_is_on_allauth_pages_and_returns_to_them(client):
    page = _text(_get(client, "/accounts/password/reset/"))

    assert 'action="/i18n/setlang/"' in page
    assert 'name="next" value="/accounts/password/reset/"' in page
    assert '<button type="submit" name="language" value="en"' in page
    assert '<button type="submit" name="language" value="ja" aria-current="true"' in page


def _po_entries(path: Path) -> list[dict]:
    """Entries of a .po file: msgctxt, msgid, msgid_plural, msgstr (msgstr[0]), flags.
    Obsolete (#~) entries are left out."""
    entries = []
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        entry: dict = {"flags": set()}
        field = None
        for line in block.splitlines():
            if line.startswith("#,"):
                entry["flags"].update(flag.strip() for flag in line[2:].split(","))
                continue
            if line.startswith("#"):
                continue
            match = re.match(r'(msgctxt|msgid_plural|msgid|msgstr(?:\[0\])?) "(.*)"$', line)
            if match:
                field = match.group(1).replace("[0]", "")
                entry[field] = match.group(2)
            elif line.startswith('"') and field:
                entry[field] += line[1:-1]
        if "msgid" in entry:
            for key in ("msgctxt", "msgid", "msgid_plural", "msgstr"):
                if key in entry:
                    entry[key] = entry[key].replace('\\"', '"').replace("\\n", "\n")
            entries.append(entry)
    return entries


def test_the_japanese_catalog_has_no_empty_or_fuzzy_entry():
    entries = _po_entries(CATALOG)

    assert len(entries) > 50
    header = entries[0]
    assert header["msgid"] == ""
    assert "Language: ja" in header["msgstr"]
    untranslated = [entry["msgid"] for entry in entries[1:] if not entry["msgstr"].strip()]
    fuzzy = [entry["msgid"] for entry in entries if "fuzzy" in entry["flags"]]
    assert untranslated == []
    assert fuzzy == []


def test_the_compiled_catalog_matches_the_po_file():
    """The .mo in the repository was compiled from the .po beside it."""
    stale = []
    with translation.override("ja"):
        for entry in _po_entries(CATALOG)[1:]:
            if "msgid_plural" in entry:
                shown = translation.ngettext(entry["msgid"], entry["msgid_plural"], 1)
            elif "msgctxt" in entry:
                shown = translation.pgettext(entry["msgctxt"], entry["msgid"])
            else:
                shown = translation.gettext(entry["msgid"])
            if shown != entry["msgstr"]:
                stale.append(entry["msgid"])
    assert stale == []


def _messages_of(template_path: Path) -> list[tuple[str | None, str, str | None]]:
    """(context, msgid, plural) of every translate/blocktranslate tag, as Django looks
    them up when it renders the template."""
    template = engines["django"].from_string(template_path.read_text(encoding="utf-8"))
    nodelist = template.template.nodelist
    messages = []
    for node in nodelist.get_nodes_by_type(TranslateNode):
        variable = node.filter_expression.var
        if variable.literal is not None:
            context = node.message_context.var if node.message_context else None
            messages.append((context, str(variable.literal), None))
    for node in nodelist.get_nodes_by_type(BlockTranslateNode):
        singular, _vars = node.render_token_list(node.singular)
        plural = node.render_token_list(node.plural)[0] if node.plural else None
        context = node.message_context.var if node.message_context else None
        messages.append((context, singular, plural))
    return messages


def _templates() -> list[Path]:
    return sorted(TEMPLATES.rglob("*.html")) + sorted(TEMPLATES.rglob("*.txt"))


@pytest.mark.parametrize("template_path", _templates(), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_every_template_string_reads_in_japanese(template_path):
    missing = []
    with translation.override("ja"):
        for context, msgid, plural in _messages_of(template_path):
            if plural:
                shown = translation.ngettext(msgid, plural, 2)
            elif context:
                shown = translation.pgettext(context, msgid)
            else:
                shown = translation.gettext(msgid)
            if shown == msgid:
                missing.append(msgid)
    assert missing == []


def test_our_wording_wins_over_allauths_japanese():
    with translation.override("ja"):
        assert translation.gettext("Sign Up") == "新規登録"
        assert translation.gettext("Confirm Access") == "本人確認"
        assert translation.gettext("You must type the same email each time.") == (
            "同じメールアドレスを入力してください。"
        )
