"""Find customers and legacy accounts by any identifier staff are given."""

from dataclasses import dataclass, field

from allauth.account.models import EmailAddress
from django.db.models import Q

from accounts import unified_id
from accounts.models import Customer
from linking import normalize
from linking.models import LegacyAccount, LegacyService

LIMIT = 50


@dataclass
class Results:
    customers: list[Customer] = field(default_factory=list)
    accounts: list[LegacyAccount] = field(default_factory=list)


def search(query: str, *, service: LegacyService | None = None) -> Results:
    """Unified ID, email, phone, external ID (within a service when given) or name,
    each compared in its normalized form; a fixed number of queries."""
    query = (query or "").strip()[:200]
    if not query:
        return Results()
    customer_q = Q(pk__in=[])
    account_q = Q(pk__in=[])

    if unified_id.is_valid(query):
        customer_q |= Q(unified_id=unified_id.normalize(query))
    if "@" in query:
        email = normalize.normalize_email(query)
        customer_q |= Q(email=email) | Q(
            pk__in=EmailAddress.objects.filter(email__iexact=email).values("user_id")
        )
        account_q |= Q(email_key=email)
    else:
        phone = normalize.normalize_phone(query)
        if phone:
            account_q |= Q(phone_key=phone)
        name = normalize.normalize_name(query)
        if name:
            account_q |= Q(name_key=name)
            customer_q |= Q(name__iexact=query)
    external = Q(external_id=query)
    account_q |= external & Q(service=service) if service else external

    accounts = (
        LegacyAccount.objects.filter(account_q)
        .select_related("service", "owner")
        .order_by("service__code", "external_id")[:LIMIT]
    )
    customers = Customer.objects.filter(customer_q).order_by("pk")[:LIMIT]
    return Results(customers=list(customers), accounts=list(accounts))
