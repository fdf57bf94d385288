"""A TCP cable between the site and a real service (PostgreSQL, Redis) that a test
can pull out and plug back in: pulled, every connection it carried is closed and
new ones are refused, as when the service goes away; plugged back, on the same
port, connections reach the service again. With no service behind it, it is a
service that stopped answering: connections are accepted and never answered."""

import contextlib
import socket
import socketserver
import threading

from tests.campaign_support import free_port


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, port: int, cable: "Cable") -> None:
        self.cable = cable
        super().__init__(("127.0.0.1", port), _Carry)


class _Carry(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        cable = self.server.cable
        if cable.service_port is None:
            cable.hold(self.request)
            cable.pulled.wait()
            return
        upstream = socket.create_connection(("127.0.0.1", cable.service_port))
        cable.hold(self.request, upstream)
        back = threading.Thread(target=_pump, args=(upstream, self.request), daemon=True)
        back.start()
        _pump(self.request, upstream)
        back.join()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)


class Cable:
    def __init__(self, service_port: int | None) -> None:
        self.service_port = service_port
        self.port = free_port()
        self.pulled = threading.Event()
        self._server: _Server | None = None
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()

    def hold(self, *connections: socket.socket) -> None:
        with self._lock:
            self._held += connections

    def plug(self) -> None:
        self.pulled.clear()
        self._server = _Server(self.port, self)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def pull(self) -> None:
        self.pulled.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            held, self._held = self._held, []
        for connection in held:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()

    def __enter__(self) -> "Cable":
        self.plug()
        return self

    def __exit__(self, *exc) -> None:
        self.pull()
