"""Production settings, loaded fresh in a subprocess as a server would load them."""

import os
import secrets
import shlex
import subprocess
import sys
from pathlib import Path

from gunicorn.config import Config

BASE_DIR = Path(__file__).resolve().parent.parent
# Set for the test process (tests/conftest.py) or by the caller; not part of production.
NOT_PASSED_ON = {
    "DJANGO_ALLOW_ASYNC_UNSAFE",
    "SECRET_KEY",
    "SECRET_KEY_FILE",
    "OIDC_PRIVATE_KEY",
    "OIDC_PRIVATE_KEY_FILE",
    "DEBUG",
    "SITE_URL",
    "ALLOWED_HOSTS",
}


def _manage(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {name: value for name, value in os.environ.items() if name not in NOT_PASSED_ON}
    clean["VAR_DIR"] = str(tmp_path)
    clean.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _oidc_key_file(tmp_path: Path) -> str:
    """Production also needs the key that signs the OIDC provider's ID tokens."""
    from accounts.oidc_keys import development_key

    path = tmp_path / "oidc-key.pem"
    development_key(path)
    return str(path)


def test_check_deploy_reports_nothing_with_production_settings(tmp_path):
    result = _manage(
        tmp_path,
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        SITE_URL="https://id.example.jp",
        ALLOWED_HOSTS="id.example.jp",
        SECRET_KEY=secrets.token_urlsafe(50),
        OIDC_PRIVATE_KEY_FILE=_oidc_key_file(tmp_path),
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_settings_refuse_to_load_over_https_without_a_secret_key(tmp_path):
    result = _manage(
        tmp_path,
        "check",
        DEBUG="0",
        SITE_URL="https://id.example.jp",
        ALLOWED_HOSTS="id.example.jp",
    )

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY must be set" in result.stderr


def test_a_secret_key_file_is_enough(tmp_path):
    key_file = tmp_path / "secret_key"
    key_file.write_text(secrets.token_urlsafe(50) + "\n")

    result = _manage(
        tmp_path,
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        SITE_URL="https://id.example.jp",
        ALLOWED_HOSTS="id.example.jp",
        SECRET_KEY_FILE=str(key_file),
        OIDC_PRIVATE_KEY_FILE=_oidc_key_file(tmp_path),
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_wsgi_application_loads_its_views_and_freezes_them(tmp_path):
    # What a gunicorn worker runs at start: everything loaded up front is moved out of
    # the garbage collector's full collections (config/wsgi.py).
    script = (
        "import gc, sys\n"
        "import config.wsgi\n"
        "print(gc.get_freeze_count(), 'linking.api.views' in sys.modules)\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script],
        cwd=BASE_DIR,
        env={**os.environ, "VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    frozen, views_loaded = loaded.stdout.split()
    assert int(frozen) > 50_000
    assert views_loaded == "True"


def _gunicorn_commands() -> dict[str, list[str]]:
    """Every gunicorn command line in docs/operations.md and the web unit file, by
    where it is written, as gunicorn's arguments."""
    commands = {}
    for path in [BASE_DIR / "docs/operations.md", *(BASE_DIR / "docs/deploy").glob("*.service")]:
        text = path.read_text().replace("\\\n", " ")
        for number, line in enumerate(text.splitlines(), 1):
            if "gunicorn config.wsgi" not in line:
                continue
            words = shlex.split(line.removeprefix("ExecStart="))
            start = next(n for n, word in enumerate(words) if word.endswith("gunicorn"))
            commands[f"{path.name}, command {number}"] = words[start + 1 :]
    return commands


def test_every_documented_gunicorn_command_preloads_the_site_before_forking():
    # --preload runs config/wsgi.py (and its gc.freeze) once in the master, so the
    # workers share the frozen site instead of each loading its own.
    commands = _gunicorn_commands()
    assert len(commands) >= 3  # the site, the API's own gunicorn, the systemd unit
    for where, arguments in commands.items():
        parsed = Config().parser().parse_args(arguments)
        assert parsed.preload_app, where
        assert parsed.args == ["config.wsgi:application"], where
