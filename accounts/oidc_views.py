"""The OpenID provider's endpoints: allauth's views, with what the OpenID Connect
Basic and Config OP profiles need and allauth (65.22) does not do, around them.

- authorize: refuses what is not supported (response types other than code,
  response modes other than query, request objects) with the standard errors;
  honours max_age and prompt=login by re-authenticating; checks the `claims`
  parameter (a requested sub, an essential acr); records each grant (ProviderGrant)
  with auth_time, amr and acr for its ID tokens.
- token, introspect, revoke: client credentials in HTTP Basic are form-urldecoded
  (RFC 6749 §2.3.1); failed client authentications are limited per client and per
  address, counted before the secret is checked, and an unknown client costs the
  same password hash as a wrong secret; a refresh token used twice revokes its family.
"""

import json
import time
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlencode, urlsplit

from allauth.idp.oidc import views as allauth_views
from allauth.idp.oidc.adapter import get_adapter
from allauth.idp.oidc.models import Client, Token
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from accounts import allauth_compat, audit, limits, oidc_logout, oidc_provider
from accounts.audit import ActorKind
from accounts.models import ProviderGrant, SpentRefreshToken
from accounts.reauth import reauthentication_url

# Failed client authentications (wrong secret, unknown client) at the token,
# introspection and revocation endpoints, counted before the secret is checked
# (settings.RATE_LIMITS).
PER_CLIENT = "oidc_client.client"
PER_ADDRESS = "oidc_client.ip"

# A re-authentication asked for by max_age or prompt=login counts for the request
# that asked, if it ends within this many seconds.
REAUTHENTICATION_WINDOW_SECONDS = 15 * 60
_REAUTHENTICATION_ASKED_AT = "oidc_reauthentication_asked_at"


class _Refusal(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


# --- authorization endpoint ---------------------------------------------------


@csrf_exempt
def authorize(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        try:
            _refuse_unsupported(request.GET)
            if request.user.is_authenticated:
                answer = _check_session(request)
                if answer is not None:
                    return answer
        except _Refusal as refusal:
            return _refuse(request, refusal)
    response = allauth_views.authorization(request)
    _record_grant(request, response)
    return response


def _refuse_unsupported(params: QueryDict) -> None:
    response_type = params.get("response_type")
    if response_type is not None and response_type != "code":
        raise _Refusal(
            "unsupported_response_type", "Only the authorization code flow is supported."
        )
    if params.get("response_mode", "query") != "query":
        raise _Refusal("invalid_request", "Only response_mode=query is supported.")
    if "request" in params:
        raise _Refusal("request_not_supported", "Request objects are not supported.")
    if "request_uri" in params:
        raise _Refusal("request_uri_not_supported", "request_uri is not supported.")


def _check_session(request: HttpRequest) -> HttpResponse | None:
    """For a signed-in customer: re-authentication (max_age, prompt=login), the
    `claims` parameter, an essential acr. Returns an answer, or None to go on
    (request.GET possibly rewritten for allauth)."""
    params = request.GET
    prompts = params.get("prompt", "").split()
    if "none" in prompts and len(prompts) > 1:
        return None  # allauth refuses the combination
    claims = _claims_request(params.get("claims"))
    now = oidc_provider.authentication(request)
    sub = request.user.unified_id
    for member in ("id_token", "userinfo"):
        wanted = (claims.get(member) or {}).get("sub")
        if isinstance(wanted, dict) and "value" in wanted and wanted["value"] != sub:
            raise _Refusal("login_required", "The signed-in customer is not the one requested.")
    if _needs_reauthentication(request, prompts, now):
        if "none" in prompts:
            allauth_compat.answer_as_signed_out(request)
            return None
        request.session[_REAUTHENTICATION_ASKED_AT] = time.time()
        return _reauthenticate(request)
    acr = (claims.get("id_token") or {}).get("acr")
    if isinstance(acr, dict) and acr.get("essential"):
        allowed = acr.get("values") or ([acr["value"]] if "value" in acr else [])
        if allowed and now.acr not in allowed:
            raise _Refusal(
                "unmet_authentication_requirements",
                "The customer has no second factor for the requested acr.",
            )
    rewritten = params.copy()
    if "login" in prompts:
        prompts.remove("login")  # done: allauth would ask again
        if prompts:
            rewritten["prompt"] = " ".join(prompts)
        else:
            del rewritten["prompt"]
    if claims:
        rewritten["claims"] = allauth_compat.claims_with_session_sub(claims, sub)
    if rewritten != params:
        request.GET = rewritten
        request.META["QUERY_STRING"] = rewritten.urlencode()
    return None


def _claims_request(raw: str | None) -> dict:
    if not raw:
        return {}
    try:
        claims = json.loads(raw)
    except ValueError:
        claims = None
    if not isinstance(claims, dict) or not all(
        isinstance(claims.get(member), dict | None) for member in ("id_token", "userinfo")
    ):
        raise _Refusal("invalid_request", "The claims parameter is not a valid claims request.")
    return claims


def _needs_reauthentication(
    request: HttpRequest, prompts: list[str], now: oidc_provider.Authentication
) -> bool:
    raw = request.GET.get("max_age")
    max_age = None
    if raw is not None:
        try:
            max_age = int(raw)
        except ValueError:
            max_age = -1
        if max_age < 0:
            raise _Refusal("invalid_request", "max_age must be a whole number of seconds.")
    if "login" in prompts:
        max_age = 0
    if max_age is None or time.time() - now.auth_time <= max_age:
        return False
    asked_at = request.session.get(_REAUTHENTICATION_ASKED_AT)
    if (
        isinstance(asked_at, int | float)
        and time.time() - asked_at <= REAUTHENTICATION_WINDOW_SECONDS
        and now.auth_time >= int(asked_at)
    ):
        # Re-authenticated since this request asked for it: it counts once.
        del request.session[_REAUTHENTICATION_ASKED_AT]
        return False
    return True


def _reauthenticate(request: HttpRequest) -> HttpResponse:
    """Off to re-authenticate (password, or the customer's own IdP), then back."""
    here = request.get_full_path()
    if request.user.has_usable_password():
        target = f"{reverse('account_reauthenticate')}?{urlencode({'next': here})}"
    else:
        target = reauthentication_url(here)
    response = HttpResponse(status=302)
    response["Location"] = target
    return response


def _refuse(request: HttpRequest, refusal: _Refusal) -> HttpResponse:
    """To the client's redirect URI when it is one registered exactly for that
    client; otherwise on a page, as allauth shows its own errors."""
    params = request.GET
    client = Client.objects.filter(id=params.get("client_id", "")).first()
    redirect_uri = params.get("redirect_uri", "")
    if client is None or redirect_uri not in client.get_redirect_uris():
        shown = _Refusal(
            refusal.error,
            _("The service asked for a sign-in this site does not offer (%(detail)s).")
            % {"detail": refusal.description},
        )
        return render(request, "idp/oidc/error.html", {"error": shown}, status=400)
    answer = {"error": refusal.error, "error_description": refusal.description}
    if params.get("state"):
        answer["state"] = params["state"]
    separator = "&" if urlsplit(redirect_uri).query else "?"
    response = HttpResponse(status=302)
    response["Location"] = redirect_uri + separator + urlencode(answer)
    return response


def _record_grant(request: HttpRequest, response: HttpResponse) -> None:
    """A code was issued: remember how the customer authenticated, for its ID tokens."""
    if response.status_code != 302 or not request.user.is_authenticated:
        return
    codes = parse_qs(urlsplit(response.get("Location", "")).query).get("code")
    found = allauth_compat.code_grant(codes[-1]) if codes else None
    if found is None:
        return
    now = oidc_provider.authentication(request)
    ProviderGrant.objects.create(
        grant_id=found.grant_id,
        client_id=found.client_id,
        customer=request.user,
        auth_time=datetime.fromtimestamp(now.auth_time, tz=UTC),
        amr=now.amr,
        acr=now.acr,
        claims=found.claims,
        session_key=request.session.session_key or "",
        sid=oidc_logout.session_sid(request),
    )


# --- token, introspection and revocation endpoints ---------------------------


def _client_authenticating(view):
    """Decode Basic credentials, count the attempt, equalise the cost of unknown
    clients, and give the attempt back unless the client failed to authenticate."""

    @csrf_exempt
    def guarded(request: HttpRequest) -> HttpResponse:
        client_id = request.POST.get("client_id") or None
        secret = request.POST.get("client_secret") or None
        header = request.META.get("HTTP_AUTHORIZATION", "")
        credentials = allauth_compat.basic_credentials(header)
        if credentials is not None:
            client_id, secret = credentials
            request.META["HTTP_AUTHORIZATION"] = allauth_compat.basic_header_for_allauth(
                client_id, secret
            )
        keys = {PER_CLIENT: client_id, PER_ADDRESS: audit.client_ip(request)}
        if not limits.attempt(keys):
            response = JsonResponse(
                {
                    "error": "temporarily_unavailable",
                    "error_description": "Too many failed client authentications; try again later.",
                },
                status=429,
            )
            response["Retry-After"] = str(limits.rule(PER_CLIENT).get_expiry())
            return response
        if secret and client_id and not Client.objects.filter(id=client_id).exists():
            make_password(secret)  # the hash a known client's secret costs
        response = view(request)
        if response.status_code != 401:
            limits.succeeded(keys)
        return response

    return guarded


def _token(request: HttpRequest) -> HttpResponse:
    grant_type = request.POST.get("grant_type")
    if grant_type not in ("authorization_code", "refresh_token", "client_credentials"):
        return JsonResponse({"error": "unsupported_grant_type"}, status=400)
    if grant_type == "authorization_code":
        found = allauth_compat.code_grant(request.POST.get("code", ""))
        _use_grant(request, found.grant_id if found else None)
        return allauth_views.token(request)
    if grant_type == "refresh_token":
        return _refresh(request)
    return allauth_views.token(request)


def _refresh(request: HttpRequest) -> HttpResponse:
    """Refresh tokens rotate (allauth). One presented again after its rotation was
    stolen or leaked: the whole family it belongs to is revoked (OAuth 2.0 Security
    BCP, refresh token rotation)."""
    value = request.POST.get("refresh_token", "")
    token_hash = get_adapter().hash_token(value)
    with transaction.atomic():
        live = (
            Token.objects.valid()
            .select_for_update()
            .filter(type=Token.Type.REFRESH_TOKEN, hash=token_hash)
            .first()
        )
        grant_id = live.get_grant_id() if live is not None else None
        _use_grant(request, grant_id)
        response = allauth_views.token(request)
        if response.status_code == 200 and live is not None and grant_id is not None:
            try:
                with transaction.atomic():
                    SpentRefreshToken.objects.create(
                        token_hash=token_hash, client_id=live.client_id, grant_id=grant_id
                    )
            except IntegrityError:
                pass  # a token cannot be spent twice; its second use is refused below
        elif response.status_code == 400 and live is None:
            _revoke_if_reused(request, token_hash)
    return response


def _revoke_if_reused(request: HttpRequest, token_hash: str) -> None:
    """allauth answered invalid_grant after authenticating the client; if the token
    was one of that client's spent ones, its family goes."""
    spent = SpentRefreshToken.objects.filter(token_hash=token_hash).first()
    if spent is None:
        return
    credentials = allauth_compat.basic_credentials(request.META.get("HTTP_AUTHORIZATION", ""))
    client_id = credentials[0] if credentials else request.POST.get("client_id")
    if client_id != spent.client_id:
        return
    revoked = allauth_compat.revoke_grants([(spent.client_id, spent.grant_id)])
    grant = ProviderGrant.objects.filter(grant_id=spent.grant_id).select_related("customer")
    grant = grant.first()
    audit.record(
        "oidc_refresh_token_reused",
        request=request,
        customer=grant.customer if grant else None,
        actor_kind=ActorKind.SYSTEM,
        data={"client_id": spent.client_id, "tokens_revoked": revoked},
    )


def _use_grant(request: HttpRequest, grant_id: str | None) -> None:
    grant = ProviderGrant.objects.filter(grant_id=grant_id).first() if grant_id else None
    setattr(request, oidc_provider.GRANT_ATTRIBUTE, grant)


token = _client_authenticating(_token)
introspect = _client_authenticating(allauth_views.introspect)
revoke = _client_authenticating(allauth_views.revoke)


def not_offered(request: HttpRequest) -> HttpResponse:
    """The device authorization grant is not offered."""
    raise Http404
