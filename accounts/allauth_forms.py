"""allauth's sign-up and password-reset forms under this site's address rule
(ACCOUNT_FORMS; accounts.addresses): only a confirmed address is anyone's."""

from allauth.account.adapter import get_adapter
from allauth.account.forms import ResetPasswordForm as AllauthResetPasswordForm
from allauth.account.forms import SignupForm as AllauthSignupForm
from django.contrib.auth.hashers import make_password
from django.http import HttpRequest

from accounts import addresses


class SignupForm(AllauthSignupForm):
    def validate_unique_email(self, value: str) -> str:
        """An address nobody confirmed is free: the newcomer gets an account and a
        confirmation link, and whoever confirms from the mailbox keeps it."""
        if addresses.is_taken(value):
            return super().validate_unique_email(value)
        return get_adapter().validate_unique_email(value)

    def save(self, request: HttpRequest):
        addresses.free_for_signup(self.cleaned_data["email"])
        return super().save(request)

    def try_save(self, request: HttpRequest):
        """For a registered address allauth creates nothing and so hashes nothing; the
        password is hashed anyway and dropped, so both answers cost one hash and their
        time does not tell whether the address is registered."""
        if self.account_already_exists:
            make_password(self.cleaned_data.get("password1"))
        return super().try_save(request)


class ResetPasswordForm(AllauthResetPasswordForm):
    def clean_email(self) -> str:
        """allauth falls back to unconfirmed addresses when no confirmed one matches;
        here those get the same "no account" mail as an unknown address."""
        email = super().clean_email()
        holders = addresses.confirmed_holder_ids(email)
        self.users = [user for user in self.users if user.pk in holders]
        return email
