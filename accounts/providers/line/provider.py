from allauth.account.models import EmailAddress
from allauth.socialaccount.providers.line.provider import LineAccount
from allauth.socialaccount.providers.line.provider import LineProvider as BaseLineProvider

from accounts.providers.line.views import LineOAuth2Adapter
from accounts.providers.oidc import OpenIDConnectMixin


class LineProvider(OpenIDConnectMixin, BaseLineProvider):
    name = "LINE"
    account_class = LineAccount
    oauth2_adapter_class = LineOAuth2Adapter
    pkce_enabled_default = True

    def get_default_scope(self) -> list[str]:
        return ["openid", "profile", "email"]

    def extract_email_addresses(self, data: dict) -> list[EmailAddress]:
        # LINE sends no email_verified claim: its email is never taken as verified.
        email = data.get("email")
        return [EmailAddress(email=email, verified=False, primary=True)] if email else []


provider_classes = [LineProvider]
