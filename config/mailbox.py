"""A development mailbox: each sent message is one .eml file, listed at /mailbox/."""

import email
import email.policy
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.message import EmailMessage

# Japanese mail glues URLs to the text around them ("、http://...にアクセス"), which
# Django's urlize does not link; the mailbox lists each message's links instead.
_LINK = re.compile(r"https?://[^\s<>\"'、。「」（）]+")


class MailboxBackend(BaseEmailBackend):
    def send_messages(self, email_messages: list[EmailMessage]) -> int:
        folder = Path(settings.MAILBOX_DIR)
        for message in email_messages:
            self.write(folder, message.message().as_bytes())
        return len(email_messages)

    @staticmethod
    def write(folder: Path, raw: bytes) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        path = folder / f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
        path.write_bytes(raw)
        return path


def read_messages(limit: int = 100) -> list[dict]:
    """The newest messages first, parsed for display."""
    folder = Path(settings.MAILBOX_DIR)
    if not folder.is_dir():
        return []
    messages = []
    for path in sorted(folder.glob("*.eml"), reverse=True)[:limit]:
        parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        body = parsed.get_body(preferencelist=("plain", "html"))
        text = body.get_content() if body else ""
        messages.append(
            {
                "id": path.stem,
                "to": parsed["To"],
                "subject": parsed["Subject"],
                "date": parsed["Date"],
                "body": text,
                "links": list(dict.fromkeys(_LINK.findall(text))),
            }
        )
    return messages
