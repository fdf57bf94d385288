"""An address that is not confirmed belongs to nobody: it blocks no sign-up, gets no
password reset and proves nothing; once someone proves the mailbox (a confirmation
link, a trusted IdP's email_verified) every other account's unconfirmed copy goes,
and sign-ups that never confirmed expire (docs/security.md, "Pre-account hijacking").
"""

from datetime import timedelta

from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from accounts import audit
from accounts.audit import ActorKind
from accounts.deletion import delete_customer
from accounts.models import Customer
from linking.models import LegacyAccount

RELEASED = "email_released"
RELEASED_REASON = "another account proved the mailbox of an address this one never confirmed"
EXPIRED_REASON = "sign-up never confirmed"


def is_taken(email: str, *, besides: Customer | None = None) -> bool:
    """Confirmed by an account, or the email of an account made outside allauth
    (createsuperuser, the admin) that has no address record for it."""
    email = email.lower()
    confirmed = EmailAddress.objects.filter(email=email, verified=True)
    bare = Customer.objects.filter(email=email).exclude(emailaddress__email=email)
    if besides is not None:
        confirmed, bare = confirmed.exclude(user=besides), bare.exclude(pk=besides.pk)
    return confirmed.exists() or bare.exists()


def needs_owners_session(address: EmailAddress) -> bool:
    """Can the link alone not tell whose address this is? So for a new address of an
    account that has a confirmed one, and for one other accounts hold unconfirmed too:
    then only the account's own browser confirms it."""
    mine = EmailAddress.objects.filter(user_id=address.user_id, verified=True)
    others = EmailAddress.objects.filter(email=address.email, verified=False)
    return mine.exclude(pk=address.pk).exists() or others.exclude(user_id=address.user_id).exists()


def confirmed_holder_ids(email: str) -> set[int]:
    rows = EmailAddress.objects.filter(email=email.lower(), verified=True)
    return set(rows.values_list("user_id", flat=True))


def free_for_signup(email: str) -> None:
    """An account keeps an unconfirmed address as its own email field too; a newcomer
    signing up with it takes that field (the unconfirmed record stays, so whoever
    confirms first still can)."""
    email = email.lower()
    Customer.objects.filter(
        email=email, emailaddress__email=email, emailaddress__verified=False
    ).update(email=None)


def release(email: str, *, keep: Customer | None) -> int:
    """Remove every unconfirmed copy of the address held by an account other than
    keep, which has just proved the mailbox; each such account's trail says so."""
    copies = EmailAddress.objects.filter(email=email.lower(), verified=False)
    if keep is not None and keep.pk is not None:
        copies = copies.exclude(user=keep)
    released = 0
    for copy in copies.select_related("user"):
        copy.remove()
        audit.record(
            RELEASED,
            request=None,
            customer=copy.user,
            actor_kind=ActorKind.SYSTEM,
            method="email",
            reason=RELEASED_REASON,
        )
        released += 1
    return released


def unconfirmed_signups(before) -> QuerySet[Customer]:
    """Customers who joined before `before` by email and never confirmed an address:
    no confirmed address, no IdP, never signed in, not staff, nothing linked. An
    account whose email has no address record was made outside allauth and stays."""
    user = OuterRef("pk")
    return Customer.objects.filter(
        Q(email__isnull=True)
        | Exists(EmailAddress.objects.filter(user=user, email=OuterRef("email"))),
        date_joined__lt=before,
        last_login__isnull=True,
        is_staff=False,
        is_superuser=False,
    ).exclude(
        Exists(EmailAddress.objects.filter(user=user, verified=True))
        | Exists(SocialAccount.objects.filter(user=user))
        | Exists(LegacyAccount.objects.filter(owner=user))
    )


def expire_unconfirmed_signups(days: int) -> int:
    """Delete the sign-ups that stayed unconfirmed for `days` days (0: never), each
    checked again under a lock so one confirmed meanwhile stays."""
    if days <= 0:
        return 0
    before = timezone.now() - timedelta(days=days)
    deleted = 0
    for pk in list(unconfirmed_signups(before).values_list("pk", flat=True)[:1000]):
        with transaction.atomic():
            customer = Customer.objects.select_for_update().filter(pk=pk).first()
            if customer is None or not unconfirmed_signups(before).filter(pk=pk).exists():
                continue
            delete_customer(customer=customer, reason=EXPIRED_REASON, actor_kind=ActorKind.SYSTEM)
            deleted += 1
    return deleted
