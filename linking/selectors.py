"""Reads for the link center: what a customer has linked and what may be theirs."""

from dataclasses import dataclass, field

from django.db.models import Q, QuerySet
from django.dispatch import Signal

from linking.models import LegacyAccount, LegacyService
from linking.proofs.email_match import verified_email_keys

# Sent by the link center (sender None, customer=...): receivers return legacy
# accounts that may also be the customer's. The matching app answers with the
# unlinked accounts of confirmed groups; each still needs its own proof.
also_yours = Signal()


@dataclass
class ServiceRow:
    service: LegacyService
    linked: list[LegacyAccount] = field(default_factory=list)
    suggestions: list[LegacyAccount] = field(default_factory=list)
    # From a confirmed 名寄せ group (linking.matching): linked only by a proof at the service.
    also_yours: list[LegacyAccount] = field(default_factory=list)


def linked_accounts(customer) -> QuerySet[LegacyAccount]:
    return (
        LegacyAccount.objects.filter(owner=customer)
        .select_related("service")
        .order_by("service__code", "linked_at")
    )


def suggestions(customer) -> QuerySet[LegacyAccount]:
    """Unlinked accounts that carry one of the customer's verified emails. Only
    masked hints of them are ever shown."""
    keys = verified_email_keys(customer)
    if not keys:
        return LegacyAccount.objects.none()
    return (
        LegacyAccount.objects.filter(Q(email_key__in=keys), owner__isnull=True)
        .select_related("service")
        .order_by("service__code", "external_id")
    )


def link_center(customer) -> tuple[list[ServiceRow], int]:
    """One row per service with the customer's linked accounts and suggestions, and
    the combined points. A fixed number of queries, whatever the number of links."""
    rows = {service.pk: ServiceRow(service) for service in LegacyService.objects.all()}
    total_points = 0
    for account in linked_accounts(customer):
        rows[account.service_id].linked.append(account)
        total_points += account.points
    suggested = set()
    for account in suggestions(customer)[:50]:
        rows[account.service_id].suggestions.append(account)
        suggested.add(account.pk)
    for _receiver, accounts in also_yours.send(sender=None, customer=customer):
        for account in accounts[:50]:
            if account.pk not in suggested:
                rows[account.service_id].also_yours.append(account)
    return list(rows.values()), total_points
