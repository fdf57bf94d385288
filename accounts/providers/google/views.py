"""Google sign-in with endpoint base URLs read from settings at request time.

allauth's Google adapter reads its URLs once at import; this one reads
GOOGLE_ACCOUNTS_URL, GOOGLE_OAUTH2_URL and GOOGLE_APIS_URL per request and always
checks the ID token's signature against Google's certificates.
"""

from allauth.socialaccount.internal import jwtkit
from allauth.socialaccount.providers.google.views import (
    GoogleOAuth2Adapter as BaseGoogleOAuth2Adapter,
)
from allauth.socialaccount.providers.oauth2.views import OAuth2CallbackView, OAuth2LoginView
from django.conf import settings

from accounts.providers.views import only_when_configured


class GoogleOAuth2Adapter(BaseGoogleOAuth2Adapter):
    fetch_userinfo = False

    @property
    def authorize_url(self) -> str:
        return f"{settings.GOOGLE_ACCOUNTS_URL}/o/oauth2/v2/auth"

    @property
    def access_token_url(self) -> str:
        return f"{settings.GOOGLE_OAUTH2_URL}/token"

    @property
    def identity_url(self) -> str:
        return f"{settings.GOOGLE_APIS_URL}/oauth2/v2/userinfo"

    @property
    def id_token_issuer(self) -> str:
        return settings.GOOGLE_ACCOUNTS_URL

    def _decode_id_token(self, app, id_token: str) -> dict:
        return jwtkit.verify_and_decode(
            credential=id_token,
            keys_url=f"{settings.GOOGLE_APIS_URL}/oauth2/v1/certs",
            issuer=self.id_token_issuer,
            audience=app.client_id,
            lookup_kid=jwtkit.lookup_kid_pem_x509_certificate,
        )


oauth2_login = only_when_configured(OAuth2LoginView.adapter_view(GoogleOAuth2Adapter))
oauth2_callback = only_when_configured(OAuth2CallbackView.adapter_view(GoogleOAuth2Adapter))
