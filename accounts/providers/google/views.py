"""Google sign-in with endpoint base URLs read from settings at request time.

allauth's Google adapter reads its URLs once at import; this one reads
GOOGLE_ACCOUNTS_URL, GOOGLE_OAUTH2_URL and GOOGLE_APIS_URL per request and always
checks the ID token's signature against Google's certificates.
"""

import time

import jwt
from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.providers.google.views import (
    GoogleOAuth2Adapter as BaseGoogleOAuth2Adapter,
)
from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from allauth.socialaccount.providers.oauth2.views import OAuth2CallbackView, OAuth2LoginView
from cryptography import x509
from django.conf import settings
from django.core.cache import cache

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
        """Signature by one of Google's certificates, issuer, audience and expiry;
        each token is taken once (by its jti, until it expires)."""
        try:
            kid = jwt.get_unverified_header(id_token).get("kid")
            with get_adapter().get_requests_session() as session:
                response = session.get(f"{settings.GOOGLE_APIS_URL}/oauth2/v1/certs")
                response.raise_for_status()
                certificate = response.json().get(kid)
            if not isinstance(certificate, str):
                raise OAuth2Error("Invalid id_token")
            key = x509.load_pem_x509_certificate(certificate.encode()).public_key()
            data = jwt.decode(
                id_token,
                key=key,
                algorithms=["RS256"],
                issuer=self.id_token_issuer,
                audience=app.client_id,
                options={"require": ["exp", "iss", "aud"]},
            )
        except (jwt.PyJWTError, ValueError) as error:
            raise OAuth2Error("Invalid id_token") from error
        jti, expires = data.get("jti"), data.get("exp")
        if jti is not None:
            replay = f"google:id_token:{data['iss']}:{jti}"
            if not cache.add(replay, True, timeout=max(1, int(expires - time.time()))):
                raise OAuth2Error("Invalid id_token")
        return data


oauth2_login = only_when_configured(OAuth2LoginView.adapter_view(GoogleOAuth2Adapter))
oauth2_callback = only_when_configured(OAuth2CallbackView.adapter_view(GoogleOAuth2Adapter))
