"""Celery tasks of the accounts app: the one mail path, and rate-limit housekeeping.
The tasks of the units above (accounts.deletion, accounts.oidc_provider,
accounts.oidc_logout) live in their modules; AccountsConfig.ready imports them."""

from urllib.parse import urlsplit

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMessage, EmailMultiAlternatives, make_msgid
from django.db import transaction

from accounts.limits import database as limits_database


@shared_task(name="accounts.delete_ended_rate_limits")
def delete_ended_rate_limits() -> int:
    """Beat, hourly: rate-limit counts of ended windows, when they live in the database."""
    return limits_database.delete_ended()


def send_after_commit(message: EmailMessage) -> None:
    """Hand a rendered mail to a worker once the current transaction commits (at
    once outside one). If the broker refuses it, the error is logged, and the request
    that sent it still answers."""
    message.extra_headers.setdefault(
        "Message-ID", make_msgid(domain=urlsplit(settings.SITE_URL).hostname)
    )
    fields = {
        "subject": message.subject,
        "body": message.body,
        "from_email": message.from_email,
        "to": message.to,
        "cc": message.cc,
        "bcc": message.bcc,
        "reply_to": message.reply_to,
        "headers": message.extra_headers,
        "alternatives": [list(alternative) for alternative in getattr(message, "alternatives", [])],
        "content_subtype": message.content_subtype,
    }
    transaction.on_commit(send_email.si(fields).delay, robust=True)


@shared_task(
    name="accounts.send_email",
    autoretry_for=(OSError,),  # smtplib's errors are OSErrors too
    retry_backoff=10,
    retry_backoff_max=15 * 60,
    retry_jitter=True,
    max_retries=8,
)
def send_email(fields: dict) -> None:
    """Retried with growing pauses (10 s up to 15 min, about 35 min in all) while the
    mail server fails. Every try carries the same Message-ID, so a receiver can drop
    the rare repeat of a send whose success was not acknowledged."""
    fields = dict(fields)
    content_subtype = fields.pop("content_subtype")
    alternatives = [tuple(alternative) for alternative in fields.pop("alternatives")]
    message = EmailMultiAlternatives(**fields, alternatives=alternatives)
    message.content_subtype = content_subtype
    message.send()
