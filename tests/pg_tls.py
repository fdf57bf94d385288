"""A PostgreSQL server that speaks TLS, for tests: a local proxy that answers the
client's SSLRequest as PostgreSQL does ('S', then the TLS handshake, with a
self-signed certificate) and passes the decrypted stream to the machine's own
PostgreSQL over a plain connection. libpq on the client side sees a TLS server
(ssl_in_use), which this machine's PostgreSQL, without a certificate, is not."""

import select
import socket
import ssl
import struct
import tempfile
import threading
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.fakes.certificates import self_signed

_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104


def _certificate(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = self_signed(key, "localhost", days=1)
    cert_file, key_file = folder / "server.crt", folder / "server.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


class TlsPostgres:
    """Listens on 127.0.0.1:port; each connection is relayed to upstream."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._folder = tempfile.TemporaryDirectory()
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(*_certificate(Path(self._folder.name)))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._stopped = True
        self.listener.close()
        self._folder.cleanup()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _address = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        with client:
            while True:
                length, code = struct.unpack("!II", _read(client, 8))
                if length == 8 and code == _GSSENC_REQUEST:
                    client.sendall(b"N")  # no GSSAPI here: the client asks for TLS next
                    continue
                if length != 8 or code != _SSL_REQUEST:
                    return  # a plain startup: this server only speaks TLS
                client.sendall(b"S")
                break
            secure = self.context.wrap_socket(client, server_side=True)
            with secure, socket.create_connection(self.upstream) as upstream:
                _pump(secure, upstream)


def _read(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _pump(secure: ssl.SSLSocket, plain: socket.socket) -> None:
    """Both ways until either side closes; TLS records buffered by OpenSSL count as
    readable, though select() does not see them."""
    try:
        while True:
            readable = [secure] if secure.pending() else select.select([secure, plain], [], [])[0]
            if secure in readable:
                data = secure.recv(65536)
                if not data:
                    return
                plain.sendall(data)
            if plain in readable:
                data = plain.recv(65536)
                if not data:
                    return
                secure.sendall(data)
    except OSError:
        return
