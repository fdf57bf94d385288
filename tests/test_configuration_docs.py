"""Every environment variable the settings read is documented in
docs/configuration.md."""

import ast
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


def test_the_settings_read_variables_through_the_env_helpers():
    variables = _variables_read_by_settings()
    assert {"DATABASE_URL", "SECRET_KEY", "CELERY_BROKER_URL"} <= variables


def test_every_variable_the_settings_read_is_documented():
    documented = (ROOT / "docs" / "configuration.md").read_text()
    missing = sorted(
        name for name in _variables_read_by_settings() if f"`{name}`" not in documented
    )
    assert missing == []
