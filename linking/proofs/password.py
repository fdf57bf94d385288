"""Proof by the legacy service's own login ID and password.

Imported hashes come in the formats legacy systems use:
- Django's: argon2$..., pbkdf2_sha256$..., pbkdf2_sha1$..., bcrypt_sha256$...,
  bcrypt$..., scrypt$..., md5$<salt>$<hex>
- raw bcrypt (PHP, Rails, Laravel): $2a$ / $2b$ / $2y$...
- salted SHA-256: sha256$<salt>$<hex of sha256(salt + password)>
See docs/linking.md. Unknown formats never verify.
"""

import functools
import hashlib
import hmac
import secrets

import argon2
import bcrypt
from django.conf import settings
from django.contrib.auth.hashers import BasePasswordHasher
from django.core.cache import cache
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from accounts import audit, limits
from accounts.audit import AuditEvent
from linking import claims
from linking.models import LegacyAccount, LegacyService, Proof
from linking.proofs import ProofRefused, ProofThrottled

_RAW_BCRYPT = ("$2a$", "$2b$", "$2y$")
_DUMMY_SECONDS = 60 * 60


@functools.cache
def _hashers() -> dict[str, BasePasswordHasher]:
    """LEGACY_PASSWORD_HASHERS by algorithm: formats verified here, never made."""
    hashers = (import_string(path)() for path in settings.LEGACY_PASSWORD_HASHERS)
    return {hasher.algorithm: hasher for hasher in hashers}


@receiver(setting_changed)
def _forget_hashers(*, setting: str, **kwargs) -> None:
    if setting == "LEGACY_PASSWORD_HASHERS":
        _hashers.cache_clear()


def _django_hasher(encoded: str) -> tuple[BasePasswordHasher | None, str]:
    """The hasher for `encoded`, and `encoded` in its format: raw bcrypt is Django's
    bcrypt$ format without the prefix ($2y$ is PHP's name for $2b$)."""
    if encoded.startswith(_RAW_BCRYPT):
        encoded = "bcrypt$" + encoded.replace("$2y$", "$2b$", 1)
    return _hashers().get(encoded.partition("$")[0]), encoded


def verify_legacy_password(encoded: str, password: str) -> bool:
    if not encoded or not password:
        return False
    algorithm, _sep, rest = encoded.partition("$")
    if algorithm == "sha256":
        salt, _sep, expected = rest.partition("$")
        actual = hashlib.sha256((salt + password).encode()).hexdigest()
        return hmac.compare_digest(actual, expected.lower())
    hasher, encoded = _django_hasher(encoded)
    if hasher is None:
        return False
    try:
        return hasher.verify(password, encoded)
    except (ValueError, TypeError):
        return False


def _same_cost_hash(service: LegacyService) -> str:
    """A hash of a random password in the format and cost of one of the service's
    own (kept an hour, shared by all processes). A member number without a hash is
    checked against it: as much work as a real one, and nothing more."""
    key = f"linking:legacy-dummy-hash:{service.pk}"
    dummy = cache.get(key)
    if dummy is None:
        samples = LegacyAccount.objects.filter(service=service).exclude(password_hash="")
        dummy = _hash_like(next(iter(samples.values_list("password_hash", flat=True)[:1]), ""))
        cache.set(key, dummy, _DUMMY_SECONDS)
    return dummy


def _hash_like(encoded: str) -> str:
    password = secrets.token_urlsafe(16)
    if encoded.startswith("sha256$"):
        salt = secrets.token_hex(8)
        return f"sha256${salt}${hashlib.sha256((salt + password).encode()).hexdigest()}"
    hasher, encoded = _django_hasher(encoded)
    if hasher is None:
        return ""  # an unknown format is refused without work; so is this
    try:
        cost = hasher.decode(encoded)
        match hasher.algorithm:
            case "argon2":
                same = argon2.PasswordHasher.from_parameters(cost["params"])
                return "argon2" + same.hash(password)
            case "bcrypt" | "bcrypt_sha256":
                return hasher.encode(password, bcrypt.gensalt(cost["work_factor"]))
            case "scrypt":
                n, r, p = cost["work_factor"], cost["block_size"], cost["parallelism"]
                return hasher.encode(password, hasher.salt(), n, r, p)
            case "pbkdf2_sha256" | "pbkdf2_sha1":
                return hasher.encode(password, hasher.salt(), cost["iterations"])
            case _:
                return hasher.encode(password, hasher.salt())
    except (ValueError, TypeError, KeyError):
        return ""


def link_by_password(
    *, customer, service: LegacyService, external_id: str, password: str, request: HttpRequest
) -> LegacyAccount:
    """Check the legacy password and link. ProofRefused names no detail that would
    tell an attacker whether the member number exists."""
    external_id = external_id.strip()
    keys = {
        "legacy_password.account": f"{service.pk}:{external_id}",
        "legacy_password.customer": customer.pk,
        "legacy_password.ip": audit.client_ip(request),
    }
    account = LegacyAccount.objects.filter(service=service, external_id=external_id).first()
    if not limits.attempt(keys):
        audit.record(
            AuditEvent.Action.PROOF_FAILED,
            request=request,
            customer=customer,
            account=account,
            method=Proof.PASSWORD,
            reason="throttled",
        )
        raise ProofThrottled
    dummy = _same_cost_hash(service)
    if account is None or not account.password_hash:
        verify_legacy_password(dummy, password)  # the work of a real check, result unused
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
    limits.succeeded(keys)
    audit.record(
        AuditEvent.Action.PROOF_SUCCEEDED,
        request=request,
        customer=customer,
        account=account,
        method=Proof.PASSWORD,
    )
    claims.link(account=account, customer=customer, proof=Proof.PASSWORD, request=request)
    return account
