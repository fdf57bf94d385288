"""LINE Login v2.1 with PKCE and a nonce, the ID token verified here.

allauth's own LINE adapter hard-codes LINE's hosts, sends no nonce and asks LINE's
/verify endpoint about the token. This adapter takes the two base URLs from
settings (LINE_LOGIN_URL, LINE_API_URL) and checks the HS256 ID token itself:
signature with the channel secret, issuer, audience, expiry and the nonce that
was stashed with the OAuth state.
"""

from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from allauth.socialaccount.providers.oauth2.views import (
    OAuth2Adapter,
    OAuth2CallbackView,
    OAuth2LoginView,
)
from django.conf import settings
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from accounts.providers.views import only_when_configured


def verify_id_token(
    id_token: str | None, *, channel_id: str, secret: str, nonce: str | None
) -> dict:
    if not id_token:
        raise OAuth2Error("LINE returned no ID token")
    if not nonce:
        raise OAuth2Error("no nonce was stashed for this LINE sign-in")
    try:
        token = jwt.decode(id_token, OctKey.import_key(secret), algorithms=["HS256"])
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": settings.LINE_LOGIN_URL},
            aud={"essential": True, "value": channel_id},
            sub={"essential": True},
            exp={"essential": True},
            nonce={"essential": True, "value": nonce},
        ).validate(token.claims)
    except (JoseError, ValueError) as exc:
        raise OAuth2Error(f"invalid LINE ID token: {exc}") from exc
    return dict(token.claims)


class LineOAuth2Adapter(OAuth2Adapter):
    provider_id = "line"
    expected_nonce: str | None = None

    @property
    def authorize_url(self) -> str:
        return f"{settings.LINE_LOGIN_URL}/oauth2/v2.1/authorize"

    @property
    def access_token_url(self) -> str:
        return f"{settings.LINE_API_URL}/oauth2/v2.1/token"

    def complete_login(self, request, app, token, **kwargs):
        claims = verify_id_token(
            kwargs["response"].get("id_token"),
            channel_id=app.client_id,
            secret=app.secret,
            nonce=self.expected_nonce,
        )
        return self.get_provider().sociallogin_from_response(request, claims)


class LineCallbackView(OAuth2CallbackView):
    def _get_state(self, request, provider):
        state, response = super()._get_state(request, provider)
        if state:
            self.adapter.expected_nonce = state.get("nonce")
        return state, response


oauth2_login = only_when_configured(OAuth2LoginView.adapter_view(LineOAuth2Adapter))
oauth2_callback = only_when_configured(LineCallbackView.adapter_view(LineOAuth2Adapter))
