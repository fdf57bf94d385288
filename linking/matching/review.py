"""Staff review of candidate groups, and the suggestions confirmed groups make."""

from django.db import transaction
from django.db.models import QuerySet
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from linking.matching.models import CandidateGroup, CandidateMember
from linking.models import LegacyAccount
from linking.selectors import also_yours

DECISIONS = {
    "confirm": _("Confirmed as probably the same person."),
    "dismiss": _("Dismissed."),
}
FIELD_LABELS = {
    "name_key": _("Name (kanji)"),
    "surname_kana": _("Surname (kana)"),
    "given_kana": _("Given name (kana)"),
    "email": _("Email"),
    "phone": _("Phone"),
    "birth": _("Birth date"),
    "postal": _("Postal code / prefecture"),
}


@transaction.atomic
def decide(group: CandidateGroup, decision: str, user) -> None:
    group.status = (
        CandidateGroup.Status.CONFIRMED
        if decision == "confirm"
        else CandidateGroup.Status.DISMISSED
    )
    group.reviewed_by, group.reviewed_at = user, timezone.now()
    group.save(update_fields=["status", "reviewed_by", "reviewed_at"])


def accounts(group: CandidateGroup) -> list[LegacyAccount]:
    return list(
        LegacyAccount.objects.filter(pk__in=group.members.values("account_id"))
        .select_related("service", "owner")
        .order_by("service__code", "external_id")
    )


def evidence_rows(group: CandidateGroup) -> list[dict]:
    """One row per scored link: the two accounts, the probability, each field's
    match weight (positive: for the same person, negative: against)."""
    rows = []
    for link in group.evidence:
        weights = [(FIELD_LABELS.get(k, k), v) for k, v in link["weights"].items()]
        rows.append({"a": link["a"], "b": link["b"], "p": link["probability"], "weights": weights})
    return rows


def suggested_accounts(customer) -> QuerySet[LegacyAccount]:
    """Unlinked accounts in a confirmed group that holds one of the customer's
    linked accounts: "these may also be yours". Each still needs its own proof."""
    confirmed = CandidateMember.objects.filter(group__status=CandidateGroup.Status.CONFIRMED)
    groups = confirmed.filter(account__owner=customer).values("group_id")
    return (
        LegacyAccount.objects.filter(
            pk__in=confirmed.filter(group_id__in=groups).values("account_id"),
            owner__isnull=True,
        )
        .select_related("service")
        .order_by("service__code", "external_id")
    )


@receiver(also_yours)
def _confirmed_groups(sender, customer, **kwargs) -> QuerySet[LegacyAccount]:
    return suggested_accounts(customer)
