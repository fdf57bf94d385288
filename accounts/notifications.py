"""Security notifications by email: a legacy account linked or unlinked, and the
second factor changed. Changes of password, email address and sign-in method are
mailed by allauth itself (ACCOUNT_EMAIL_NOTIFICATIONS).

Mail goes out after the change commits, to the customer's primary email address;
a customer who signed up through an IdP that gave no email gets none.
"""

from types import SimpleNamespace
from urllib.parse import urlsplit

from allauth.account.adapter import get_adapter
from allauth.account.models import EmailAddress
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts import audit
from accounts.models import Customer
from accounts.tasks import send_after_commit

MFA_CHANGES = {
    "totp_added": _("An authenticator app was added as a second factor."),
    "totp_removed": _("The authenticator app was removed as a second factor."),
    "passkey_added": _("A passkey was added."),
    "passkey_removed": _("A passkey was removed."),
    "backup_codes_generated": _("New backup codes were generated; the old ones no longer work."),
}


def notify_mfa_changed(
    customer: Customer, *, change: str, request: HttpRequest | None = None
) -> None:
    """For the MFA flows: call after enrolling or removing a factor (change is a key
    of MFA_CHANGES). Mails after commit."""
    send_on_commit(
        customer.pk,
        "accounts/email/mfa_changed",
        {
            "change": MFA_CHANGES[change],
            "ip": audit.client_ip(request) or "-",
            "user_agent": audit.user_agent(request) or "-",
        },
    )


def send_on_commit(customer_pk: int, template_prefix: str, context: dict) -> None:
    """Mail the customer (primary confirmed address) once the transaction commits."""
    transaction.on_commit(lambda: _send(customer_pk, template_prefix, context))


def _send(customer_pk: int, template_prefix: str, context: dict) -> None:
    customer = Customer.objects.filter(pk=customer_pk).first()
    if customer is None:  # deleted in the same transaction: nobody left to tell
        return
    address = EmailAddress.objects.filter(user=customer, primary=True, verified=True).first()
    if address is None:
        return
    mail(template_prefix, address.email, {"customer": customer, **context})


def mail(template_prefix: str, email: str, context: dict) -> None:
    """Render one of allauth's mail templates and hand it to the mail task, as
    allauth's own mails go (accounts.tasks). Works outside a request too."""
    site = SimpleNamespace(name=gettext("Unified ID"), domain=urlsplit(settings.SITE_URL).netloc)
    context = {"current_site": site, "email": email, "timestamp": timezone.now(), **context}
    send_after_commit(get_adapter().render_mail(template_prefix, email, context))
