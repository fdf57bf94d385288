from allauth.account.models import EmailAddress
from allauth.socialaccount.providers.line.provider import LineAccount
from allauth.socialaccount.providers.line.provider import LineProvider as BaseLineProvider
from django.conf import settings

from accounts.providers.line.views import LineOAuth2Adapter
from accounts.providers.oidc import OpenIDConnectMixin


class LineProvider(OpenIDConnectMixin, BaseLineProvider):
    name = "LINE"
    account_class = LineAccount
    oauth2_adapter_class = LineOAuth2Adapter
    pkce_enabled_default = True

    def get_default_scope(self) -> list[str]:
        return ["openid", "profile", "email"]

    def get_auth_params(self) -> dict:
        # LINE_BOT_PROMPT: LINE Login offers to add the Official Account as a friend.
        params = super().get_auth_params()
        if settings.LINE_BOT_PROMPT:
            params["bot_prompt"] = settings.LINE_BOT_PROMPT
        return params

    def extract_email_addresses(self, data: dict) -> list[EmailAddress]:
        # LINE sends no email_verified claim: its email is never taken as verified.
        email = data.get("email")
        return [EmailAddress(email=email, verified=False, primary=True)] if email else []


provider_classes = [LineProvider]
