"""What the code stores as English words (audit actions, methods, the reasons the
system gives), named for staff in their language. A value not listed here (a
reason a staff member typed) is shown as stored."""

from datetime import datetime

from django.utils import formats, timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from accounts import addresses, deletion
from accounts.audit import AuditEvent
from linking.models import Proof

ACTIONS: dict[str, str | Promise] = {
    **dict(AuditEvent.Action.choices),
    "mfa_verified": _("second factor passed"),
    "mfa_failed": _("second factor failed"),
    "mfa_device_added": _("second factor added"),
    "mfa_device_removed": _("second factor removed"),
    "mfa_backup_codes_replaced": _("backup codes replaced"),
    "staff_otp_verified": _("staff second factor passed"),
    "staff_otp_failed": _("staff second factor failed"),
    "customer_deleted": _("unified ID deleted"),
    "oidc_refresh_token_reused": _("refresh token used twice (its tokens revoked)"),
}

METHODS: dict[str, str | Promise] = {
    **dict(Proof.choices),
    "totp": _("authenticator app"),
    "backup_code": _("backup code"),
    "passkey": _("passkey"),
    "email": _("email"),
}

REASONS: dict[str, str | Promise] = {
    "customer unlinked": _("unlinked by the customer"),
    "owned by another unified ID": _("linked to another unified ID"),
    "throttled": _("too many attempts"),
    "unknown member number": _("unknown member number"),
    "wrong password": _("wrong password"),
    "wrong code": _("wrong code"),
    "wrong code, now locked": _("wrong code, now locked"),
    "code reused": _("code used before"),
    "link request opened by another customer": _("link request opened by another customer"),
    "service does not accept vouching": _("the service does not vouch for its customers"),
    deletion.REASON: _("deleted at the customer's request"),
    addresses.RELEASED_REASON: _(
        "another account proved the mailbox of an address this one never confirmed"
    ),
    deletion.EXPIRED_REASON: _("sign-up never confirmed"),
}


def action(value: str) -> str:
    return str(ACTIONS.get(value, value))


def method(value: str) -> str:
    return str(METHODS.get(value, value))


def reason(value: str) -> str:
    return str(REASONS.get(value, value))


def when(value: datetime | None) -> str:
    """A date and time as the admin shows them in lists; read-only form fields
    filled by a method would print the raw value (or "None")."""
    return "-" if value is None else formats.localize(timezone.template_localtime(value))
