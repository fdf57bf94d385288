from allauth.socialaccount.providers.google.provider import GoogleProvider as BaseGoogleProvider

from accounts.providers.google.views import GoogleOAuth2Adapter
from accounts.providers.oidc import OpenIDConnectMixin


class GoogleProvider(OpenIDConnectMixin, BaseGoogleProvider):
    oauth2_adapter_class = GoogleOAuth2Adapter
    pkce_enabled_default = True
    supports_token_authentication = False
    # Google refuses prompt=login; it takes max_age and these.
    reauthentication_prompt = "select_account consent"

    def get_default_scope(self) -> list[str]:
        return ["openid", "profile", "email"]


provider_classes = [GoogleProvider]
