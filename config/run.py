"""`make run`: the web server, a Celery worker and Celery beat in one terminal.

Ctrl-C (or SIGTERM) stops all three; if one of them dies, the others are stopped.
"""

import os
import signal
import subprocess
import sys
import time

PROCESSES = {
    "web": [sys.executable, "manage.py", "runserver", os.environ.get("RUN_ADDR", "127.0.0.1:8000")],
    "worker": [sys.executable, "-m", "celery", "-A", "config", "worker", "-l", "info", "-c", "2"],
    "beat": [sys.executable, "-m", "celery", "-A", "config", "beat", "-l", "info"],
}


def main() -> int:
    children = {name: subprocess.Popen(cmd) for name, cmd in PROCESSES.items()}  # noqa: S603
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
