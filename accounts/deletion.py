"""Account deletion at the customer's request (or of an expired sign-up): what goes
and what stays, and why, is in docs/security.md ("Consent, export and deletion").
History is kept under the unified ID alone; this is the one place that rewrites it
(erase_personal_data_from_history)."""

import json
from datetime import timedelta

from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from allauth.usersessions.models import UserSession
from celery import shared_task
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from accounts import audit, notifications
from accounts.audit import ActorKind, AuditEvent
from accounts.models import Customer, IssuedUnifiedID
from linking import claims
from linking.api.outbox import emit_account_deleted
from linking.campaigns.models import Delivery
from linking.line.account_link import unlink as line_unlink
from linking.models import LegacyAccount, LinkEvent

REASON = "unified ID deleted at the customer's request"
EXPIRED_REASON = "sign-up never confirmed"
ERASED = "[erased]"


def delete_customer(
    *, customer: Customer, reason: str = REASON, actor_kind: str = ActorKind.CUSTOMER
) -> None:
    """Delete the customer as docs/security.md describes, in one transaction. Expired sign-ups
    (accounts.addresses) go the same way, with their own reason, by the system."""
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        unified_id = customer.unified_id
        goodbye_to = _primary_email(customer)
        identifiers = _identifiers(customer)

        emit_account_deleted(customer)
        released = list(LegacyAccount.objects.filter(owner=customer))
        for account in released:
            claims.unlink(
                account=account,
                customer=customer,
                request=None,
                actor_kind=ActorKind.SYSTEM,
                reason=reason,
            )
        _erase_legacy_copies([account.pk for account in released])
        line_unlink(customer=customer, request=None, reason=reason, actor_kind=ActorKind.SYSTEM)

        for session in UserSession.objects.filter(user=customer):
            session.end()
        _scrub_admin_log(customer, unified_id, identifiers)
        erase_personal_data_from_history(customer, identifiers)

        IssuedUnifiedID.objects.filter(pk=unified_id).update(retired_at=timezone.now())
        audit.record(
            "customer_deleted",
            request=None,
            customer=customer,
            actor=None,
            actor_kind=actor_kind,
            reason=reason,
        )
        EmailAddress.objects.filter(user=customer).delete()
        SocialAccount.objects.filter(user=customer).delete()
        customer.delete()
        if goodbye_to:
            transaction.on_commit(lambda: _say_goodbye(goodbye_to, unified_id))


def erase_personal_data_from_history(customer: Customer, identifiers: list[str]) -> int:
    """The one sanctioned rewrite of the append-only history (LinkEvent, AuditEvent):
    on the rows of a customer being deleted, erase the IP address and user agent
    and cut their identifiers (email, name, phone) out of reasons and data. It uses
    the plain QuerySet on purpose: the append-only managers refuse every update,
    and they keep doing so for all other code. Returns the number of rows changed."""
    changed = 0
    for model in (LinkEvent, AuditEvent):
        rows = models.QuerySet(model=model).filter(
            models.Q(customer=customer) | models.Q(actor=customer)
        )
        changed += rows.update(ip=None, user_agent="")
        for row in rows.exclude(reason="").only("pk", "reason"):
            scrubbed = _cut(row.reason, identifiers)
            if scrubbed != row.reason:
                models.QuerySet(model=model).filter(pk=row.pk).update(reason=scrubbed)
        if model is AuditEvent:
            for row in rows.exclude(data={}).only("pk", "data"):
                text = json.dumps(row.data, ensure_ascii=False)
                scrubbed = _cut(text, identifiers)
                if scrubbed != text:
                    models.QuerySet(model=model).filter(pk=row.pk).update(data=json.loads(scrubbed))
    return changed


def _identifiers(customer: Customer) -> list[str]:
    """Strings that identify the customer: their emails, name, and the email, name
    and phone on the legacy accounts they own."""
    values = {customer.email or "", customer.name}
    values.update(EmailAddress.objects.filter(user=customer).values_list("email", flat=True))
    for email, phone, name, kana in LegacyAccount.objects.filter(owner=customer).values_list(
        "email", "phone", "name", "name_kana"
    ):
        values.update({email, phone, name, kana})
    # Longest first, so "山田 花子" is cut before "山田".
    return sorted((v for v in values if v and len(v) >= 2), key=len, reverse=True)


def _cut(text: str, identifiers: list[str]) -> str:
    for value in identifiers:
        text = text.replace(value, ERASED)
    return text


def _erase_legacy_copies(account_ids: list[int]) -> None:
    LegacyAccount.objects.filter(pk__in=account_ids).update(
        email="",
        phone="",
        name="",
        name_kana="",
        birth_date=None,
        password_hash="",
        attributes={},
        email_key="",
        phone_key="",
        name_key="",
        row_hash="",  # the next import of the service's record rewrites the row
        updated_at=timezone.now(),
    )
    Delivery.objects.filter(account_id__in=account_ids).update(email="", email_key="")


def _scrub_admin_log(customer: Customer, unified_id: str, identifiers: list[str]) -> None:
    targets = [
        (Customer, [customer.pk]),
        (
            EmailAddress,
            list(EmailAddress.objects.filter(user=customer).values_list("pk", flat=True)),
        ),
        (
            SocialAccount,
            list(SocialAccount.objects.filter(user=customer).values_list("pk", flat=True)),
        ),
    ]
    for model, pks in targets:
        entries = LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(model),
            object_id__in=[str(pk) for pk in pks],
        )
        for entry in entries.only("pk", "change_message"):
            entries.filter(pk=entry.pk).update(
                object_repr=unified_id, change_message=_cut(entry.change_message, identifiers)
            )


def _primary_email(customer: Customer) -> str | None:
    address = EmailAddress.objects.filter(user=customer, primary=True, verified=True).first()
    return address.email if address else None


def _say_goodbye(email: str, unified_id: str) -> None:
    notifications.mail("accounts/email/account_deleted", email, {"unified_id": unified_id})


# Sign-ups never confirmed (docs/security.md, "Pre-account hijacking") ---------------


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


def expire_unconfirmed(days: int) -> int:
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


@shared_task(name="accounts.expire_unconfirmed_signups")
def expire_unconfirmed_signups() -> int:
    """Beat, hourly: sign-ups never confirmed within UNCONFIRMED_SIGNUP_EXPIRY_DAYS go."""
    return expire_unconfirmed(settings.UNCONFIRMED_SIGNUP_EXPIRY_DAYS)
