from allauth.socialaccount.providers.google.provider import GoogleProvider as BaseGoogleProvider

from accounts.providers.google.views import GoogleOAuth2Adapter


class GoogleProvider(BaseGoogleProvider):
    oauth2_adapter_class = GoogleOAuth2Adapter
    pkce_enabled_default = True
    supports_token_authentication = False

    def get_default_scope(self) -> list[str]:
        return ["openid", "profile", "email"]


provider_classes = [GoogleProvider]
