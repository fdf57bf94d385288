"""Real servers standing in for a group service's webhook receiver, and the means
to prove that a refused outbound request made no connection at all."""

import ipaddress
import socket
import ssl
import sys
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from standardwebhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified: bool
    status: int


@dataclass
class WebhookReceiver:
    """Answers POSTs with the next status in `answers` (then 200 for ever) and
    records every request. With `secret` set it verifies each one as a receiver
    does, with the standardwebhooks library, and answers 401 to a bad signature."""

    answers: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    secret: str | None = None
    tls: ssl.SSLContext | None = None
    host: str = "127.0.0.1"
    redirect_to: str | None = None  # sent as Location with every answer

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                headers = dict(self.headers.items())
                with receiver._lock:
                    verified = receiver._verify(body, headers)
                    status = receiver.answers.pop(0) if receiver.answers else 200
                    status = status if verified else 401
                    receiver.received.append(Received(headers, body, verified, status))
                self.send_response(status)
                if receiver.redirect_to:
                    self.send_header("Location", receiver.redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _verify(self, body: bytes, headers: dict[str, str]) -> bool:
        if self.secret is None:
            return False
        try:
            Webhook(self.secret).verify(body, headers)
        except WebhookVerificationError:
            return False
        return True

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{self.host}:{self.port}/hooks/unified-id"

    def start(self) -> "WebhookReceiver":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def count(self) -> int:
        with self._lock:
            return len(self.received)


def tls_context_for(name: str, folder: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context with a self-signed certificate for `name` (in its
    subjectAltName, as clients check), and the certificate file to trust."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / f"{name}.crt", folder / f"{name}.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context, cert_file


class Listener:
    """A TCP listener that counts the connections it accepts, and closes them."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.create_server((host, 0), family=family)
        self.port = self._socket.getsockname()[1]
        self.accepts = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _address = self._socket.accept()
            except OSError:
                return
            self.accepts += 1
            connection.close()

    def close(self) -> None:
        self._socket.close()


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@dataclass
class Attempt:
    event: str
    target: object


class NetworkGuard:
    """Python's audit hooks see every socket.connect and socket.getaddrinfo before
    it happens. While a guard is on it records each one (of any thread) and refuses
    those not in `allowed` (connect addresses, lookup names) with an OSError, so a
    request that should never leave sends nothing, not even a DNS query."""

    _current: "NetworkGuard | None" = None
    _installed = False

    def __init__(self, *, connect_to=(), look_up=()) -> None:
        self.allowed_connects = set(connect_to)
        self.allowed_lookups = set(look_up)
        self.attempts: list[Attempt] = []
        self.lookups: list[str] = []

    def __enter__(self) -> "NetworkGuard":
        if not NetworkGuard._installed:
            sys.addaudithook(NetworkGuard._hook)
            NetworkGuard._installed = True
        NetworkGuard._current = self
        return self

    def __exit__(self, *exc) -> None:
        NetworkGuard._current = None

    @staticmethod
    def _hook(event: str, args: tuple) -> None:
        guard = NetworkGuard._current
        if guard is None:
            return
        if event == "socket.connect":
            address = args[1]
            target = (address[0], address[1]) if isinstance(address, tuple) else address
            if target not in guard.allowed_connects:
                guard.attempts.append(Attempt(event, target))
                raise ConnectionRefusedError(f"test guard: no connection to {target}")
        elif event == "socket.getaddrinfo":
            name = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
            guard.lookups.append(name)
            if name not in guard.allowed_lookups and not _is_ip(name):
                guard.attempts.append(Attempt(event, name))
                raise socket.gaierror(socket.EAI_NONAME, f"test guard: no lookup of {name}")
