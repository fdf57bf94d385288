"""Read mail sent back to campaigns: delivery status notifications (bounces) and
unsubscribe requests sent to the List-Unsubscribe mailto address.

    manage.py read_campaign_mail FILE.eml [FILE ...]   # or a Maildir's cur/ files
    some-mta-pipe | manage.py read_campaign_mail -      # one message on stdin
"""

import email
import email.policy
import sys
from pathlib import Path

from django.core.management.base import BaseCommand

from linking.campaigns import bounces, content, unsubscribe
from linking.campaigns.models import Delivery


class Command(BaseCommand):
    help = "Suppress hard-bounced addresses (DSN) and process unsubscribe mail."

    def add_arguments(self, parser) -> None:
        parser.add_argument("paths", nargs="+", help="message files, or - for stdin")

    def handle(self, *args, paths: list[str], **options) -> None:
        suppressed = unsubscribed = ignored = 0
        for path in paths:
            raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
            found = bounces.parse_dsn(raw)
            if found:
                suppressed += sum(bounces.record(bounce) for bounce in found)
            elif _unsubscribe_request(raw):
                unsubscribed += 1
            else:
                ignored += 1
        self.stdout.write(
            f"suppressed {suppressed} bounced, {unsubscribed} unsubscribed, ignored {ignored}"
        )


def _unsubscribe_request(raw: bytes) -> bool:
    """A mail whose subject is "unsubscribe <code>", as the mailto link writes it."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    words = str(message.get("Subject", "")).split()
    if len(words) != 2 or words[0].lower() != "unsubscribe":
        return False
    delivery_id = content.delivery_id_from_unsubscribe_code(words[1])
    delivery = Delivery.objects.filter(pk=delivery_id).first() if delivery_id else None
    if delivery is None:
        return False
    unsubscribe.unsubscribe(delivery, detail="mailto")
    return True
