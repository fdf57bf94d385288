"""A local identity provider for tests: LINE Login v2.1, Google and generic OpenID
Connect, over real HTTP on 127.0.0.1 (routes: FakeIdP.routes).

Every authorize request is approved at once for the user of set_user(), signed in
there an hour ago. Token endpoints check what the real ones check (client
credentials, redirect_uri, single-use codes, PKCE) and sign as they do (LINE HS256
with the channel secret, Google and OIDC RS256). Stricter than the real IdPs where
the site promises it: state, S256 PKCE, and LINE's nonce are required. prompt=login
and max_age are honoured with auth_time; answer_reauthentication() makes an IdP
ignore them, as some real ones do."""

import base64
import hashlib
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey, RSAKey

from tests.fakes.certificates import self_signed

LINE = "line"
GOOGLE = "google"
KEY_ID = "fake-idp-rsa-1"
CODE_TTL = 600
TOKEN_TTL = 3600
LINE_SCOPES = {"openid", "profile", "email"}
SESSION_AGE = 3600  # how long ago the user signed in at the IdP, per set_user()
GOOGLE_PROMPTS = {"none", "consent", "select_account"}


class Reauthentication(StrEnum):
    """How an IdP answers prompt=login and max_age."""

    HONOURED = "honoured"  # signs the user in again; auth_time is now
    NO_AUTH_TIME = "no-auth-time"  # ignores both and sends no auth_time
    STALE = "stale"  # ignores both and sends the auth_time of its hour-old session


class Tamper(StrEnum):
    """How the next ID token of a provider is spoiled, to test that the site refuses it."""

    SIGNATURE = "signature"
    NONCE = "nonce"
    AUDIENCE = "audience"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Client:
    client_id: str
    secret: str


@dataclass(frozen=True)
class User:
    sub: str
    name: str = ""
    email: str | None = None
    email_verified: bool = False

    @property
    def picture(self) -> str:
        return f"https://profile.example.invalid/{self.sub}.png"


@dataclass(frozen=True)
class _Grant:
    """What an authorization code stands for."""

    provider: str
    client_id: str
    redirect_uri: str
    scope: frozenset[str]
    nonce: str | None
    code_challenge: str
    user: User
    expires_at: float
    auth_time: int | None


@dataclass(frozen=True)
class _Access:
    provider: str
    user: User
    scope: frozenset[str]


@dataclass
class Request:
    query: dict[str, str]
    form: dict[str, str]
    headers: Message
    body: bytes = b""

    def bearer_token(self) -> str | None:
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        return token if scheme.lower() == "bearer" and token else None

    def client_credentials(self) -> tuple[str, str]:
        """client_secret_basic or client_secret_post, as OAuth 2.0 allows."""
        scheme, _, value = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":
            client_id, _, secret = base64.b64decode(value).decode().partition(":")
            return client_id, secret
        return self.form.get("client_id", ""), self.form.get("client_secret", "")


@dataclass
class Response:
    status: int
    body: dict | str = ""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = ""  # default: JSON for a dict, plain text for a str


class OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.response = Response(status, {"error": error, "error_description": description})


def s256(code_verifier: str) -> str:
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _self_signed_certificate(key: rsa.RSAPrivateKey) -> str:
    """Google publishes its signing keys as PEM X.509 certificates, keyed by kid."""
    certificate = self_signed(key, "fake-idp.invalid", days=14)
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _rsa_key() -> tuple[rsa.RSAPrivateKey, RSAKey]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return private, RSAKey.import_key(private)


class FakeIdP:
    """The identity providers' state and protocol; _Handler only moves bytes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        private_key, self._signing_key = _rsa_key()
        # Same kid, different key: what a forged RS256 token looks like to a verifier.
        self._forger_key = _rsa_key()[1]
        self._certificate = _self_signed_certificate(private_key)
        self.clients: dict[str, Client] = {
            LINE: Client("1657000001", secrets.token_hex(16)),
            GOOGLE: Client("1234567890-fake.apps.googleusercontent.com", secrets.token_urlsafe(24)),
        }
        self._users: dict[str, User] = {}
        self._signed_in_at: dict[str, float] = {}
        self._reauthentication: dict[str, Reauthentication] = {}
        self._tamper: dict[str, Tamper] = {}
        self._codes: dict[str, _Grant] = {}
        self._access_tokens: dict[str, _Access] = {}
        self.connections = 0  # TCP connections accepted so far
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.idp = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="fake-idp", daemon=True
        )
        self.base_url = f"http://127.0.0.1:{self._httpd.server_port}"
        self._routes = self.routes()

    # Control, for tests.

    def connection_opened(self) -> None:
        with self._lock:
            self.connections += 1

    def start(self) -> "FakeIdP":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def mount(self, routes: list[tuple[str, str, Callable[..., Response]]]) -> None:
        """Serve more routes (method, path pattern, view) from this server: LINE's
        Messaging API shares LINE Login's hosts (tests/fakes/line.py)."""
        with self._lock:
            self._routes = [*self._routes, *routes]

    def line_login_user(self, access_token: str) -> str | None:
        """The LINE user ID a LINE Login access token was issued to, if any."""
        with self._lock:
            access = self._access_tokens.get(access_token)
        return access.user.sub if access and access.provider == LINE else None

    def add_oidc_provider(self, name: str) -> Client:
        """Serve a generic OpenID Connect IdP at /oidc/<name>/ with its own client."""
        with self._lock:
            if name not in self.clients:
                self.clients[name] = Client(f"{name}-client", secrets.token_urlsafe(24))
            return self.clients[name]

    def set_user(
        self,
        provider: str,
        *,
        sub: str,
        name: str = "",
        email: str | None = None,
        email_verified: bool = False,
    ) -> None:
        """Who the provider's next authorize request signs in (and approves): signed
        in at the IdP since SESSION_AGE seconds ago."""
        self._client(provider)
        with self._lock:
            self._users[provider] = User(sub, name, email, email_verified)
            self._signed_in_at[provider] = time.time() - SESSION_AGE

    def answer_reauthentication(self, provider: str, how: Reauthentication) -> None:
        self._client(provider)
        with self._lock:
            self._reauthentication[provider] = Reauthentication(how)

    def tamper_next_id_token(self, provider: str, how: Tamper) -> None:
        with self._lock:
            self._tamper[provider] = Tamper(how)

    def reset(self) -> None:
        with self._lock:
            self._users.clear()
            self._signed_in_at.clear()
            self._reauthentication.clear()
            self._tamper.clear()
            self._codes.clear()
            self._access_tokens.clear()

    def issuer(self, provider: str) -> str:
        if provider == LINE:
            return f"{self.base_url}/line"
        if provider == GOOGLE:
            return f"{self.base_url}/google-accounts"
        return f"{self.base_url}/oidc/{provider}"

    # Routing.

    def routes(self) -> list[tuple[str, str, Callable[..., Response]]]:
        oidc = r"/oidc/(?P<provider>[\w-]+)"
        return [
            ("GET", r"/line/oauth2/v2\.1/authorize", self._route(LINE, self.authorize)),
            ("POST", r"/line-api/oauth2/v2\.1/token", self._route(LINE, self.token)),
            ("POST", r"/line-api/oauth2/v2\.1/verify", self.line_verify),
            ("GET", r"/line-api/v2/profile", self._route(LINE, self.userinfo)),
            ("GET", r"/google-accounts/o/oauth2/v2/auth", self._route(GOOGLE, self.authorize)),
            ("POST", r"/google-oauth2/token", self._route(GOOGLE, self.token)),
            ("GET", r"/google-apis/oauth2/v2/userinfo", self._route(GOOGLE, self.userinfo)),
            ("GET", r"/google-apis/oauth2/v1/certs", self.google_certs),
            ("GET", oidc + r"/\.well-known/openid-configuration", self.oidc_configuration),
            ("GET", oidc + r"/authorize", self.authorize),
            ("POST", oidc + r"/token", self.token),
            ("GET", oidc + r"/userinfo", self.userinfo),
            ("GET", oidc + r"/jwks", self.oidc_jwks),
        ]

    @staticmethod
    def _route(provider: str, view: Callable[..., Response]) -> Callable[..., Response]:
        return lambda request: view(request, provider=provider)

    def handle(self, method: str, path: str, request: Request) -> Response:
        for route_method, pattern, view in self._routes:
            match = re.fullmatch(pattern, path)
            if match and route_method == method:
                if "provider" in match.groupdict() and match["provider"] not in self.clients:
                    break
                try:
                    return view(request, **match.groupdict())
                except OAuthError as error:
                    return error.response
        return Response(404, {"error": "not_found"})

    # Authorization endpoint.

    def authorize(self, request: Request, provider: str) -> Response:
        query = request.query
        client = self.clients[provider]
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != client.client_id or not redirect_uri.startswith("http"):
            # No trustworthy place to send the error to: show it, as real IdPs do.
            return Response(400, "invalid client_id or redirect_uri")
        try:
            grant = self._grant_from(provider, query)
        except OAuthError as error:
            return _redirect(redirect_uri, {**error.response.body, "state": query.get("state")})
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = grant
        return _redirect(redirect_uri, {"code": code, "state": query["state"]})

    def _grant_from(self, provider: str, query: dict[str, str]) -> _Grant:
        def refuse(description: str, error: str = "invalid_request") -> OAuthError:
            return OAuthError(400, error, description)

        if query.get("response_type") != "code":
            raise refuse("response_type must be code", "unsupported_response_type")
        if not query.get("state"):
            raise refuse("state is required")
        scope = frozenset(query.get("scope", "").split())
        if "openid" not in scope:
            raise refuse("scope must include openid", "invalid_scope")
        if provider == LINE and not scope <= LINE_SCOPES:
            raise refuse(f"unknown scope {sorted(scope - LINE_SCOPES)}", "invalid_scope")
        if provider == LINE and not query.get("nonce"):
            raise refuse("nonce is required")
        if not query.get("code_challenge") or query.get("code_challenge_method") != "S256":
            raise refuse("an S256 code_challenge is required")
        prompt = set(query.get("prompt", "").split())
        if provider == GOOGLE and not prompt <= GOOGLE_PROMPTS:
            raise refuse(f"Invalid parameter value for prompt: Invalid prompt: {query['prompt']}")
        max_age = query.get("max_age")
        if max_age is not None and not max_age.isdigit():
            raise refuse("max_age must be a number of seconds")
        with self._lock:
            user = self._users.get(provider)
        if user is None:
            raise refuse("no user is signed in at the IdP", "access_denied")
        auth_time = self._authenticate(provider, prompt, max_age)
        return _Grant(
            provider=provider,
            client_id=query["client_id"],
            redirect_uri=query["redirect_uri"],
            scope=scope,
            nonce=query.get("nonce"),
            code_challenge=query["code_challenge"],
            user=user,
            expires_at=time.time() + CODE_TTL,
            auth_time=auth_time,
        )

    def _authenticate(self, provider: str, prompt: set[str], max_age: str | None) -> int | None:
        """Sign the user in again if asked to; the auth_time the ID token will carry."""
        asked = "login" in prompt or max_age is not None
        with self._lock:
            how = self._reauthentication.get(provider, Reauthentication.HONOURED)
            if how is Reauthentication.HONOURED and (
                "login" in prompt
                or (
                    max_age is not None
                    and time.time() - self._signed_in_at[provider] > int(max_age)
                )
            ):
                self._signed_in_at[provider] = time.time()
            signed_in_at = self._signed_in_at[provider]
        if not asked or how is Reauthentication.NO_AUTH_TIME:
            return None
        return int(signed_in_at)

    # Token endpoint.

    def token(self, request: Request, provider: str) -> Response:
        form = request.form
        client = self._authenticate_client(request, provider)
        if form.get("grant_type") != "authorization_code":
            raise OAuthError(400, "unsupported_grant_type", "only authorization_code")
        with self._lock:
            grant = self._codes.pop(form.get("code", ""), None)  # single use
        if grant is None or grant.provider != provider or grant.expires_at < time.time():
            raise OAuthError(400, "invalid_grant", "unknown, used or expired code")
        if grant.client_id != client.client_id or grant.redirect_uri != form.get("redirect_uri"):
            raise OAuthError(400, "invalid_grant", "redirect_uri or client does not match")
        verifier = form.get("code_verifier", "")
        if not 43 <= len(verifier) <= 128 or not secrets.compare_digest(
            s256(verifier), grant.code_challenge
        ):
            raise OAuthError(400, "invalid_grant", "code_verifier does not match")
        access_token = secrets.token_urlsafe(32)
        with self._lock:
            self._access_tokens[access_token] = _Access(provider, grant.user, grant.scope)
            tamper = self._tamper.pop(provider, None)
        body = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": TOKEN_TTL,
            "scope": " ".join(sorted(grant.scope)),
            "id_token": self._id_token(grant, client, tamper),
        }
        if provider == LINE:
            body["refresh_token"] = secrets.token_urlsafe(32)
        return Response(200, body, {"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _authenticate_client(self, request: Request, provider: str) -> Client:
        client = self.clients[provider]
        client_id, secret = request.client_credentials()
        if client_id != client.client_id or not secrets.compare_digest(secret, client.secret):
            raise OAuthError(401, "invalid_client", "client authentication failed")
        return client

    def _id_token(self, grant: _Grant, client: Client, tamper: Tamper | None) -> str:
        claims = self._id_token_claims(grant, client)
        if tamper is Tamper.NONCE:
            claims["nonce"] = secrets.token_urlsafe(16)
        elif tamper is Tamper.AUDIENCE:
            claims["aud"] = "someone-elses-client"
        elif tamper is Tamper.EXPIRED:
            claims["iat"], claims["exp"] = claims["iat"] - 2 * TOKEN_TTL, claims["iat"] - TOKEN_TTL
        forged = tamper is Tamper.SIGNATURE
        if grant.provider == LINE:
            secret = secrets.token_hex(16) if forged else client.secret
            return jwt.encode({"alg": "HS256", "typ": "JWT"}, claims, OctKey.import_key(secret))
        key = self._forger_key if forged else self._signing_key
        return jwt.encode({"alg": "RS256", "typ": "JWT", "kid": KEY_ID}, claims, key)

    def _id_token_claims(self, grant: _Grant, client: Client) -> dict:
        user, now = grant.user, int(time.time())
        claims: dict = {
            "iss": self.issuer(grant.provider),
            "sub": user.sub,
            "aud": client.client_id,
            "iat": now,
            "exp": now + TOKEN_TTL,
        }
        if grant.nonce:
            claims["nonce"] = grant.nonce
        if grant.auth_time is not None:
            claims["auth_time"] = grant.auth_time
        if "profile" in grant.scope:
            claims.update(name=user.name, picture=user.picture)
        if grant.provider == LINE:
            claims["amr"] = ["linesso"]
            # LINE hands out the email (with the channel's permission) but never says
            # whether it was verified.
            if "email" in grant.scope and user.email:
                claims["email"] = user.email
            return claims
        if grant.provider == GOOGLE:
            claims["azp"] = client.client_id
        if "email" in grant.scope and user.email:
            claims.update(email=user.email, email_verified=user.email_verified)
        return claims

    # Resource endpoints.

    def userinfo(self, request: Request, provider: str) -> Response:
        with self._lock:
            access = self._access_tokens.get(request.bearer_token() or "")
        if access is None or access.provider != provider:
            return Response(
                401,
                {"error": "invalid_token"},
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        user, with_email = access.user, "email" in access.scope and access.user.email
        if provider == LINE:
            body = {"userId": user.sub, "displayName": user.name, "pictureUrl": user.picture}
        elif provider == GOOGLE:
            body = {"id": user.sub, "name": user.name, "picture": user.picture}
            if with_email:
                body.update(email=user.email, verified_email=user.email_verified)
        else:
            body = {"sub": user.sub, "name": user.name}
            if with_email:
                body.update(email=user.email, email_verified=user.email_verified)
        return Response(200, body)

    def line_verify(self, request: Request) -> Response:
        """LINE's ID token verification endpoint, with LINE's error descriptions."""
        form, client = request.form, self.clients[LINE]

        def invalid(description: str) -> Response:
            return Response(400, {"error": "invalid_request", "error_description": description})

        if form.get("client_id") != client.client_id:
            return invalid("Invalid IdToken Audience.")
        try:
            claims = jwt.decode(
                form.get("id_token", ""), OctKey.import_key(client.secret), algorithms=["HS256"]
            ).claims
        except (JoseError, ValueError):
            return invalid("Invalid IdToken.")
        if claims.get("iss") != self.issuer(LINE):
            return invalid("Invalid IdToken Issuer.")
        if claims.get("aud") != client.client_id:
            return invalid("Invalid IdToken Audience.")
        if claims.get("exp", 0) < time.time():
            return invalid("IdToken expired.")
        if "nonce" in form and claims.get("nonce") != form["nonce"]:
            return invalid("Invalid IdToken Nonce.")
        return Response(200, claims)

    def google_certs(self, request: Request) -> Response:
        return Response(200, {KEY_ID: self._certificate})

    def oidc_jwks(self, request: Request, provider: str) -> Response:
        jwk = self._signing_key.as_dict(private=False, kid=KEY_ID, use="sig", alg="RS256")
        return Response(200, {"keys": [jwk]})

    def oidc_configuration(self, request: Request, provider: str) -> Response:
        issuer = self.issuer(provider)
        return Response(
            200,
            {
                "issuer": issuer,
                "authorization_endpoint": f"{issuer}/authorize",
                "token_endpoint": f"{issuer}/token",
                "userinfo_endpoint": f"{issuer}/userinfo",
                "jwks_uri": f"{issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "profile", "email"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "client_secret_basic",
                ],
                "code_challenge_methods_supported": ["S256"],
                "claims_supported": [
                    "sub",
                    "auth_time",
                    "nonce",
                    "name",
                    "picture",
                    "email",
                    "email_verified",
                ],
            },
        )

    def _client(self, provider: str) -> Client:
        try:
            return self.clients[provider]
        except KeyError:
            raise ValueError(f"unknown provider {provider!r}: add_oidc_provider() it") from None


def _redirect(redirect_uri: str, params: dict) -> Response:
    query = urlencode({key: value for key, value in params.items() if value is not None})
    separator = "&" if urlsplit(redirect_uri).query else "?"
    return Response(302, headers={"Location": f"{redirect_uri}{separator}{query}"})


class _Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer
    # Connections are kept between requests, as the real platforms keep them (every
    # answer carries Content-Length).
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.server.idp.connection_opened()  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        form = (
            dict(parse_qsl(body.decode(errors="replace")))
            if method == "POST" and self.headers.get_content_type() != "application/json"
            else {}
        )
        request = Request(dict(parse_qsl(url.query)), form, self.headers, body)
        response = self.server.idp.handle(method, url.path, request)  # type: ignore[attr-defined]
        if isinstance(response.body, dict):
            payload, content_type = json.dumps(response.body), "application/json"
        else:
            payload, content_type = response.body, "text/plain; charset=utf-8"
        content_type = response.content_type or content_type
        data = payload.encode()
        self.send_response(response.status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: a test's own assertions say what went wrong."""
