"""SMS sending behind one function. SMS_BACKEND names a class with
send(phone: str, text: str); the default writes each SMS to the development
mailbox, so it can be read at /mailbox/ like mail."""

from email.message import EmailMessage
from pathlib import Path

from django.conf import settings
from django.utils.module_loading import import_string

from config.mailbox import MailboxBackend


class MailboxSmsBackend:
    def send(self, phone: str, text: str) -> None:
        message = EmailMessage()
        message["To"] = f"{phone}@sms.invalid"
        message["From"] = "sms"
        message["Subject"] = f"SMS to {phone}"
        message.set_content(text)
        MailboxBackend.write(Path(settings.MAILBOX_DIR), message.as_bytes())


def send_sms(phone: str, text: str) -> None:
    import_string(settings.SMS_BACKEND)().send(phone, text)
