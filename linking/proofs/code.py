"""Proof by a one-time code sent to the email or phone on the legacy record.

Six random digits, valid 10 minutes, single use, stored as an HMAC, bound to one
customer and one legacy account, locked after 5 wrong entries, and never a way to
sign in (OwnershipCode is not a django-otp device and no backend reads it).
"""

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import F
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts import audit, limits
from accounts.audit import AuditEvent
from accounts.tasks import send_after_commit
from linking import claims, sms
from linking.models import LegacyAccount, OwnershipCode, Proof
from linking.proofs import ProofRefused, ProofThrottled

DIGITS = 6
VALID_FOR = timedelta(minutes=10)
MAX_FAILED_ATTEMPTS = 5


def _hash(code: str, code_id_salt: str) -> str:
    key = settings.SECRET_KEY.encode()
    return hmac.new(
        key, f"ownership-code:{code_id_salt}:{code}".encode(), hashlib.sha256
    ).hexdigest()


def mask_email(email: str) -> str:
    local, _sep, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else ""


def mask_phone(phone: str) -> str:
    digits = "".join(ch for ch in phone if ch.isdigit())
    return f"***-****-{digits[-4:]}" if len(digits) >= 4 else ""


def channels_for(account: LegacyAccount) -> dict[str, str]:
    """Where a code can go, as masked hints: {"email": "t***@example.jp", ...}."""
    hints = {}
    if account.email_key:
        hints[OwnershipCode.Channel.EMAIL] = mask_email(account.email_key)
    if account.phone_key:
        hints[OwnershipCode.Channel.SMS] = mask_phone(account.phone_key)
    return hints


def send_code(
    *, customer, account: LegacyAccount, channel: str, request: HttpRequest
) -> OwnershipCode:
    if channel not in channels_for(account):
        raise ProofRefused(_("This account has no contact of that kind on record."))
    send_keys = {"code_send.account": account.pk, "code_send.customer": customer.pk}
    if not limits.attempt(send_keys):  # every send counts toward the limit
        raise ProofThrottled

    code = f"{secrets.randbelow(10**DIGITS):0{DIGITS}d}"
    now = timezone.now()
    with transaction.atomic():
        OwnershipCode.objects.filter(
            customer=customer, account=account, used_at__isnull=True
        ).update(superseded=True)
        salt = secrets.token_hex(8)
        record = OwnershipCode.objects.create(
            customer=customer,
            account=account,
            channel=channel,
            code_hash=f"{salt}${_hash(code, salt)}",
            created_at=now,
            expires_at=now + VALID_FOR,
        )
        audit.record(
            AuditEvent.Action.CODE_SENT,
            request=request,
            customer=customer,
            account=account,
            method=Proof.CODE,
            data={"channel": channel},
        )
    _deliver(account, channel, code)
    return record


def _deliver(account: LegacyAccount, channel: str, code: str) -> None:
    language = account.service.default_language
    with translation.override(language):
        context = {
            "code": code,
            "service": account.service,
            "minutes": int(VALID_FOR.total_seconds() // 60),
        }
        text = render_to_string("linking/email/ownership_code.txt", context)
        if channel == OwnershipCode.Channel.SMS:
            sms.send_sms(account.phone_key, text)
            return
        subject = render_to_string("linking/email/ownership_code_subject.txt", context).strip()
        message = EmailMultiAlternatives(
            subject, text, to=[account.email.strip() or account.email_key]
        )
        send_after_commit(message)


def link_by_code(*, customer, account: LegacyAccount, entered: str, request: HttpRequest) -> None:
    entered = "".join(ch for ch in entered if ch.isdigit())
    now = timezone.now()
    record = (
        OwnershipCode.objects.filter(
            customer=customer, account=account, used_at__isnull=True, superseded=False
        )
        .order_by("-created_at")
        .first()
    )
    # The attempt is counted before the code is compared, in one conditional UPDATE,
    # so parallel guesses get at most MAX_FAILED_ATTEMPTS compared.
    counted = record is not None and OwnershipCode.objects.filter(
        pk=record.pk,
        used_at__isnull=True,
        expires_at__gt=now,
        failed_attempts__lt=MAX_FAILED_ATTEMPTS,
    ).update(failed_attempts=F("failed_attempts") + 1)
    if not counted:
        _refuse(
            customer, account, request, "no usable code" if record is None else "expired or locked"
        )
        raise ProofRefused(_("This code is no longer valid. Please ask for a new code."))
    salt, _sep, expected = record.code_hash.partition("$")
    if not hmac.compare_digest(_hash(entered, salt), expected):
        attempts = OwnershipCode.objects.values_list("failed_attempts", flat=True).get(pk=record.pk)
        remaining = MAX_FAILED_ATTEMPTS - attempts
        if remaining <= 0:
            audit.record(
                AuditEvent.Action.CODE_LOCKED,
                request=request,
                customer=customer,
                account=account,
                method=Proof.CODE,
            )
            _refuse(customer, account, request, "wrong code, now locked")
            raise ProofRefused(
                _("The code is wrong, and it is now locked. Please ask for a new code.")
            )
        _refuse(customer, account, request, "wrong code")
        raise ProofRefused(
            ngettext(
                "The code is wrong. You can try %(count)d more time.",
                "The code is wrong. You can try %(count)d more times.",
                remaining,
            )
            % {"count": remaining}
        )
    # Single use, also under concurrent submits of the same code.
    if not OwnershipCode.objects.filter(pk=record.pk, used_at__isnull=True).update(
        used_at=now, failed_attempts=F("failed_attempts") - 1
    ):
        _refuse(customer, account, request, "code reused")
        raise ProofRefused(_("This code is no longer valid. Please ask for a new code."))
    audit.record(
        AuditEvent.Action.PROOF_SUCCEEDED,
        request=request,
        customer=customer,
        account=account,
        method=Proof.CODE,
    )
    claims.link(account=account, customer=customer, proof=Proof.CODE, request=request)


def _refuse(customer, account: LegacyAccount, request: HttpRequest, reason: str) -> None:
    audit.record(
        AuditEvent.Action.PROOF_FAILED,
        request=request,
        customer=customer,
        account=account,
        method=Proof.CODE,
        reason=reason,
    )
