"""An address that is not confirmed belongs to nobody: it blocks no sign-up, gets no
password reset and proves nothing; once someone proves the mailbox (a confirmation
link, a trusted IdP's email_verified) every other account's unconfirmed copy goes,
and sign-ups that never confirmed expire (accounts.deletion; docs/security.md,
"Pre-account hijacking").
"""

from allauth.account.models import EmailAddress

from accounts import audit
from accounts.audit import ActorKind
from accounts.models import Customer

RELEASED = "email_released"
RELEASED_REASON = "another account proved the mailbox of an address this one never confirmed"


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
