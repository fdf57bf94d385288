"""Proof by the legacy service's own login ID and password.

Imported hashes come in the formats legacy systems use:
- Django's: argon2$..., pbkdf2_sha256$..., pbkdf2_sha1$..., bcrypt_sha256$...,
  bcrypt$..., scrypt$..., md5$<salt>$<hex>
- raw bcrypt (PHP, Rails, Laravel): $2a$ / $2b$ / $2y$...
- salted SHA-256: sha256$<salt>$<hex of sha256(salt + password)>
See docs/linking.md. Unknown formats never verify.
"""

import hashlib
import hmac

import bcrypt
from django.contrib.auth import hashers
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from linking import audit, claims, throttle
from linking.models import AuditEvent, LegacyAccount, LegacyService, Proof
from linking.proofs import ProofRefused, ProofThrottled

_DJANGO_HASHERS = {
    hasher.algorithm: hasher
    for hasher in (
        hashers.Argon2PasswordHasher(),
        hashers.PBKDF2PasswordHasher(),
        hashers.PBKDF2SHA1PasswordHasher(),
        hashers.BCryptSHA256PasswordHasher(),
        hashers.BCryptPasswordHasher(),
        hashers.ScryptPasswordHasher(),
        hashers.MD5PasswordHasher(),
    )
}
# Spend comparable time on unknown member numbers, so timing does not tell them apart.
_DUMMY_HASH = hashers.make_password("not-a-password", hasher="pbkdf2_sha256")


def verify_legacy_password(encoded: str, password: str) -> bool:
    if not encoded or not password:
        return False
    encoded_bytes = encoded.encode()
    if encoded.startswith(("$2a$", "$2b$", "$2y$")):
        try:
            return bcrypt.checkpw(password.encode(), encoded_bytes.replace(b"$2y$", b"$2b$", 1))
        except ValueError:
            return False
    algorithm, _sep, rest = encoded.partition("$")
    if algorithm == "sha256":
        salt, _sep, expected = rest.partition("$")
        actual = hashlib.sha256((salt + password).encode()).hexdigest()
        return hmac.compare_digest(actual, expected.lower())
    hasher = _DJANGO_HASHERS.get(algorithm)
    if hasher is None:
        return False
    try:
        return hasher.verify(password, encoded)
    except (ValueError, TypeError):
        return False


def link_by_password(
    *, customer, service: LegacyService, external_id: str, password: str, request: HttpRequest
) -> LegacyAccount:
    """Check the legacy password and link. ProofRefused names no detail that would
    tell an attacker whether the member number exists."""
    external_id = external_id.strip()
    keys = {
        throttle.PER_ACCOUNT: f"{service.pk}:{external_id}",
        throttle.PER_CUSTOMER: customer.pk,
        throttle.PER_IP: audit.client_ip(request),
    }
    account = LegacyAccount.objects.filter(service=service, external_id=external_id).first()
    if not throttle.attempt("password", keys):
        audit.record(
            AuditEvent.Action.PROOF_FAILED,
            request=request,
            customer=customer,
            account=account,
            method=Proof.PASSWORD,
            reason="throttled",
        )
        raise ProofThrottled
    if account is None:
        verify_legacy_password(_DUMMY_HASH, password)
        ok = False
    else:
        ok = verify_legacy_password(account.password_hash, password)
    if not ok:
        audit.record(
            AuditEvent.Action.PROOF_FAILED,
            request=request,
            customer=customer,
            account=account,
            method=Proof.PASSWORD,
            reason="unknown member number" if account is None else "wrong password",
            data={"service": service.code, "external_id": external_id[:64]},
        )
        raise ProofRefused(_("The member number or the password is not correct."))
    throttle.succeeded("password", keys)
    audit.record(
        AuditEvent.Action.PROOF_SUCCEEDED,
        request=request,
        customer=customer,
        account=account,
        method=Proof.PASSWORD,
    )
    claims.link(account=account, customer=customer, proof=Proof.PASSWORD, request=request)
    return account
