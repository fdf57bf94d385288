"""Backup codes: ten single-use codes shown once, stored as keyed, salted hashes.

A code is 10 characters from an alphabet without look-alikes (shown as xxxxx-xxxxx):
about 49 bits each, and the per-account failure limit in accounts.mfa.flows keeps
guessing hopeless. Single use holds under concurrent requests: only one UPDATE of
a row from unused to used succeeds.
"""

import hashlib
import hmac
import secrets

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.mfa.models import BackupCode

COUNT = 10
LENGTH = 10
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i


def replace(user) -> list[str]:
    """Replace the person's backup codes; returns the plain codes, to be shown once."""
    codes = ["".join(secrets.choice(_ALPHABET) for _ in range(LENGTH)) for _ in range(COUNT)]
    rows = []
    for code in codes:
        salt = secrets.token_hex(8)
        rows.append(BackupCode(user=user, code_hash=f"{salt}${_hash(code, salt)}"))
    with transaction.atomic():
        BackupCode.objects.filter(user=user).delete()
        BackupCode.objects.bulk_create(rows)
    return [f"{code[:5]}-{code[5:]}" for code in codes]


def unused(user) -> int:
    return BackupCode.objects.filter(user=user, used_at__isnull=True).count()


def discard(user) -> None:
    BackupCode.objects.filter(user=user).delete()


def looks_like_one(entered: str) -> bool:
    """Backup codes have letters; TOTP codes are digits only."""
    return not _normalize(entered).isdigit()


def use(user, entered: str) -> bool:
    """Spend the matching unused code; False if none matches."""
    entered = _normalize(entered)
    for pk, stored in BackupCode.objects.filter(user=user, used_at__isnull=True).values_list(
        "pk", "code_hash"
    ):
        salt, _sep, expected = stored.partition("$")
        if hmac.compare_digest(_hash(entered, salt), expected):
            return bool(
                BackupCode.objects.filter(pk=pk, used_at__isnull=True).update(
                    used_at=timezone.now()
                )
            )
    return False


def _normalize(entered: str) -> str:
    return "".join((entered or "").split()).replace("-", "").lower()[:32]


def _hash(code: str, salt: str) -> str:
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, f"backup-code:{salt}:{code}".encode(), hashlib.sha256).hexdigest()
