"""`make run`: the web server, a Celery worker and Celery beat in one terminal.

Ctrl-C (or SIGTERM) stops all three; if one of them dies, the others are stopped.
"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

DEFAULT_PORT = 8000
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


def main() -> int:
    listen, url = addresses(os.environ)
    env = {**os.environ, "SITE_URL": url.rstrip("/")}
    print(f"\n  Site:    {url}\n  Mailbox: {url}mailbox/", flush=True)
    print("  Demo login: demo@example.jp / demo-pass-2026", flush=True)
    print("  Ctrl-C stops the web server, the Celery worker and beat.\n", flush=True)
    children = {
        name: subprocess.Popen(cmd, env=env)  # noqa: S603
        for name, cmd in processes(listen).items()
    }
    stopping = False

    def stop(*_args) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                print(f"{name} exited with {child.returncode}; stopping the others", flush=True)
                exit_code = child.returncode or 1
                stopping = True
        time.sleep(0.5)
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    print("stopped web, worker and beat", flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
