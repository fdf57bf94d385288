"""What a campaign email says: placeholders filled for one legacy account, in its
language, with the sender footer and the headers mailbox providers expect
(Message-ID, List-Unsubscribe, List-Unsubscribe-Post)."""

import base64
import email
import email.policy
import re
from dataclasses import dataclass, field
from email.utils import formatdate
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import sanitize_address
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.html import escape, linebreaks, urlize
from django.utils.translation import gettext as _

from linking.campaigns.models import Campaign, Delivery
from linking.models import Language, LegacyAccount

PLACEHOLDERS = ("name", "service", "member_number", "incentive", "link")
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_UNSUBSCRIBE_SALT = "campaigns.unsubscribe"


def unknown_placeholders(template: str) -> list[str]:
    return sorted({name for name in _PLACEHOLDER.findall(template) if name not in PLACEHOLDERS})


def fill(template: str, values: dict[str, str], *, html: bool = False) -> str:
    """Replace {{ name }}-style placeholders. Staff text is never run as a Django
    template; values are escaped in HTML."""

    def value(match: re.Match) -> str:
        if match[1] not in values:
            return match[0]
        return escape(values[match[1]]) if html else values[match[1]]

    return _PLACEHOLDER.sub(value, template)


def language_for(account: LegacyAccount, campaign: Campaign) -> str:
    """The record's own language if it has one, else its service's default; Japanese
    when the campaign has no English text."""
    wanted = (account.attributes or {}).get("language") or account.service.default_language
    if wanted == Language.EN and campaign.subject_en and campaign.text_en:
        return Language.EN
    return Language.JA


def site_host() -> str:
    return urlsplit(settings.SITE_URL).hostname or "localhost"


def message_id(delivery: Delivery) -> str:
    """Stable per delivery: a resend of the same delivery carries the same ID."""
    return f"<campaign.{delivery.campaign_id}.{delivery.step}.{delivery.pk}@{site_host()}>"


def unsubscribe_code(delivery_id: int) -> str:
    return signing.Signer(salt=_UNSUBSCRIBE_SALT).sign(str(delivery_id))


def delivery_id_from_unsubscribe_code(code: str) -> int | None:
    try:
        return int(signing.Signer(salt=_UNSUBSCRIBE_SALT).unsign(code))
    except (signing.BadSignature, ValueError):
        return None


def unsubscribe_mailto() -> str:
    return settings.CAMPAIGN_UNSUBSCRIBE_MAILTO or f"unsubscribe@{site_host()}"


@dataclass
class Rendered:
    subject: str
    text: str
    html: str
    language: str


def render(
    campaign: Campaign,
    account: LegacyAccount,
    *,
    step: int,
    link: str,
    unsubscribe_url: str,
    language: str | None = None,
) -> Rendered:
    """The subject and bodies for one account, in its language unless one is given."""
    language = language or language_for(account, campaign)
    with translation.override(language):
        values = {
            "name": account.name or _("customer"),
            "service": account.service.name,
            "member_number": account.masked_external_id,
            "incentive": account.service.incentive,
            "link": link,
        }
        return _render(campaign, language, step, values, unsubscribe_url)


def _render(
    campaign: Campaign, language: str, step: int, values: dict[str, str], unsubscribe_url: str
) -> Rendered:
    """render() with the values given; the caller has activated `language`."""
    if language == Language.EN:
        subject, text, html = campaign.subject_en, campaign.text_en, campaign.html_en
    else:
        subject, text, html = campaign.subject_ja, campaign.text_ja, campaign.html_ja
    subject = fill(subject, values).replace("\n", " ").strip()
    if step > 0:
        subject = _("Reminder: %(subject)s") % {"subject": subject}
    footer = {"campaign": campaign, "unsubscribe_url": unsubscribe_url}
    text_body = fill(text, values) + "\n\n" + render_to_string("campaigns/email/footer.txt", footer)
    html_content = (
        fill(html, values, html=True) if html else linebreaks(urlize(escape(fill(text, values))))
    )
    html_body = render_to_string(
        "campaigns/email/message.html",
        {**footer, "content": html_content, "subject": subject, "language": language},
    )
    return Rendered(subject=subject, text=text_body, html=html_body, language=language)


def build_message(
    campaign: Campaign, delivery: Delivery, account: LegacyAccount, *, token: str
) -> EmailMultiAlternatives:
    """The email of one delivery, with its personal link (the raw token, which only
    this message ever carries)."""
    link = settings.SITE_URL + reverse("campaigns:landing", args=[token])
    code = unsubscribe_code(delivery.pk)
    unsubscribe_url = settings.SITE_URL + reverse("campaigns:unsubscribe", args=[code])
    rendered = render(
        campaign, account, step=delivery.step, link=link, unsubscribe_url=unsubscribe_url
    )
    mailto = f"mailto:{unsubscribe_mailto()}?subject={quote('unsubscribe ' + code)}"
    message = EmailMultiAlternatives(
        subject=rendered.subject,
        body=rendered.text,
        from_email=campaign.from_email or settings.DEFAULT_FROM_EMAIL,
        to=[delivery.email],
        headers={
            "Message-ID": message_id(delivery),
            "List-Unsubscribe": f"<{unsubscribe_url}>, <{mailto}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Content-Language": rendered.language,
        },
    )
    message.attach_alternative(rendered.html, "text/html")
    return message


# Composing many emails of one campaign quickly. Rendering templates and building
# MIME for each email is most of a sender's CPU time, yet only a few values differ
# between two emails of the same campaign, step, language and service: the name,
# the masked member number, the link's token, the unsubscribe code and a few
# headers. So that email is rendered and serialized once with markers in place of
# those values, and each email is those bytes with the markers replaced. A template
# is used only after it gave, for sample values, the same email as build_message; a
# personal value that rendering could change (HTML escaping, links, line breaks,
# long lines) sends that one email through build_message instead.

_MARK = "Zq7x"  # neither escaping, urlize nor MIME encoding changes these markers
_MARKS = {
    "name": f"{_MARK}NAMEx7qZ",
    "member_number": f"{_MARK}MEMBERx7qZ",
    "token": f"{_MARK}TOKENx7qZ",
    "code": f"{_MARK}CODEx7qZ",
    "subject": f"{_MARK}SUBJECTx7qZ",
    "to": f"{_MARK}TOx7qZ@example.invalid",
    "date": f"{_MARK}DATEx7qZ",
    "message_id": f"<{_MARK}MSGIDx7qZ@example.invalid>",
    "list_unsubscribe": f"{_MARK}LISTUNSUBx7qZ",
}
_MARK_PATTERN = re.compile(
    "|".join(re.escape(mark) for mark in sorted(_MARKS.values(), key=len, reverse=True)).encode()
)
_SAFE = r"[^\x00-\x20\x7f.@:/&<>\"'=%\\{}\[\]()]+"
_PLAIN = re.compile(rf"{_SAFE}(?: {_SAFE})*")
_PLAIN_MAX_BYTES = 120
_LINE_LIMIT = 998  # RFC 5322; a longer body line needs another transfer encoding
_PERSONAL = ("name", "member_number", "token", "code")
_TEMPLATES_KEPT = 64
_SIMPLE_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
)
_templates: dict[tuple, "_Template"] = {}


def _plain(value: str) -> bool:
    """A personal value every part of the email shows as it is."""
    return not value or (
        len(value.encode()) <= _PLAIN_MAX_BYTES
        and _PLAIN.fullmatch(value) is not None
        and _MARK not in value
    )


@dataclass
class Outgoing:
    """One email ready for SMTP: envelope sender, recipient and the message's bytes
    (CRLF line ends, not yet dot-stuffed)."""

    sender: str
    recipient: str
    data: bytes


@dataclass
class _Template:
    data: bytes | None  # None: emails of this kind are always built in full
    subject: str = ""
    default_name: str = ""
    # Body lines holding personal values: (length without them, count of each).
    lines: list = field(default_factory=list)

    def fits(self, values: dict[str, bytes]) -> bool:
        """Every body line stays within the line limit with these values."""
        sizes = [len(values[name]) for name in _PERSONAL]
        return all(
            bare + sum(count * size for count, size in zip(counts, sizes, strict=True))
            <= _LINE_LIMIT
            for bare, counts in self.lines
        )


def _subject_header(subject: str) -> bytes:
    """The Subject header's value: as it is when ASCII, else RFC 2047 encoded words
    (base64, whole characters, at most 45 bytes each), one per folded line."""
    if subject.isascii() and len(subject) < 900:
        return subject.encode()
    words, chunk, size = [], [], 0
    for char in subject:
        width = len(char.encode())
        if size + width > 45:
            words.append("".join(chunk))
            chunk, size = [], 0
        chunk.append(char)
        size += width
    words.append("".join(chunk))
    return b"\r\n ".join(b"=?utf-8?b?" + base64.b64encode(word.encode()) + b"?=" for word in words)


def _address(address: str, encoding: str) -> str:
    """sanitize_address, skipping the parser for a plain ASCII address."""
    if _SIMPLE_ADDRESS.fullmatch(address):
        return address
    return sanitize_address(address, encoding)


def _digest(data: bytes) -> tuple:
    """What a mail client sees of a message, for comparing two serializations."""
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    headers = sorted(
        (name.lower(), str(value).strip())
        for name, value in parsed.items()
        if name.lower() not in ("date", "content-type")
    )
    parts = [
        (part.get_content_type(), part.get_content_charset(), part.get_content())
        for part in parsed.walk()
        if not part.is_multipart()
    ]
    return parsed.get_content_type(), headers, parts


class Composer:
    """Builds the emails of one campaign as bytes for SMTP (see above)."""

    def __init__(self, campaign: Campaign) -> None:
        self.campaign = campaign
        self.from_email = campaign.from_email or settings.DEFAULT_FROM_EMAIL
        self.encoding = settings.DEFAULT_CHARSET
        self.sender = sanitize_address(self.from_email, self.encoding)
        self.landing = settings.SITE_URL + reverse("campaigns:landing", args=[_MARKS["token"]])
        self.unsubscribe = settings.SITE_URL + reverse(
            "campaigns:unsubscribe", args=[_MARKS["code"]]
        )
        self.mailto = unsubscribe_mailto()
        self.date = formatdate(localtime=settings.EMAIL_USE_LOCALTIME).encode()
        self.templates: dict[tuple, _Template] = {}

    def outgoing(self, delivery: Delivery, account: LegacyAccount, *, token: str) -> Outgoing:
        recipient = _address(delivery.email, self.encoding)
        language = language_for(account, self.campaign)
        key = (delivery.step, language, account.service_id)
        template = self.templates.get(key)
        if template is None:
            template = self.templates[key] = self._template(delivery.step, language, account)
        name = account.name or template.default_name
        member_number = account.masked_external_id
        data = None
        if template.data is not None and _plain(name) and _plain(member_number):
            values = {
                "name": name.encode(),
                "member_number": member_number.encode(),
                "token": token.encode(),
                "code": unsubscribe_code(delivery.pk).encode(),
            }
            if template.fits(values):
                data = self._fill(template, delivery, values, recipient)
        if data is None:
            message = build_message(self.campaign, delivery, account, token=token)
            data = message.message().as_bytes(linesep="\r\n")
        return Outgoing(sender=self.sender, recipient=recipient, data=data)

    def _fill(self, template: _Template, delivery: Delivery, values: dict, to: str) -> bytes:
        """The template with personal values (bytes, keyed as _PERSONAL) and headers."""
        code = values["code"].decode()
        unsubscribe_url = self.unsubscribe.replace(_MARKS["code"], code)
        mailto = f"mailto:{self.mailto}?subject={quote('unsubscribe ' + code)}"
        subject = template.subject.replace(_MARKS["name"], values["name"].decode()).replace(
            _MARKS["member_number"], values["member_number"].decode()
        )
        replacements = {
            **{_MARKS[name].encode(): values[name] for name in _PERSONAL},
            _MARKS["subject"].encode(): _subject_header(subject),
            _MARKS["to"].encode(): to.encode(),
            _MARKS["date"].encode(): self.date,
            _MARKS["message_id"].encode(): message_id(delivery).encode(),
            _MARKS["list_unsubscribe"].encode(): f"<{unsubscribe_url}>,\r\n <{mailto}>".encode(),
        }
        return _MARK_PATTERN.sub(lambda match: replacements[match[0]], template.data)

    def _template(self, step: int, language: str, account: LegacyAccount) -> _Template:
        service = account.service
        with translation.override(language):
            default_name = _("customer")
            values = {
                "name": _MARKS["name"],
                "service": service.name,
                "member_number": _MARKS["member_number"],
                "incentive": service.incentive,
                "link": self.landing,
            }
            campaign = self.campaign
            key = (
                campaign.pk,
                step,
                language,
                tuple(values.items()),
                self.sender,
                self.unsubscribe,
                self.mailto,
                *(
                    getattr(campaign, field)
                    for field in (
                        "subject_ja",
                        "text_ja",
                        "html_ja",
                        "subject_en",
                        "text_en",
                        "html_en",
                        "sender_company",
                        "sender_address",
                        "sender_contact",
                    )
                ),
            )
            template = _templates.get(key)
            if template is None:
                rendered = _render(campaign, language, step, values, self.unsubscribe)
                template = self._checked(rendered, default_name, step, account)
                if len(_templates) >= _TEMPLATES_KEPT:
                    _templates.clear()
                _templates[key] = template
        return template

    def _checked(
        self, rendered: Rendered, default_name: str, step: int, account: LegacyAccount
    ) -> _Template:
        subject = rendered.subject
        if "\r" in subject or "\n" in subject:
            return _Template(data=None)
        message = EmailMultiAlternatives(
            subject=_MARKS["subject"],
            body=rendered.text,
            from_email=self.from_email,
            to=[_MARKS["to"]],
            headers={
                "Date": _MARKS["date"],
                "Message-ID": _MARKS["message_id"],
                "List-Unsubscribe": _MARKS["list_unsubscribe"],
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                "Content-Language": rendered.language,
            },
        )
        message.attach_alternative(rendered.html, "text/html")
        mime = message.message()
        if any(
            part.get("Content-Transfer-Encoding", "7bit") not in ("7bit", "8bit")
            for part in mime.walk()
            if not part.is_multipart()
        ):
            return _Template(data=None)  # markers inside encoded text cannot be replaced
        data = mime.as_bytes(linesep="\r\n")
        body = data.partition(b"\r\n\r\n")[2]
        lines = []  # body lines with personal values: their length without them, counts
        for line in body.split(b"\r\n"):
            counts = tuple(line.count(_MARKS[name].encode()) for name in _PERSONAL)
            if any(counts):
                bare = len(line) - sum(
                    count * len(_MARKS[name]) for name, count in zip(_PERSONAL, counts, strict=True)
                )
                lines.append((bare, counts))
        template = _Template(data=data, subject=subject, default_name=default_name, lines=lines)
        # The proof: for sample values, the template gives what build_message gives.
        sample_account = LegacyAccount(
            service=account.service,
            name="見本 花子",
            external_id="SAMPLE0042",
            attributes={"language": rendered.language},
        )
        sample = Delivery(pk=1, campaign_id=self.campaign.pk, step=step, email="sample@example.jp")
        sample_link = "Sample-link_0123456789"
        expected = build_message(self.campaign, sample, sample_account, token=sample_link)
        to = sanitize_address(sample.email, self.encoding)
        filled = self._fill(
            template,
            sample,
            {
                "name": sample_account.name.encode(),
                "member_number": sample_account.masked_external_id.encode(),
                "token": sample_link.encode(),
                "code": unsubscribe_code(sample.pk).encode(),
            },
            to,
        )
        if _digest(filled) != _digest(expected.message().as_bytes(linesep="\r\n")):
            return _Template(data=None)
        return template
