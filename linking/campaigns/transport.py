"""Handing emails to the mail server, with one commit point for a batch of them.

Over SMTP the server takes responsibility for a message only when it receives the
final "." of DATA and answers 250; a connection that drops before that "." leaves
no message behind. A sender keeps several connections open (CAMPAIGN_SMTP_CONNECTIONS)
and sends a batch of emails, one per connection, in lock-step: MAIL FROM on every
connection, then the replies; RCPT TO; DATA; then each message's content except the
final ".". Then the caller marks "sent" the whole batch in one database statement,
and the COMMIT of that and the "." of each email it marked leave together
(commit_point.py; in one system call on plain connections). A connection whose
email was not marked (another sender owns it, or the address was suppressed
meanwhile) is closed, which discards the unfinished message. So:

- a crash before that commit point leaves no message at the server and nothing
  committed: the deliveries are sent again later;
- a crash after it has sent them and committed them: nothing goes out twice;
- where the COMMIT must go first (commit_point.py says where), a crash between
  it and the "."s loses the emails of that batch whose "." was not yet written (at
  most one batch): marked sent, never sent again. Never twice.

Lock-step across connections pays one round trip per SMTP command for the whole
batch instead of per email; where the server offers PIPELINING (RFC 2920), MAIL,
RCPT and DATA go out together.

Other email backends (the development file mailbox, Django's test outbox) get each
committed email after the commit.
"""

import contextlib
import re
import smtplib
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import get_connection
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend
from django.core.mail.message import EmailMessage

from linking.campaigns import commit_point

_LEADING_DOT = re.compile(rb"(?m)^\.")
_DOT = b".\r\n"


class ConnectionLost(Exception):
    """No connection to the mail server could be opened: nothing of the batch was
    committed or sent."""


@dataclass
class Item:
    """One email of a batch. Over SMTP: sender, recipient and data (the message's
    bytes); other backends: message."""

    key: int
    sender: str = ""
    recipient: str = ""
    data: bytes = b""
    message: EmailMessage | None = None


@dataclass
class Outcome:
    """What became of one email of a batch.

    status: "sent" (the server took it), "abandoned" (not committed: nothing sent),
    "temporary" (4xx: try again later), "dropped" (the connection broke before the
    commit: nothing was sent; try again soon, on a new connection),
    "permanent" (5xx), or "unknown" (the connection broke after the "." may have
    been sent; the delivery stays sent). committed: the commit marked it sent.
    """

    status: str
    committed: bool = False
    error: str = ""
    rejected_recipient: bool = False


class Transport:
    """Connections for a sender run; use as a context manager."""

    def __init__(self, connections: int | None = None) -> None:
        self.size = max(1, connections or settings.CAMPAIGN_SMTP_CONNECTIONS)
        probe = get_connection()
        self.smtp = isinstance(probe, SmtpBackend)
        if not self.smtp:
            self.size = 100  # no connections to hold open: any batch size will do
        self.backends: list = [probe] + [
            get_connection() for _ in range(self.size - 1 if self.smtp else 0)
        ]
        self._order: dict[int, int] = {}

    def __enter__(self) -> "Transport":
        return self

    def __exit__(self, exc_type, *exc_info) -> None:
        for backend in self.backends:
            if not self.smtp:
                with contextlib.suppress(Exception):
                    backend.close()
                continue
            connection, backend.connection = backend.connection, None
            if connection is None:
                continue
            # After an error a connection may be inside DATA: close it without QUIT,
            # which the server would take as part of the message.
            if exc_type is None:
                with contextlib.suppress(OSError, smtplib.SMTPException):
                    connection.quit()
            with contextlib.suppress(OSError):
                connection.close()

    def send(
        self,
        items: Sequence[Item],
        commit: Callable[[list[Item]], tuple[set[int], commit_point.Pending]],
    ) -> dict[int, Outcome]:
        """Send up to `size` emails; commit(ready) is called once with the emails the
        server is ready to finish and returns the keys marked sent, the only ones
        finished, and their transaction, whose COMMIT goes out with their "."s
        (commit_point.py). Raises ConnectionLost if no connection could be opened."""
        if not self.smtp:
            return self._send_other(items, commit)
        if len(items) > self.size:
            raise ValueError("more emails than connections")
        self._order = {item.key: index for index, item in enumerate(items)}
        connections = [self._connection(index) for index in range(len(items))]
        outcomes: dict[int, Outcome] = {}
        live = list(zip(items, connections, strict=True))
        live = self._envelope(live, outcomes)
        ready = []
        for item, connection in live:
            try:
                payload = _LEADING_DOT.sub(b"..", item.data)
                if not payload.endswith(b"\r\n"):
                    payload += b"\r\n"
                connection.send(payload)
                ready.append((item, connection))
            except (smtplib.SMTPException, OSError) as exc:
                outcomes[item.key] = self._broken(item, exc)
        try:
            committed, pending = commit([item for item, _connection in ready])
        except BaseException:
            # No "." after a failed commit: close the connections inside DATA, which
            # discards those messages (if the commit did reach the database, they
            # are lost, never sent twice).
            for item, _connection in ready:
                self._drop(item)
            raise
        finishing = [(item, connection) for item, connection in ready if item.key in committed]
        plain = [pair for pair in finishing if not isinstance(pair[1].sock, ssl.SSLSocket)]
        dots = [(connection.sock.fileno(), _DOT) for _item, connection in plain]
        try:
            results = pending.send(dots)
        except BaseException:
            # The COMMIT could not be sent (so no "." was): as after a failed commit,
            # and the database connection is given up, its COMMIT's answer unread.
            pending.abandon()
            for item, _connection in ready:
                self._drop(item)
            raise
        try:
            self._finish(finishing, plain, results, outcomes)
        except BaseException:
            # Cut short after the "."s went (a time limit): the COMMIT's answer is
            # still read, so that a failed one is recorded, not sent again later.
            with contextlib.suppress(Exception):
                pending.answer()
            for item, _connection in ready:
                self._drop(item)
            raise
        pending.answer()
        for item, _connection in ready:
            if item.key not in committed:
                # Inside DATA a transaction cannot be reset: closing the connection
                # discards the unfinished message.
                self._drop(item)
                outcomes[item.key] = Outcome("abandoned")
        for item, connection in finishing:
            if item.key in outcomes:
                continue
            try:
                code, reply = connection.getreply()
            except (smtplib.SMTPException, OSError) as exc:
                outcomes[item.key] = self._broken(item, exc, committed=True)
                continue
            outcomes[item.key] = _classify(code, reply, committed=True)
        return outcomes

    def _finish(self, finishing: list, plain: list, results: list, outcomes) -> None:
        """After the COMMIT and the plain connections' final "."s were sent (with the
        results of those writes): what is left of them, and the TLS connections'
        "."s (a TLS connection's bytes are for its own layer to write, after the
        COMMIT). A connection that broke gets "unknown"."""
        left = {item.key: _DOT for item, _connection in finishing}
        for (item, _connection), result in zip(plain, results, strict=True):
            if isinstance(result, BlockingIOError):
                continue  # no room after all: written below, as a TLS one is
            if isinstance(result, OSError):
                outcomes[item.key] = self._broken(item, result, committed=True)
                del left[item.key]
            else:
                left[item.key] = _DOT[result:]
        for item, connection in finishing:
            if left.get(item.key):
                try:
                    connection.send(left[item.key])
                except (smtplib.SMTPException, OSError) as exc:
                    outcomes[item.key] = self._broken(item, exc, committed=True)

    def _envelope(self, live: list, outcomes: dict[int, Outcome]) -> list:
        """MAIL, RCPT and DATA on every connection; those that reached 354."""
        pipelining = all(connection.has_extn("pipelining") for _item, connection in live)
        commands = [
            lambda item: ("mail", f"FROM:{smtplib.quoteaddr(item.sender)}", (250,)),
            lambda item: ("rcpt", f"TO:{smtplib.quoteaddr(item.recipient)}", (250, 251)),
            lambda item: ("data", "", (354,)),
        ]
        stages = [commands] if pipelining else [[command] for command in commands]
        for stage in stages:
            for item, connection in live:
                try:
                    for command in stage:
                        name, argument, _ok = command(item)
                        connection.putcmd(name, argument)
                except UnicodeEncodeError as exc:
                    outcomes[item.key] = Outcome("permanent", error=f"cannot encode: {exc}")
                    self._drop(item)
                except (smtplib.SMTPException, OSError) as exc:
                    outcomes[item.key] = self._broken(item, exc)
            still = []
            for item, connection in live:
                if item.key in outcomes:
                    continue
                try:
                    failure = None
                    for command in stage:
                        name, _argument, ok = command(item)
                        code, reply = connection.getreply()
                        if failure is None and code not in ok:
                            failure = _classify(code, reply, rcpt=name == "rcpt")
                        elif failure is not None and name == "data" and code == 354:
                            # A pipelined DATA accepted after a refused command: the
                            # server waits for content; close the connection.
                            self._drop(item)
                except (smtplib.SMTPException, OSError) as exc:
                    outcomes[item.key] = self._broken(item, exc)
                    continue
                if failure is not None:
                    outcomes[item.key] = failure
                    if self.backends[self._index(item)].connection is not None:
                        with contextlib.suppress(smtplib.SMTPException, OSError):
                            connection.rset()
                    continue
                still.append((item, connection))
            live = still
        return live

    def _send_other(self, items: Sequence[Item], commit) -> dict[int, Outcome]:
        committed, pending = commit(list(items))
        pending.send([])
        pending.answer()
        outcomes = {}
        for item in items:
            if item.key not in committed:
                outcomes[item.key] = Outcome("abandoned")
                continue
            try:
                self.backends[0].send_messages([item.message])
            except Exception as exc:  # any backend: recorded as unknown, never resent
                outcomes[item.key] = Outcome("unknown", committed=True, error=str(exc))
                continue
            outcomes[item.key] = Outcome("sent", committed=True)
        return outcomes

    def _connection(self, index: int) -> smtplib.SMTP:
        backend = self.backends[index]
        if backend.connection is None:
            try:
                backend.open()
                backend.connection.ehlo_or_helo_if_needed()
            except (OSError, smtplib.SMTPException) as exc:
                with contextlib.suppress(OSError):
                    if backend.connection is not None:
                        backend.connection.close()
                backend.connection = None
                raise ConnectionLost(str(exc)) from exc
            sock = backend.connection.sock
            if sock is not None:
                # The final "." is a small write right after the message: without
                # TCP_NODELAY, Nagle's algorithm holds it until the server's delayed ACK.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return backend.connection

    def _index(self, item: Item) -> int:
        return self._order[item.key]

    def _broken(self, item: Item, exc: BaseException, *, committed: bool = False) -> Outcome:
        self._drop(item)
        if committed:
            return Outcome("unknown", committed=True, error=f"connection lost after DATA: {exc}")
        return Outcome("dropped", error=f"connection lost: {exc}")

    def _drop(self, item: Item) -> None:
        backend = self.backends[self._index(item)]
        connection, backend.connection = backend.connection, None
        if connection is not None:
            with contextlib.suppress(OSError):
                connection.close()


def _classify(code: int, reply: bytes, *, rcpt: bool = False, committed: bool = False) -> Outcome:
    if code == 250:
        return Outcome("sent", committed=committed)
    text = f"{code} {reply.decode('utf-8', 'replace')}"
    if code == -1 or 400 <= code < 500:
        return Outcome("temporary", committed=committed, error=text)
    return Outcome("permanent", committed=committed, error=text, rejected_recipient=rcpt)
