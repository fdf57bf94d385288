"""The site's one authentication backend: allauth's, with sign-in limits and one
password hash per attempt. Customer sign-in, re-authentication and /admin/login/
all come here: the attempt is counted per typed email and per client address
before any hashing, and then exactly one hash is computed, whoever the email is.
"""

from allauth.account.auth_backends import AuthenticationBackend
from allauth.account.models import EmailAddress
from asgiref.sync import sync_to_async
from django.contrib.auth.hashers import make_password
from django.http import HttpRequest

from accounts import limits
from accounts.audit import client_ip
from accounts.models import Customer, normalize_email

# settings.RATE_LIMITS: the amounts of allauth's login_failed limit, so the admin
# sign-in holds as much as the customer one; here counted atomically, before hashing.
PER_EMAIL = "signin.email"
PER_IP = "signin.ip"


def _keys(request: HttpRequest | None, login: str | None) -> dict[str, object]:
    return {PER_EMAIL: normalize_email(login), PER_IP: client_ip(request)}


def locked(request: HttpRequest | None, login: str | None) -> bool:
    """Would the next sign-in with this email, from this address, be refused?"""
    return limits.is_blocked(_keys(request, login))


def count_as_failure(request: HttpRequest | None, login: str | None) -> None:
    """A right password that still may not sign in there (a customer at /admin/login/)
    uses up the limit like a wrong one, or the lock arriving later would tell."""
    limits.attempt(_keys(request, login))


def _account(login: str) -> Customer | None:
    """Whose password is checked: the owner of the confirmed address, else the account
    that signed up with it (both unique). One account, so one hash."""
    email = normalize_email(login)
    address = EmailAddress.objects.filter(email=email, verified=True).select_related("user")
    owner = address.first()
    if owner is not None:
        return owner.user
    return Customer.objects.filter(email=email).first()


class SignInBackend(AuthenticationBackend):
    def authenticate(  # type: ignore[override]
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        email: str | None = None,
        **credentials: object,
    ) -> Customer | None:
        login = email or username
        if not login or not password:
            return None
        keys = _keys(request, login)
        if not limits.attempt(keys):
            return None
        user = _account(login)
        if user is None:
            make_password(password)  # the hash a real account would have cost
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            limits.succeeded(keys)
            return user
        return None

    # ModelBackend's own async version would check the password without the limits.
    async def aauthenticate(  # type: ignore[override]
        self, request: HttpRequest | None, **credentials: object
    ) -> Customer | None:
        return await sync_to_async(self.authenticate)(request, **credentials)
