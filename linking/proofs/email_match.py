"""Proof by a verified email: where a service allows it, a legacy account whose
normalized email equals an address this site has verified for the customer is
linked with one confirmation."""

from allauth.account.models import EmailAddress
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from accounts import audit
from accounts.audit import AuditEvent
from linking import claims, normalize
from linking.models import LegacyAccount, Proof
from linking.proofs import ProofRefused


def verified_email_keys(customer) -> set[str]:
    emails = EmailAddress.objects.filter(user=customer, verified=True).values_list(
        "email", flat=True
    )
    return {key for key in map(normalize.normalize_email, emails) if key}


def link_by_email_match(*, customer, account: LegacyAccount, request: HttpRequest) -> None:
    if not account.service.accepts(Proof.EMAIL_MATCH):
        reason = "service does not accept email match"
    elif not account.email_key or account.email_key not in verified_email_keys(customer):
        reason = "email not verified for this customer"
    else:
        audit.record(
            AuditEvent.Action.PROOF_SUCCEEDED,
            request=request,
            customer=customer,
            account=account,
            method=Proof.EMAIL_MATCH,
        )
        claims.link(account=account, customer=customer, proof=Proof.EMAIL_MATCH, request=request)
        return
    audit.record(
        AuditEvent.Action.PROOF_FAILED,
        request=request,
        customer=customer,
        account=account,
        method=Proof.EMAIL_MATCH,
        reason=reason,
    )
    raise ProofRefused(_("This account cannot be linked by email. Please choose another way."))
