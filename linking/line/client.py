"""Every call to LINE's platform goes through here: the Messaging API through the
official SDK (host LINE_API_URL, the Official Account's access token, a timeout on
each call), and LINE Login's friendship status. Failures come out as LineError, so
callers handle one exception and never a library's."""

import functools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlencode

import requests
import urllib3
from django.conf import settings
from linebot.v3.messaging import (
    ApiClient,
    ApiException,
    Configuration,
    MessagingApi,
    PushMessageRequest,
    ReplyMessageRequest,
    TextMessage,
)

# Namespace of retry keys: the same parts always give the same key.
_RETRY_KEYS = uuid.UUID("6b8f0f3e-2a51-4d7c-9a43-52c1d3f1e0a7")


class LineError(Exception):
    """LINE refused a call (status: its HTTP status) or could not be reached (0)."""

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.status = status

    @property
    def retryable(self) -> bool:
        """No answer, or LINE's own trouble: the same call may succeed later."""
        return self.status == 0 or self.status == 429 or self.status >= 500


class Push(StrEnum):
    SENT = "sent"
    # LINE had accepted this retry key before (409): sent once already, not again.
    ALREADY_SENT = "already_sent"


@dataclass(frozen=True)
class Profile:
    line_user_id: str
    display_name: str


def retry_key(*parts: object) -> str:
    """An X-Line-Retry-Key (a UUID) derived from what identifies one message, so a
    retry after a crash carries the same key and LINE delivers it at most once."""
    return str(uuid.uuid5(_RETRY_KEYS, "\x1f".join(str(part) for part in parts)))


@functools.cache
def _api_client(host: str, access_token: str) -> ApiClient:
    """One per process and settings: its connections to LINE are kept between calls,
    so a campaign's pushes do not each open (and TLS-handshake) a connection."""
    configuration = Configuration(host=host, access_token=access_token)
    configuration.retries = 1  # a refused connection once more; a POST is never re-sent
    return ApiClient(configuration)


# A forked worker opens its own connections rather than share its parent's.
os.register_at_fork(after_in_child=_api_client.cache_clear)


@contextmanager
def messaging_api() -> Iterator[MessagingApi]:
    api_client = _api_client(settings.LINE_API_URL, settings.LINE_MESSAGING_ACCESS_TOKEN)
    try:
        yield MessagingApi(api_client)
    except ApiException as exc:
        raise LineError(
            f"LINE answered {exc.status}: {exc.body!r}", status=exc.status or 0
        ) from exc
    except urllib3.exceptions.HTTPError as exc:
        raise LineError(f"LINE could not be reached: {exc}") from exc


def _timeout() -> float:
    return float(settings.LINE_API_TIMEOUT_SECONDS)


def issue_link_token(*, line_user_id: str) -> str:
    with messaging_api() as api:
        return api.issue_link_token(line_user_id, _request_timeout=_timeout()).link_token


def reply_text(*, reply_token: str, text: str) -> None:
    request = ReplyMessageRequest(replyToken=reply_token, messages=[TextMessage(text=text)])
    with messaging_api() as api:
        api.reply_message(request, _request_timeout=_timeout())


def push_text(*, line_user_id: str, text: str, retry_key: str) -> Push:
    """Push one text message. With the same retry_key LINE delivers it once within
    24 hours, whatever happens to our side between tries."""
    request = PushMessageRequest(to=line_user_id, messages=[TextMessage(text=text)])
    try:
        with messaging_api() as api:
            api.push_message(request, x_line_retry_key=retry_key, _request_timeout=_timeout())
    except LineError as exc:
        if exc.status == 409:
            return Push.ALREADY_SENT
        raise
    return Push.SENT


def profile(*, line_user_id: str) -> Profile:
    with messaging_api() as api:
        answer = api.get_profile(line_user_id, _request_timeout=_timeout())
    return Profile(line_user_id=answer.user_id, display_name=answer.display_name)


def is_friend(*, login_access_token: str) -> bool:
    """Whether the LINE user who signed in with LINE Login (their access token) has
    added the Official Account as a friend (LINE Login's friendship status)."""
    try:
        answer = requests.get(
            f"{settings.LINE_API_URL}/friendship/v1/status",
            headers={"Authorization": f"Bearer {login_access_token}"},
            timeout=_timeout(),
        )
    except requests.RequestException as exc:
        raise LineError(f"LINE could not be reached: {exc}") from exc
    if answer.status_code != 200:
        raise LineError(f"LINE answered {answer.status_code}", status=answer.status_code)
    try:
        return answer.json()["friendFlag"] is True
    except (ValueError, KeyError, TypeError) as exc:
        raise LineError(f"unexpected friendship answer: {answer.text[:200]!r}") from exc


def account_link_url(*, link_token: str, nonce: str) -> str:
    """LINE's account-link dialog: it binds the LINE user of link_token and sends our
    webhook an accountLink event carrying nonce."""
    query = urlencode({"linkToken": link_token, "nonce": nonce})
    return f"{settings.LINE_LOGIN_URL}/dialog/bot/accountLink?{query}"
