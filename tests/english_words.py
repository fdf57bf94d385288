"""English words that must not show on a Japanese page: the words of every message
that Django's, allauth's and our own Japanese catalogues translate (msgstr set and
different from the msgid). A page showing one of them shows an untranslated string."""

import re
from functools import cache
from pathlib import Path

import allauth
import django
from django.conf import settings

CATALOGUES = [
    Path(django.__file__).parent / "conf" / "locale" / "ja" / "LC_MESSAGES" / "django.po",
    Path(allauth.__file__).parent / "locale" / "ja" / "LC_MESSAGES" / "django.po",
    Path(settings.BASE_DIR) / "config" / "locale" / "ja" / "LC_MESSAGES" / "django.po",
]
# Words that are not English to a Japanese reader, or name things: brands, protocol
# and format names, and words the catalogues share with names and addresses.
NOT_ENGLISH = {
    "line",
    "google",
    "openid",
    "connect",
    "oidc",
    "email",
    "mail",
    "id",
    "qr",
    "pin",
    "sms",
    "totp",
    "url",
    "http",
    "https",
    "localhost",
    "json",
    "csv",
    "txt",
    "app",
    "web",
    "cookie",
    "example",
    "www",
    "com",
    "jp",
    "org",
    "net",
    "webhook",
    "api",
    "ok",
    "os",
    "ip",
}
_WORD = re.compile(r"[A-Za-z][a-z]{2,}")
_ENTRY = re.compile(
    r'(?ms)^msgid ((?:".*?"\n)+)(?:msgid_plural (?:".*?"\n)+)?msgstr(?:\[0\])? ((?:".*?"\n)+)'
)
_PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|\{\{.*?\}\}|\{[\w.]*\}|<[^>]+>")


def _joined(quoted: str) -> str:
    return "".join(line[1:-1] for line in quoted.strip().splitlines())


@cache
def words() -> frozenset[str]:
    found: set[str] = set()
    for path in CATALOGUES:
        for msgid, msgstr in _ENTRY.findall(path.read_text(encoding="utf-8")):
            english, japanese = _joined(msgid), _joined(msgstr)
            if not japanese or japanese == english:
                continue
            found.update(w.lower() for w in _WORD.findall(_PLACEHOLDER.sub(" ", english)))
    return frozenset(found - NOT_ENGLISH)


# Addresses, URLs, file names and the names of products a page may mention.
_NOT_TEXT = re.compile(
    r"\S+@\S+|https?://\S+|[\w.-]+\.(?:jp|com|txt|json)\b"
    r"|(?:Google|Microsoft) Authenticator|1Password|HeadlessChrome"
)


def english_on(text: str) -> set[str]:
    """The catalogue words in a page's visible text (addresses and URLs left out)."""
    return {w for w in _WORD.findall(_NOT_TEXT.sub(" ", text)) if w.lower() in words()}
