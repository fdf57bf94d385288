"""Every environment variable the code reads is documented in
docs/configuration.md."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_READERS = {"env", "env_bool", "env_int", "env_list", "env_secret"}


def _variables_read_by_settings() -> set[str]:
    tree = ast.parse((ROOT / "config" / "settings.py").read_text())
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _READERS
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }


def _variables_read_elsewhere() -> set[str]:
    """Read straight from the environment outside the settings (config/run.py's
    address, Spark's JAVA_HOME)."""
    read = re.compile(r'(?:environ\.get\(|environ\[|getenv\()"([A-Z][A-Z0-9_]*)"')
    return {
        name
        for package in ("accounts", "linking", "config")
        for path in (ROOT / package).rglob("*.py")
        for name in read.findall(path.read_text())
    }


def test_the_settings_read_variables_through_the_env_helpers():
    variables = _variables_read_by_settings()
    assert {"DATABASE_URL", "SECRET_KEY", "CELERY_BROKER_URL"} <= variables


def test_every_variable_the_settings_read_is_documented():
    documented = (ROOT / "docs" / "configuration.md").read_text()
    missing = sorted(
        name
        for name in _variables_read_by_settings() | _variables_read_elsewhere()
        if f"`{name}`" not in documented
    )
    assert missing == []


def test_variables_read_outside_the_settings_are_found():
    assert {"RUN_ADDR", "JAVA_HOME"} <= _variables_read_elsewhere()
