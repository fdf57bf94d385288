"""Who may receive marketing email: the audience rule that campaigns apply, over
the customer's own consent and the legacy accounts they own."""

from django.db.models import Exists, OuterRef, Q

from accounts.models import Customer
from linking.models import LegacyAccount


def marketing_allowed(email_key: OuterRef) -> Q:
    """For campaign audiences: false where the address belongs to a customer who said
    no to marketing email, as their sign-in email or on a legacy account they own.
    Two NOT EXISTS joined by AND, so PostgreSQL plans each as one anti-join for the
    whole audience, not a sub-query per row."""
    by_sign_in_email = Customer.objects.filter(marketing_email_consent=False, email=email_key)
    # Never blank (so the partial index on email_key serves a lookup per address).
    by_owned_record = LegacyAccount.objects.filter(
        owner__marketing_email_consent=False, email_key=email_key
    ).exclude(email_key="")
    return ~Q(Exists(by_sign_in_email)) & ~Q(Exists(by_owned_record))
