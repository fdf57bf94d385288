"""Helpers for the OpenID provider's tests (fixtures in tests/fixtures/oidc.py): a
sign-in at a client through Django's test client, and a group service's back-channel
logout endpoint on a real local HTTP server."""

import base64
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote_plus, urlsplit

from django.test import Client

CALLBACK = "https://store.example.jp/auth/callback"
AUTHORIZE = "/identity/o/authorize"
TOKEN = "/identity/o/api/token"


def authorize(client: Client, app, **params):
    query = {
        "client_id": app.client_id,
        "response_type": "code",
        "scope": "openid email",
        "redirect_uri": CALLBACK,
        "state": "st-1",
        "nonce": "n-1",
        **params,
    }
    return client.get(AUTHORIZE, query)


def answer_at_callback(response) -> dict:
    assert response.status_code == 302, response.content[:300]
    location = response["Location"]
    assert location.startswith(CALLBACK), location
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def authorization_code(client: Client, app, **params) -> str:
    """Authorize and consent; returns the code at the callback."""
    page = authorize(client, app, **params)
    assert page.status_code == 200, page.content[:300]
    signed = re.search(r'name="request" value="([^"]+)"', page.content.decode()).group(1)
    response = client.post(
        AUTHORIZE, {"request": signed, "scopes": ["openid", "email"], "action": "grant"}
    )
    answer = answer_at_callback(response)
    assert "error" not in answer, answer
    return answer["code"]


def basic(client_id: str, secret: str, *, encode: bool = True) -> str:
    if encode:
        client_id, secret = quote_plus(client_id), quote_plus(secret)
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def tokens_for(client: Client, app, **params) -> dict:
    """A sign-in at the client: its token response."""
    response = Client().post(
        TOKEN,
        {
            "grant_type": "authorization_code",
            "code": authorization_code(client, app, **params),
            "redirect_uri": CALLBACK,
        },
        HTTP_AUTHORIZATION=basic(app.client_id, app.secret),
    )
    assert response.status_code == 200, response.content
    return response.json()


def refresh(app, refresh_token: str):
    return Client().post(
        TOKEN,
        {"grant_type": "refresh_token", "refresh_token": refresh_token},
        HTTP_AUTHORIZATION=basic(app.client_id, app.secret),
    )


class LogoutReceiver:
    """Records the form bodies POSTed to it and answers 200."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, list[str]]] = []
        self.connections = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                receiver.bodies.append(parse_qs(self.rfile.read(length).decode()))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def verify_request(self, request, client_address) -> bool:
                receiver.connections += 1
                return True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.address}/backchannel-logout"

    def tokens(self) -> list[str]:
        return [body["logout_token"][0] for body in self.bodies]
