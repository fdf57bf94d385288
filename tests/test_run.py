"""`make run` (config/run.py): it starts under a SITE_URL where passkeys cannot work,
says the address where the site answers, and starts a dead child again."""

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import requests

from accounts.management.commands.seed_demo import DEMO_EMAIL, DEMO_PASSWORD
from config.run import addresses, next_delay
from tests.campaign_support import free_port, wait_until
from tests.http_race import csrf_token

BASE_DIR = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("environ", "listen", "url"),
    [
        ({}, "127.0.0.1:8000", "http://localhost:8000/"),
        ({"SITE_URL": "http://127.0.0.1:8000"}, "127.0.0.1:8000", "http://127.0.0.1:8000/"),
        ({"RUN_ADDR": "127.0.0.1:8300"}, "127.0.0.1:8300", "http://localhost:8300/"),
        ({"RUN_ADDR": "0.0.0.0:8300"}, "0.0.0.0:8300", "http://localhost:8300/"),
        ({"RUN_ADDR": "192.168.1.5:8300"}, "192.168.1.5:8300", "http://192.168.1.5:8300/"),
        (
            {"SITE_URL": "http://127.0.0.1:8000", "RUN_ADDR": "127.0.0.1:8300"},
            "127.0.0.1:8300",
            "http://127.0.0.1:8300/",
        ),
        (
            {"SITE_URL": "https://id.example.jp", "RUN_ADDR": "127.0.0.1:9000"},
            "127.0.0.1:9000",
            "https://id.example.jp/",
        ),
    ],
)
def test_the_address_printed_is_where_the_server_listens(environ, listen, url):
    assert addresses(environ) == (listen, url)


def _answers(url: str) -> int:
    """The status of /healthz, once the server listens at `url`."""
    statuses: list[int] = []

    def answered() -> bool:
        try:
            with urllib.request.urlopen(url + "healthz", timeout=5) as response:
                statuses.append(response.status)
        except urllib.error.HTTPError as error:
            statuses.append(error.code)
        except OSError:
            return False
        return True

    wait_until(answered, what=f"an answer at {url}")
    return statuses[-1]


def _environment(var_dir: Path, **env: str) -> dict[str, str]:
    """`make run`'s environment (DEBUG=1) in var_dir, with `env` for its address and
    none of the test's own address or database settings."""
    ignored = {"SITE_URL", "RUN_ADDR", "DJANGO_ALLOW_ASYNC_UNSAFE", "DATABASE_URL"}
    inherited = {name: value for name, value in os.environ.items() if name not in ignored}
    return {**inherited, "VAR_DIR": str(var_dir), "DEBUG": "1", "PYTHONUNBUFFERED": "1", **env}


def _make_run(var_dir: Path, **env: str) -> subprocess.Popen:
    """config.run, as `make run` starts it, in its own process group."""
    return subprocess.Popen(
        [sys.executable, "-m", "config.run"],
        cwd=BASE_DIR,
        env=_environment(var_dir, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A VAR_DIR as `make run` has it before config.run starts: migrated (SQLite) and
    seeded with the demo data."""
    var_dir = tmp_path_factory.mktemp("make-run")
    for command in (["migrate", "--noinput", "-v", "0"], ["seed_demo"]):
        subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=BASE_DIR,
            env=_environment(var_dir),
            check=True,
            capture_output=True,
            timeout=300,
        )
    return var_dir


class _Lines:
    """config.run's output, read by a thread, so a test waits for a line (or a
    deadline) instead of sleeping."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(process,), daemon=True).start()

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.lines.put(line)

    def wait_for(self, pattern: str, seconds: float = 90) -> re.Match:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(line)
            if found := re.search(pattern, line):
                return found
        raise AssertionError(f"no line matching {pattern!r}; the last ones: {self.seen[-20:]}")


def _stop(process: subprocess.Popen, output: "_Lines") -> None:
    """SIGTERM, as Ctrl-C: config.run stops its three children and exits 0, and nothing
    of its process group is left (runserver's reloader included)."""
    process.send_signal(signal.SIGTERM)
    output.wait_for("stopped web, worker and beat")
    assert process.wait(timeout=30) == 0
    wait_until(lambda: not _group_alive(process.pid), what="make run's processes to end")


def _group_alive(group: int) -> bool:
    return any(
        _alive(int(stat.parent.name))
        for stat in Path("/proc").glob("[0-9]*/stat")
        if _process_group(stat) == group
    )


def _process_group(stat: Path) -> int | None:
    with contextlib.suppress(OSError, IndexError, ValueError):
        return int(stat.read_text().split(") ")[1].split()[2])
    return None


@pytest.mark.parametrize(
    ("variable", "value", "site"),
    [
        ("SITE_URL", "http://127.0.0.1:{port}", "http://127.0.0.1:{port}/"),
        ("RUN_ADDR", "127.0.0.1:{port}", "http://localhost:{port}/"),
    ],
)
def test_make_run_prints_where_the_site_answers_and_whether_passkeys_work_there(
    seeded, variable, value, site
):
    """`SITE_URL=http://127.0.0.1:8000 make run` starts (passkeys are off there, and the
    two-step page says why, rather than stopping runserver's system checks);
    `RUN_ADDR=127.0.0.1:8300 make run` answers at http://localhost:8300/, where they work."""
    port = free_port()
    site = site.format(port=port)
    process = _make_run(seeded, **{variable: value.format(port=port)})
    output = _Lines(process)
    try:
        assert output.wait_for(r"Site:\s+(\S+)").group(1) == site
        assert _answers(site) == 200
        session = requests.Session()
        session.headers["Accept-Language"] = "ja"
        login = f"{site}accounts/login/"
        form = {"csrfmiddlewaretoken": csrf_token(session, login), "login": DEMO_EMAIL}
        answer = session.post(login, {**form, "password": DEMO_PASSWORD}, timeout=30)
        assert answer.url == f"{site}me/"
        two_step = session.get(f"{site}accounts/2fa/", timeout=30).text
        if variable == "SITE_URL":
            assert 'data-testid="add-passkey"' not in two_step
            why = re.search(r'data-testid="passkeys-off">(.*?)</p>', two_step, re.S).group(1)
            assert f"http://127.0.0.1:{port}" in why
            assert "https://" in why and "http://localhost" in why
        else:
            assert 'data-testid="add-passkey"' in two_step
            assert 'data-testid="passkeys-off"' not in two_step
        _stop(process, output)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.mark.parametrize(
    ("previous", "lived", "delay"),
    [(0, 0, 1), (1, 2, 2), (8, 0.5, 16), (16, 1, 30), (30, 1, 30), (30, 61, 1)],
)
def test_a_child_that_keeps_dying_backs_off_up_to_30_seconds(previous, lived, delay):
    assert next_delay(previous, lived) == delay


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child the runner has not reaped yet is a zombie: dead all the same.
    with contextlib.suppress(FileNotFoundError):
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    return False


def test_a_killed_worker_comes_back_and_sigterm_still_stops_all_three(tmp_path):
    process = _make_run(tmp_path, RUN_ADDR=f"127.0.0.1:{free_port()}")
    output = _Lines(process)
    try:
        first = int(output.wait_for(r"worker started \(pid (\d+)\)").group(1))
        output.wait_for(r"celery@\S+ ready")
        os.kill(first, signal.SIGKILL)
        output.wait_for(rf"worker exited with -{signal.SIGKILL.value}; starting it again")
        second = int(output.wait_for(r"worker started \(pid (\d+)\)").group(1))
        assert second != first
        output.wait_for(r"celery@\S+ ready")
        process.send_signal(signal.SIGTERM)
        output.wait_for("stopped web, worker and beat")
        assert process.wait(timeout=30) == 0
        assert not _alive(second)
        assert "worker started" not in "".join(output.seen[-3:])
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
