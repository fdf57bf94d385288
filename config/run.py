"""`make run`: the web server, a Celery worker and Celery beat in one terminal.

Ctrl-C (or SIGTERM) stops all three. A child that dies is started again, after 1 s,
then twice as long each time it dies again within a minute, up to 30 s.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

DEFAULT_PORT = 8000
FIRST_DELAY = 1.0
MAX_DELAY = 30.0
STEADY_SECONDS = 60.0  # a child that ran this long starts over at FIRST_DELAY
LOOPBACK = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "::", ""}  # noqa: S104


def addresses(environ: Mapping[str, str]) -> tuple[str, str]:
    """(where runserver listens, the site's URL). RUN_ADDR wins, else the port of a
    SITE_URL on this machine. A SITE_URL elsewhere (a tunnel, a proxy) is kept; one on
    this machine follows the server that runs, so links in mails reach it. Without a
    SITE_URL the site is http://localhost:PORT/, where passkeys work."""
    given = environ.get("SITE_URL", "").rstrip("/")
    site = urlsplit(given or f"http://localhost:{DEFAULT_PORT}")
    listen = environ.get("RUN_ADDR") or f"127.0.0.1:{site.port or DEFAULT_PORT}"
    if given and (site.hostname or "") not in LOOPBACK:
        return listen, given + "/"
    host, _, port = listen.rpartition(":")
    if str(site.port) == port:  # the same server, under the name SITE_URL gives it
        return listen, f"{site.scheme}://{site.netloc}/"
    host = host.strip("[]")
    if host in LOOPBACK:
        host = site.hostname if given else "localhost"
    return listen, f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def processes(listen: str) -> dict[str, list[str]]:
    celery = [sys.executable, "-m", "celery", "-A", "config"]
    return {
        "web": [sys.executable, "manage.py", "runserver", listen],
        "worker": [*celery, "worker", "-l", "info", "-c", "2"],
        "beat": [*celery, "beat", "-l", "info"],
    }


def next_delay(previous: float, lived: float) -> float:
    """Seconds to wait before starting a child again that died after `lived` seconds:
    a child that keeps dying at once backs off, one that ran a while does not."""
    if lived >= STEADY_SECONDS or previous <= 0:
        return FIRST_DELAY
    return min(previous * 2, MAX_DELAY)


class Child:
    """One supervised process: started again with backoff whenever it dies."""

    def __init__(self, name: str, command: list[str], env: dict[str, str]) -> None:
        self.name, self.command, self.env = name, command, env
        self.delay = 0.0
        self.restart_at: float | None = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, env=self.env)  # noqa: S603
        self.started = time.monotonic()
        self.restart_at = None
        print(f"{self.name} started (pid {self.process.pid})", flush=True)

    def check(self) -> None:
        """Note a death (and when to start again), or start again when it is time."""
        now = time.monotonic()
        if self.restart_at is None and self.process.poll() is not None:
            self.delay = next_delay(self.delay, now - self.started)
            self.restart_at = now + self.delay
            print(
                f"{self.name} exited with {self.process.returncode}; "
                f"starting it again in {self.delay:.0f} s",
                flush=True,
            )
        elif self.restart_at is not None and now >= self.restart_at:
            self.start()


def main() -> int:
    listen, url = addresses(os.environ)
    env = {**os.environ, "SITE_URL": url.rstrip("/")}
    print(f"\n  Site:    {url}\n  Mailbox: {url}mailbox/", flush=True)
    print("  Demo login: demo@example.jp / demo-pass-2026", flush=True)
    print("  Ctrl-C stops the web server, the Celery worker and beat.\n", flush=True)
    stopping = threading.Event()
    signal.signal(signal.SIGINT, lambda *_args: stopping.set())
    signal.signal(signal.SIGTERM, lambda *_args: stopping.set())
    children = [Child(name, command, env) for name, command in processes(listen).items()]
    while not stopping.wait(0.5):
        for child in children:
            child.check()
    running = [child.process for child in children if child.process.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for process in running:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
    print("stopped web, worker and beat", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
