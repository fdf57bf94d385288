"""Find customers and legacy accounts by any identifier staff are given."""

import unicodedata
from dataclasses import dataclass, field

from allauth.account.models import EmailAddress
from django.db.models import Q

from accounts import keys, unified_id
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
    each compared in its normalized form (full-width digits, spaces and kana in
    any width count as the same); a fixed number of queries."""
    raw = (query or "").strip()[:200]
    query = unicodedata.normalize("NFKC", raw).strip()
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
        names = name_variants(raw)
        if names:
            account_q |= Q(name_key__in={normalize.normalize_name(n) for n in names})
            account_q |= Q(kana_spaceless__in=names) & ~Q(name_kana="")
            customer_q |= Q(name_spaceless__in=names) & ~Q(name="")
    external = Q(external_id__in={raw, query})
    account_q |= external & Q(service=service) if service else external

    accounts = (
        LegacyAccount.objects.alias(kana_spaceless=keys.spaceless("name_kana"))
        .filter(account_q)
        .select_related("service", "owner")
        .order_by("service__code", "external_id")[:LIMIT]
    )
    customers = (
        Customer.objects.alias(name_spaceless=keys.spaceless("name"))
        .filter(customer_q)
        .order_by("pk")[:LIMIT]
    )
    return Results(customers=list(customers), accounts=list(accounts))


def name_variants(value: str) -> set[str]:
    """The forms a name may be stored in, as keys.spaceless() leaves them: as typed
    and in NFKC, and for kana also in hiragana, katakana and half-width katakana."""
    typed = "".join(value.split()).lower()
    wide = "".join(unicodedata.normalize("NFKC", value).split()).lower()
    variants = {typed, wide}
    hiragana = normalize.normalize_kana(value)
    if any(_is_kana(c) for c in hiragana):
        katakana = hiragana.translate(_HIRAGANA_TO_KATAKANA)
        variants |= {hiragana, katakana, katakana.translate(_KATAKANA_TO_HALF_WIDTH)}
    return {v for v in variants if v}


def _is_kana(char: str) -> bool:
    return "\u3041" <= char <= "\u30ff"


_HIRAGANA_TO_KATAKANA = {cp: cp + 0x60 for cp in range(0x3041, 0x3097)}


def _half_width_katakana() -> dict[int, str]:
    """Full-width katakana to the half-width forms NFKC widens (ｶﾞ for ガ)."""
    table = {}
    for cp in range(0xFF61, 0xFF9E):
        half = chr(cp)
        for form in (half, half + "\uff9e", half + "\uff9f"):
            wide = unicodedata.normalize("NFKC", form)
            if len(wide) == 1 and _is_kana(wide):
                table.setdefault(ord(wide), form)
    return table


_KATAKANA_TO_HALF_WIDTH = _half_width_katakana()
