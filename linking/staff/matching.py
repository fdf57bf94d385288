"""Company-side matching (名寄せ): legacy accounts at different services that share a
normalized email, phone, or name plus birth date. A report for staff; it never
links anything: only the customer's proof, or staff with a recorded reason, does."""

from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.db.models import Count, F, QuerySet, Sum

from linking.models import LegacyAccount
from linking.normalize import EXACT_RULES


@dataclass
class Group:
    key: tuple
    accounts: int
    services: int
    members: list[LegacyAccount] = field(default_factory=list)

    @property
    def campaign_query(self) -> str:
        """Initial values for a new campaign that invites this group's unlinked
        accounts to link (the admin's add form reads them from the query string)."""
        unlinked = [account for account in self.members if account.owner_id is None]
        return urlencode(
            {
                "services": ",".join(sorted({str(account.service_id) for account in unlinked})),
                "accounts": ",".join(str(account.pk) for account in unlinked),
            }
        )


def _grouped(rule: str) -> QuerySet:
    """GROUP BY the rule's keys HAVING COUNT(DISTINCT service) > 1; blank keys never match."""
    keys = EXACT_RULES[rule]
    accounts = LegacyAccount.objects.order_by()
    for key in keys:
        accounts = (
            accounts.exclude(**{key: ""})
            if key != "birth_date"
            else accounts.filter(birth_date__isnull=False)
        )
    return (
        accounts.values(*keys)
        .annotate(members=Count("pk"), services=Count("service", distinct=True))
        .filter(services__gt=1)
    )


def summary() -> dict[str, dict[str, int]]:
    """Per rule: how many groups, and how many accounts they hold."""
    result = {}
    for rule in EXACT_RULES:
        totals = _grouped(rule).aggregate(groups=Count("*"), accounts=Sum("members"))
        result[rule] = {"groups": totals["groups"] or 0, "accounts": totals["accounts"] or 0}
    return result


def groups(rule: str, *, limit: int = 50, offset: int = 0) -> list[Group]:
    """The largest groups of one rule, with their accounts (two queries)."""
    keys = EXACT_RULES[rule]
    rows = list(
        _grouped(rule)
        .order_by("-members", *keys)[offset : offset + limit]
        .values_list(*keys, "members", "services")
    )
    found = {row[: len(keys)]: Group(row[: len(keys)], row[-2], row[-1]) for row in rows}
    if not found:
        return []
    lead = keys[0]
    members = (
        LegacyAccount.objects.filter(**{f"{lead}__in": {key[0] for key in found}})
        .select_related("service", "owner")
        .order_by(*keys, F("service__code"), "external_id")
    )
    for account in members:
        group = found.get(tuple(getattr(account, key) for key in keys))
        if group is not None:
            group.members.append(account)
    return list(found.values())
