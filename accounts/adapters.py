"""allauth adapters: where this site's sign-in rules plug into allauth."""

from types import SimpleNamespace
from urllib.parse import urlencode, urlsplit

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.stages import EmailVerificationStage, LoginStageController
from allauth.core import context as allauth_context
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialLogin
from allauth.socialaccount.providers.base import AuthProcess
from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext, gettext_noop

from accounts import addresses, backends, consent, stepup, tasks
from accounts.mfa import flows as mfa_flows
from accounts.models import Customer
from accounts.providers.oidc import check_nonce
from accounts.reauth import (
    check_idp_reauthentication,
    needs_idp_reauthentication,
    reauthentication_url,
)

LOGGED_IN = "account/messages/logged_in.txt"
OWNERS_BROWSER_ONLY = gettext_noop(
    "This link works only in the browser where you signed up or are signed in. Open it "
    "there, or sign in here first and then open the link again."
)


def _in_session_of(request: HttpRequest, customer: Customer) -> bool:
    """Signed in as the customer, or signing in as them and waiting for this mail."""
    if request.user.pk == customer.pk:
        return True
    stage = LoginStageController.enter(request, EmailVerificationStage.key)
    return stage is not None and getattr(stage.login.user, "pk", None) == customer.pk


class AccountAdapter(DefaultAccountAdapter):
    def get_signup_redirect_url(self, request: HttpRequest) -> str:
        """A customer who signed up without the sign-up form (through an IdP) reads
        and agrees to the current notice right after sign-up."""
        url = super().get_signup_redirect_url(request)
        if request.user.is_authenticated and consent.needs_agreement(request.user):
            return f"{reverse('consent')}?{urlencode({'next': url})}"
        return url

    def post_login(self, request: HttpRequest, user, **kwargs):
        """An email sign-up is signed in once its address is confirmed in the browser
        that signed up: for linking that counts as a sign-in (accounts.stepup)."""
        if kwargs.get("signup") and user.has_usable_password():
            stepup.record_sign_up(request)
        return super().post_login(request, user, **kwargs)

    def add_message(self, request: HttpRequest, level: int, message_template=None, *args, **kw):
        """No "signed in as ..." while the second factor is still to come: the
        verification says it once passed (accounts.mfa.flows.verified)."""
        if message_template == LOGGED_IN and mfa_flows.second_factor_pending(request):
            return
        super().add_message(request, level, message_template, *args, **kw)

    def is_reauthentication_required(self, *, app: str, **kwargs) -> bool:
        """allauth re-authenticates with a password; a customer who signs in only at
        IdPs has none and re-authenticates at one of them instead, which the site's
        own checks require (accounts.reauth: step-up, connecting and disconnecting)."""
        user = getattr(self.request, "user", None)
        if user is not None and user.is_authenticated and not user.has_usable_password():
            return False
        return super().is_reauthentication_required(app=app, **kwargs)

    def get_reauthentication_methods(self, user) -> list[dict]:
        """A mailed code never stands in for a password (it is only the fallback of
        accounts.reauth for customers without one)."""
        methods = super().get_reauthentication_methods(user)
        if user.is_authenticated and user.has_usable_password():
            return [method for method in methods if method["id"] != "reauthenticate_by_code"]
        return methods

    def authentication_failed(self, request: HttpRequest, **credentials) -> None:
        """When the site's own sign-in limits (accounts.backends) hold this email or
        address, say so rather than "wrong password"."""
        if backends.locked(request, credentials.get("email")):
            raise self.validation_error("too_many_login_attempts")

    def confirm_email(self, request: HttpRequest, email_address) -> bool:
        """The mailbox's owner confirms for their own account: where the link alone
        cannot tell whose the address is, only in that account's browser; then every
        other account's unconfirmed copy goes (accounts.addresses)."""
        with transaction.atomic():
            owner = Customer.objects.select_for_update().filter(pk=email_address.user_id).first()
            if owner is None or addresses.is_taken(email_address.email, besides=owner):
                self.add_message(
                    request,
                    messages.ERROR,
                    "account/messages/email_confirmation_failed.txt",
                    {"email": email_address.email},
                )
                return False
            if addresses.needs_owners_session(email_address) and not _in_session_of(request, owner):
                self.add_message(request, messages.ERROR, message=gettext(OWNERS_BROWSER_ONLY))
                return False
            addresses.release(email_address.email, keep=owner)
            return super().confirm_email(request, email_address)

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        """Mail speaks as the product ("統合ID"), not as the request's host name. It is
        rendered here, in the request's language, and a worker sends it after commit
        (accounts.tasks): no answer waits on the mail server, whichever mail it is."""
        site = SimpleNamespace(
            name=gettext("Unified ID"), domain=urlsplit(settings.SITE_URL).netloc
        )
        request = allauth_context.request
        context = {"request": request, "email": email, "current_site": site, **context}
        tasks.send_after_commit(self.render_mail(template_prefix, email, context))


def vouches_for_email(provider) -> bool:
    """Does this IdP's email_verified claim count here? Google's does; LINE sends no
    such claim; a generic OIDC IdP only when OIDC_PROVIDERS marks it trusted."""
    return bool(provider.app.settings.get("trust_email_verified"))


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def can_authenticate_by_email(self, login: SocialLogin, email: str) -> bool:
        """Never, whatever a setting or a provider app (also one added in the admin)
        says: a customer is found by the IdP's subject, never by an email match."""
        return False

    def pre_social_login(self, request: HttpRequest, sociallogin: SocialLogin) -> None:
        """First the ID token's nonce and, for a re-authentication, its auth_time
        (accounts.providers.oidc, accounts.reauth); connecting needs a recent
        re-authentication. Then keep only emails the IdP vouches for: an unvouched
        email is never stored on the customer, so it can neither claim an address nor
        collide with the account of the address's real owner."""
        check_nonce(request, sociallogin)
        check_idp_reauthentication(request, sociallogin)
        if sociallogin.state.get("process") == AuthProcess.CONNECT and needs_idp_reauthentication(
            request
        ):
            connections = reverse("socialaccount_connections")
            raise ImmediateHttpResponse(HttpResponseRedirect(reauthentication_url(connections)))
        if sociallogin.is_existing:
            return
        trusted = vouches_for_email(sociallogin.account.get_provider())
        sociallogin.email_addresses = [
            address for address in sociallogin.email_addresses if trusted and address.verified
        ]
        kept = {address.email.lower() for address in sociallogin.email_addresses}
        if sociallogin.state.get("process") == AuthProcess.LOGIN:
            # The IdP proved the mailbox: a sign-up that never confirmed it yields.
            for email in kept:
                addresses.release(email, keep=None)
        user = sociallogin.user
        if user is not None and (user.email or "").lower() not in kept:
            user.email = None

    def populate_user(self, request: HttpRequest, sociallogin: SocialLogin, data: dict):
        user = super().populate_user(request, sociallogin, data)
        user.name = (data.get("name") or "").strip()[:150]
        return user
