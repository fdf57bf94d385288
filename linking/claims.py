"""Linking and unlinking: the only code that changes LegacyAccount.owner.

A claim is one conditional UPDATE ... WHERE owner_id IS NULL, so of any number of
concurrent claims exactly one changes a row; the others see zero rows updated and
get AccountTaken, with an audit entry whose reference the customer can quote.
"""

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts import audit
from accounts.audit import ActorKind, AuditEvent
from linking.models import LegacyAccount, LinkEvent


class AccountTaken(Exception):
    """The legacy account is linked to another unified ID."""

    def __init__(self, reference: str) -> None:
        super().__init__(reference)
        self.reference = reference


def link(
    *,
    account: LegacyAccount,
    customer,
    proof: str,
    request: HttpRequest | None,
    actor=None,
    actor_kind: str = ActorKind.CUSTOMER,
    campaign_id: int | None = None,
    reason: str = "",
) -> bool:
    """Attach the account to the customer. True if linked now, False if it already
    was theirs; AccountTaken if it belongs to someone else."""
    with transaction.atomic():
        now = timezone.now()
        claimed = LegacyAccount.objects.filter(pk=account.pk, owner__isnull=True).update(
            owner=customer, linked_at=now, updated_at=now
        )
        if claimed:
            _record(
                LinkEvent.Action.LINK,
                account=account,
                customer=customer,
                proof=proof,
                request=request,
                actor=actor,
                actor_kind=actor_kind,
                campaign_id=campaign_id,
                reason=reason,
            )
            account.owner, account.linked_at = customer, now
            return True
    owner_id = LegacyAccount.objects.filter(pk=account.pk).values_list("owner_id", flat=True).get()
    if owner_id == customer.pk:
        return False
    event = audit.record(
        AuditEvent.Action.LINK_CONFLICT,
        request=request,
        customer=customer,
        account=account,
        method=proof,
        actor=actor,
        actor_kind=actor_kind,
        reason="owned by another unified ID",
    )
    raise AccountTaken(event.reference)


def unlink(
    *,
    account: LegacyAccount,
    customer,
    request: HttpRequest | None,
    actor=None,
    actor_kind: str = ActorKind.CUSTOMER,
    reason: str = "",
) -> bool:
    """Release the account from the customer. False if it was not theirs."""
    with transaction.atomic():
        released = LegacyAccount.objects.filter(pk=account.pk, owner=customer).update(
            owner=None, linked_at=None, updated_at=timezone.now()
        )
        if not released:
            return False
        _record(
            LinkEvent.Action.UNLINK,
            account=account,
            customer=customer,
            proof="",
            request=request,
            actor=actor,
            actor_kind=actor_kind,
            campaign_id=None,
            reason=reason,
        )
    account.owner, account.linked_at = None, None
    return True


def _record(
    action: str,
    *,
    account: LegacyAccount,
    customer,
    proof: str,
    request: HttpRequest | None,
    actor,
    actor_kind: str,
    campaign_id: int | None,
    reason: str,
) -> None:
    """The history row and the audit entry of one change, in the transaction that
    made it."""
    LinkEvent.objects.create(
        account=account,
        customer=customer,
        customer_unified_id=customer.unified_id,
        action=action,
        proof=proof,
        actor_kind=actor_kind,
        actor=actor or customer,
        campaign_id=campaign_id,
        ip=audit.client_ip(request),
        user_agent=audit.user_agent(request),
        reason=reason,
    )
    linked = action == LinkEvent.Action.LINK
    audit.record(
        AuditEvent.Action.LINKED if linked else AuditEvent.Action.UNLINKED,
        request=request,
        customer=customer,
        account=account,
        method=proof,
        actor=actor,
        actor_kind=actor_kind,
        reason=reason,
        data={"campaign_id": campaign_id} if campaign_id else None,
    )
    # Saving the event also writes the webhook outbox rows (linking.api.outbox).
