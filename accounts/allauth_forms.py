"""allauth's forms as this site uses them (ACCOUNT_FORMS)."""

from allauth.account.forms import SignupForm as AllauthSignupForm
from django.contrib.auth.hashers import make_password
from django.http import HttpRequest


class SignupForm(AllauthSignupForm):
    def try_save(self, request: HttpRequest):
        """For a registered address allauth creates nothing and so hashes nothing; the
        password is hashed anyway and dropped, so both answers cost one hash and their
        time does not tell whether the address is registered."""
        if self.account_already_exists:
            make_password(self.cleaned_data.get("password1"))
        return super().try_save(request)
