"""A local LINE platform for tests: the Messaging API, LINE Login's friendship status
and the account-link dialog, served by the fake IdP's HTTP server (tests/fakes/idp.py),
because on LINE too they share LINE Login's hosts: /line-api/... is api.line.me,
/line/... is access.line.me.

What it checks and answers as LINE does:
- Messaging API calls need the channel access token (else 401).
- POST /line-api/v2/bot/user/{userId}/linkToken: a link token (single use, 10 minutes).
- POST /line-api/v2/bot/message/push with X-Line-Retry-Key (a UUID): a key accepted
  in the last 24 hours is refused with 409 and x-line-accepted-request-id, and the
  message is not delivered again. A push to someone who is not a friend (never added,
  or unfollowed) is accepted (200) and not delivered, as LINE does for a blocked
  account.
- POST /line-api/v2/bot/message/reply: a reply token from a webhook event, used once
  (500, the token unspent, after fail_replies()).
- GET /line-api/v2/bot/profile/{userId}: friends only, else 404.
- GET /line-api/friendship/v1/status: with a LINE Login access token, {"friendFlag"}
  (500 after fail_friendship_status()).
- GET /line/dialog/bot/accountLink?linkToken=&nonce=: the user at the dialog (the
  token's user unless at_dialog() says otherwise) is linked: the site's webhook gets a
  signed accountLink event ("ok", or "failed" when someone else opened the link), then
  the browser goes to the chat page.
- GET /line/chat/{userId}: the chat as that user sees it: what the bot delivered.

Webhook events (follow, unfollow, message, accountLink) are signed with the channel
secret (x-line-signature: base64 HMAC-SHA256 of the body) and POSTed to webhook_url;
with no webhook_url they wait in pending(), for a test to post with the test client.
"""

import base64
import hashlib
import hmac
import html
import json
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlencode

import requests

from tests.fakes.idp import FakeIdP, Request, Response

USER_ID = r"U[0-9a-f]{32}"
LINK_TOKEN_TTL = 600
RETRY_KEY_TTL = 24 * 3600
REPLYABLE = {"follow", "message", "accountLink", "postback", "join"}
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def line_user_id() -> str:
    """A new LINE user ID: "U" and 32 hex digits."""
    return "U" + secrets.token_hex(16)


def webhook_event_id() -> str:
    """A ULID, as LINE's webhookEventId is: 48 bits of milliseconds, 80 random bits."""
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def signature(body: bytes, channel_secret: str) -> str:
    digest = hmac.new(channel_secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


@dataclass(frozen=True)
class Message:
    """A message the bot sent: kind "push" or "reply", to a LINE user."""

    kind: str
    to: str
    texts: tuple[str, ...]
    request_id: str
    retry_key: str | None
    delivered: bool


@dataclass(frozen=True)
class Call:
    """One Messaging API request and LINE's answer."""

    method: str
    path: str
    status: int
    retry_key: str | None = None


@dataclass
class _State:
    friends: dict[str, bool] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    link_tokens: dict[str, tuple[str, float]] = field(default_factory=dict)
    reply_tokens: dict[str, str] = field(default_factory=dict)
    retry_keys: dict[str, tuple[str, float]] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    pending: list[dict] = field(default_factory=list)
    webhook_answers: list[int] = field(default_factory=list)
    at_dialog: str | None = None
    friendship_down: bool = False
    replies_failing: int = 0


class FakeLinePlatform:
    """LINE's state and protocol, mounted on a FakeIdP's server."""

    def __init__(self, idp: FakeIdP) -> None:
        self.idp = idp
        self.channel_secret = secrets.token_hex(16)
        self.access_token = secrets.token_urlsafe(32)
        self.webhook_url: str | None = None
        self._lock = threading.Lock()
        self._state = _State()
        self._held_after: int | None = None
        self._holding = 0
        self._release = threading.Event()
        api, access = r"/line-api", r"/line"
        idp.mount(
            [
                ("POST", api + r"/v2/bot/user/(?P<user_id>[^/]+)/linkToken", self.link_token),
                ("POST", api + r"/v2/bot/message/push", self.push),
                ("POST", api + r"/v2/bot/message/reply", self.reply),
                ("GET", api + r"/v2/bot/profile/(?P<user_id>[^/]+)", self.profile),
                ("GET", api + r"/friendship/v1/status", self.friendship_status),
                ("GET", access + r"/dialog/bot/accountLink", self.account_link_dialog),
                ("GET", access + rf"/chat/(?P<user_id>{USER_ID})", self.chat),
            ]
        )

    @property
    def base_url(self) -> str:
        return self.idp.base_url

    # Control, for tests.

    def reset(self) -> None:
        self.release_answers()
        with self._lock:
            self._state = _State()
        self.webhook_url = None

    def set_friend(self, user_id: str, is_friend: bool = True, *, name: str = "") -> None:
        """Whether user_id has the Official Account as a friend, with no webhook event."""
        with self._lock:
            self._state.friends[user_id] = is_friend
            self._state.names[user_id] = name or self._state.names.get(user_id, "LINE user")

    def at_dialog(self, user_id: str | None) -> None:
        """Who opens the next account-link dialog (None: the link token's own user)."""
        with self._lock:
            self._state.at_dialog = user_id

    def fail_friendship_status(self) -> None:
        """LINE's friendship status answers 500 until reset()."""
        with self._lock:
            self._state.friendship_down = True

    def fail_replies(self, count: int) -> None:
        """The next count replies answer 500 (LINE's own trouble), their tokens unspent."""
        with self._lock:
            self._state.replies_failing = count

    def follow(self, user_id: str, *, name: str = "") -> dict:
        """user_id adds the Official Account: a follow event, sent."""
        self.set_friend(user_id, True, name=name)
        return self.send(self.event("follow", user_id))

    def unfollow(self, user_id: str) -> dict:
        """user_id blocks the Official Account: an unfollow event, sent."""
        self.set_friend(user_id, False)
        return self.send(self.event("unfollow", user_id))

    def say(self, user_id: str, text: str) -> dict:
        """user_id sends the bot a text message: a message event, sent."""
        event = self.event("message", user_id)
        event["message"] = {"id": str(secrets.randbits(60)), "type": "text", "text": text}
        event["message"]["quoteToken"] = secrets.token_urlsafe(16)
        return self.send(event)

    def event(self, kind: str, user_id: str) -> dict:
        """A webhook event as LINE builds it, with a reply token where LINE gives one."""
        event: dict = {
            "type": kind,
            "mode": "active",
            "timestamp": int(time.time() * 1000),
            "source": {"type": "user", "userId": user_id},
            "webhookEventId": webhook_event_id(),
            "deliveryContext": {"isRedelivery": False},
        }
        if kind == "follow":
            event["follow"] = {"isUnblocked": False}
        if kind in REPLYABLE:
            token = secrets.token_hex(16)
            with self._lock:
                self._state.reply_tokens[token] = user_id
            event["replyToken"] = token
        return event

    def signed(self, events: list[dict], *, secret: str | None = None) -> tuple[bytes, dict]:
        """The body and headers of a webhook request carrying events."""
        body = json.dumps(
            {"destination": "U" + "0" * 32, "events": events}, ensure_ascii=False
        ).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "x-line-signature": signature(body, secret or self.channel_secret),
        }
        return body, headers

    def send(self, event: dict) -> dict:
        """POST one event to webhook_url (or keep it in pending()); returns the event."""
        if self.webhook_url is None:
            with self._lock:
                self._state.pending.append(event)
            return event
        body, headers = self.signed([event])
        answer = requests.post(self.webhook_url, data=body, headers=headers, timeout=10)
        with self._lock:
            self._state.webhook_answers.append(answer.status_code)
        return event

    def pending(self) -> list[dict]:
        """Events waiting for a test to deliver them; taken."""
        with self._lock:
            events, self._state.pending = self._state.pending, []
        return events

    def messages(self, to: str | None = None, *, delivered: bool = True) -> list[Message]:
        """What the bot sent (to one user), delivered or (delivered=False) not."""
        with self._lock:
            return [
                message
                for message in self._state.messages
                if message.delivered is delivered and (to is None or message.to == to)
            ]

    def calls(self, path: str | None = None) -> list[Call]:
        """Messaging API requests received (those to one path pattern)."""
        with self._lock:
            calls = list(self._state.calls)
        return [call for call in calls if path is None or re.fullmatch(path, call.path)]

    def webhook_answers(self) -> list[int]:
        """The site's HTTP statuses for the events sent to webhook_url."""
        with self._lock:
            return list(self._state.webhook_answers)

    def dialog_url(self, link_token: str, nonce: str) -> str:
        query = urlencode({"linkToken": link_token, "nonce": nonce})
        return f"{self.base_url}/line/dialog/bot/accountLink?{query}"

    def chat_url(self, user_id: str) -> str:
        return f"{self.base_url}/line/chat/{user_id}"

    # The Messaging API.

    def _authorized(self, request: Request) -> bool:
        return secrets.compare_digest(request.bearer_token() or "", self.access_token)

    def _answer(self, request: Request, path: str, response: Response, method: str = "POST"):
        with self._lock:
            self._state.calls.append(
                Call(method, path, response.status, request.headers.get("X-Line-Retry-Key"))
            )
        return response

    @staticmethod
    def _unauthorized() -> Response:
        return Response(
            401,
            {
                "message": "Authentication failed. Confirm that the access token in the "
                "authorization header is valid."
            },
        )

    @staticmethod
    def _json(request: Request) -> dict | None:
        try:
            body = json.loads(request.body)
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def link_token(self, request: Request, user_id: str) -> Response:
        path = f"/v2/bot/user/{user_id}/linkToken"
        if not self._authorized(request):
            return self._answer(request, path, self._unauthorized())
        if not re.fullmatch(USER_ID, user_id):
            return self._answer(request, path, Response(400, {"message": "Invalid user ID"}))
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._state.link_tokens[token] = (user_id, time.time() + LINK_TOKEN_TTL)
        return self._answer(request, path, Response(200, {"linkToken": token}))

    def push(self, request: Request) -> Response:
        path = "/v2/bot/message/push"
        if not self._authorized(request):
            return self._answer(request, path, self._unauthorized())
        body = self._json(request)
        texts = _texts(body)
        to = (body or {}).get("to", "")
        if texts is None or not re.fullmatch(USER_ID, str(to)):
            return self._answer(
                request, path, Response(400, {"message": "The request body has 1 error(s)"})
            )
        retry_key = request.headers.get("X-Line-Retry-Key")
        if retry_key is not None and not _is_uuid(retry_key):
            return self._answer(
                request,
                path,
                Response(
                    400, {"message": "The value for the 'X-Line-Retry-Key' header is invalid"}
                ),
            )
        request_id = str(uuid.uuid4())
        with self._lock:
            accepted = self._state.retry_keys.get(retry_key or "")
            if accepted and accepted[1] > time.time() - RETRY_KEY_TTL:
                response = Response(
                    409,
                    {"message": "The retry key is already accepted", "sentMessages": []},
                    {"x-line-accepted-request-id": accepted[0], "x-line-request-id": request_id},
                )
            else:
                if retry_key:
                    self._state.retry_keys[retry_key] = (request_id, time.time())
                delivered = self._state.friends.get(to, False)
                self._state.messages.append(
                    Message("push", to, texts, request_id, retry_key, delivered)
                )
                response = Response(
                    200, {"sentMessages": _sent(texts)}, {"x-line-request-id": request_id}
                )
        if response.status == 200:
            self._hold_answer()
        return self._answer(request, path, response)

    # Held answers (campaign tests): LINE took a push, its answer never came back.

    def hold_answers_after(self, count: int) -> None:
        """Pushes after the count-th are taken (delivered to a friend, the retry key
        remembered) but LINE's answer waits until release_answers(), at most a minute:
        a sender killed meanwhile never learns they were taken."""
        with self._lock:
            self._held_after = count
            self._release = threading.Event()

    def release_answers(self) -> None:
        with self._lock:
            self._held_after = None
            self._release.set()

    def held(self) -> int:
        """Answers held now."""
        with self._lock:
            return self._holding

    def _hold_answer(self) -> None:
        with self._lock:
            pushes = sum(message.kind == "push" for message in self._state.messages)
            if self._held_after is None or pushes <= self._held_after:
                return
            self._holding += 1
            release = self._release
        release.wait(60)
        with self._lock:
            self._holding -= 1

    def reply(self, request: Request) -> Response:
        path = "/v2/bot/message/reply"
        if not self._authorized(request):
            return self._answer(request, path, self._unauthorized())
        with self._lock:
            failing, self._state.replies_failing = (
                self._state.replies_failing,
                max(self._state.replies_failing - 1, 0),
            )
        if failing:
            return self._answer(request, path, Response(500, {"message": "Internal error"}))
        body = self._json(request)
        texts = _texts(body)
        with self._lock:
            to = self._state.reply_tokens.pop(str((body or {}).get("replyToken")), None)
        if texts is None or to is None:
            return self._answer(request, path, Response(400, {"message": "Invalid reply token"}))
        request_id = str(uuid.uuid4())
        with self._lock:
            self._state.messages.append(Message("reply", to, texts, request_id, None, True))
        return self._answer(
            request,
            path,
            Response(200, {"sentMessages": _sent(texts)}, {"x-line-request-id": request_id}),
        )

    def profile(self, request: Request, user_id: str) -> Response:
        path = f"/v2/bot/profile/{user_id}"
        if not self._authorized(request):
            return self._answer(request, path, self._unauthorized(), "GET")
        with self._lock:
            friend, name = self._state.friends.get(user_id), self._state.names.get(user_id)
        if not friend:
            return self._answer(request, path, Response(404, {"message": "Not found"}), "GET")
        body = {"userId": user_id, "displayName": name, "language": "ja"}
        return self._answer(request, path, Response(200, body), "GET")

    def friendship_status(self, request: Request) -> Response:
        user_id = self.idp.line_login_user(request.bearer_token() or "")
        with self._lock:
            if self._state.friendship_down:
                return Response(500, {"message": "Internal server error"})
        if user_id is None:
            return Response(401, {"error": "invalid_token", "error_description": "invalid token"})
        with self._lock:
            return Response(200, {"friendFlag": self._state.friends.get(user_id, False)})

    # access.line.me: the account-link dialog and the chat.

    def account_link_dialog(self, request: Request) -> Response:
        token, nonce = request.query.get("linkToken", ""), request.query.get("nonce", "")
        with self._lock:
            user_id, expires_at = self._state.link_tokens.pop(token, (None, 0.0))
            at_dialog = self._state.at_dialog or user_id
        if user_id is None or expires_at < time.time() or not nonce:
            return Response(400, "The link token is invalid or has expired.")
        event = self.event("accountLink", user_id)
        result = "ok" if at_dialog == user_id else "failed"
        event["link"] = {"result": result, "nonce": nonce}
        self.send(event)
        return Response(302, headers={"Location": self.chat_url(user_id)})

    def chat(self, request: Request, user_id: str) -> Response:
        items = "".join(
            f"<li>{_linked(text)}</li>"
            for message in self.messages(user_id)
            for text in message.texts
        )
        page = (
            '<!doctype html><html lang="ja"><head><meta charset="utf-8">'
            "<title>LINE</title></head><body><h1>LINE</h1>"
            f'<ul id="chat">{items}</ul></body></html>'
        )
        return Response(200, page, content_type="text/html; charset=utf-8")


def _texts(body: dict | None) -> tuple[str, ...] | None:
    messages = (body or {}).get("messages")
    if not isinstance(messages, list) or not 1 <= len(messages) <= 5:
        return None
    texts = [m.get("text") for m in messages if isinstance(m, dict) and m.get("type") == "text"]
    if len(texts) != len(messages) or not all(isinstance(t, str) and t for t in texts):
        return None
    return tuple(texts)


def _sent(texts: tuple[str, ...]) -> list[dict]:
    return [
        {"id": str(secrets.randbits(60)), "quoteToken": secrets.token_urlsafe(16)} for _ in texts
    ]


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _linked(text: str) -> str:
    """A chat message as LINE shows it: its URLs tappable."""
    return re.sub(
        r"https?://\S+", lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', html.escape(text)
    )
