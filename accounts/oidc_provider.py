"""The site as an OpenID Connect provider for group services (allauth.idp.oidc):
"sign in with the unified ID". The subject (sub) a service receives is the
customer's unified ID; the issuer is SITE_URL. Signing in goes through the site's
own sign-in pages (allauth's login_required), so whatever those demand (password,
IdP, second factor) applies here too.
"""

from allauth.idp.oidc.adapter import DefaultOIDCAdapter
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from accounts.models import Customer


class OIDCAdapter(DefaultOIDCAdapter):
    scope_display = {
        "openid": _("See your unified ID"),
        "email": _("See your email address"),
        "profile": _("See your name"),
    }

    def get_issuer(self) -> str:
        return settings.SITE_URL

    def get_user_sub(self, client, user) -> str:
        return user.unified_id

    def get_user_by_sub(self, client, sub: str) -> Customer | None:
        if not isinstance(sub, str):
            return None
        return Customer.objects.filter(unified_id=sub, is_active=True).first()
