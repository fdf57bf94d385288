import secrets

from allauth.account.models import EmailAddress
from allauth.socialaccount.providers.base import AuthAction
from allauth.socialaccount.providers.line.provider import LineAccount
from allauth.socialaccount.providers.line.provider import LineProvider as BaseLineProvider

from accounts.providers.line.views import LineOAuth2Adapter


class LineProvider(BaseLineProvider):
    name = "LINE"
    account_class = LineAccount
    oauth2_adapter_class = LineOAuth2Adapter
    pkce_enabled_default = True

    def get_default_scope(self) -> list[str]:
        return ["openid", "profile", "email"]

    def get_auth_params_from_request(self, request, action):
        params = super().get_auth_params_from_request(request, action)
        if action == AuthAction.REAUTHENTICATE:
            params["max_age"] = "0"  # LINE asks the customer to authenticate again
        return params

    def redirect(self, request, process, next_url=None, data=None, **kwargs):
        nonce = secrets.token_urlsafe(32)
        auth_params = kwargs.pop("auth_params", None) or self.get_auth_params()
        auth_params["nonce"] = nonce
        return super().redirect(
            request, process, next_url, data, auth_params=auth_params, nonce=nonce, **kwargs
        )

    def extract_email_addresses(self, data: dict) -> list[EmailAddress]:
        # LINE sends no email_verified claim: its email is never taken as verified.
        email = data.get("email")
        return [EmailAddress(email=email, verified=False, primary=True)] if email else []


provider_classes = [LineProvider]
