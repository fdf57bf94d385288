"""Our code reaches other libraries only through their public APIs: a private
import or attribute breaks silently on a minor release. What allauth offers no
hook for lives in accounts/allauth_compat.py, pinned by tests/test_allauth_compat.py."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("accounts", "linking", "config", "bench")
COMPAT = ROOT / "accounts" / "allauth_compat.py"
# psycopg's libpq wrapper and its generators: below its public API.
FORBIDDEN_MODULES = tuple(f"psycopg.{name}" for name in ("pq", "generators"))
LIBRARIES = ("django", "allauth", "psycopg", "celery", "kombu", "redis")
# Private names that are public by contract (reason for each).
ALLOWED_ATTRIBUTES = {
    "_meta": "Django's documented Model._meta API",
    "_default_manager": "Django's documented Model._default_manager",
    "_base_manager": "Django's documented Model._base_manager",
    "_replace": "namedtuple's documented method",
    "_asdict": "namedtuple's documented method",
    "_fields": "namedtuple's documented attribute",
    "_exit": "os._exit, documented for exiting a forked child",
    "_getframe": "sys._getframe, documented",
}


def _sources() -> list[Path]:
    return [
        path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != COMPAT and "migrations" not in path.parts
    ]


def _forbidden_module(name: str) -> bool:
    parts = name.split(".")
    return (parts[0] == "allauth" and "internal" in parts) or any(
        name == module or name.startswith(module + ".") for module in FORBIDDEN_MODULES
    )


def _own_private_names(tree: ast.AST) -> set[str]:
    """Private names our module defines itself: its functions, classes, attributes
    assigned on self/cls or on anything (x._y = ...), and its own module globals."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


def problems(source: str, own_names: set[str]) -> list[str]:
    """What one module does below other libraries' public APIs. own_names: private
    names defined anywhere in our own code (ours to use)."""
    tree = ast.parse(source)
    library_names = {}  # local name -> the library module it came from
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _forbidden_module(alias.name):
                    found.append(f"line {node.lineno}: import {alias.name}")
                if alias.name.split(".")[0] in LIBRARIES:
                    library_names[alias.asname or alias.name.split(".")[0]] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if _forbidden_module(node.module) or _forbidden_module(full):
                    found.append(f"line {node.lineno}: from {node.module} import {alias.name}")
                if node.module.split(".")[0] in LIBRARIES:
                    library_names[alias.asname or alias.name] = full
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        attr = node.attr
        if attr == "health_check_done":  # Django's private flag, without an underscore
            found.append(f"line {node.lineno}: .{attr}")
            continue
        if not attr.startswith("_") or attr.startswith("__") or attr in ALLOWED_ATTRIBUTES:
            continue
        if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            continue
        if (
            attr in ("_cache", "health_check_done")
            or attr not in own_names
            or _root_name(node) in library_names
        ):
            found.append(f"line {node.lineno}: .{attr}")
    return found


def _root_name(node: ast.Attribute) -> str | None:
    value = node.value
    while isinstance(value, (ast.Attribute, ast.Call, ast.Subscript)):
        value = value.func if isinstance(value, ast.Call) else value.value
    return value.id if isinstance(value, ast.Name) else None


def test_our_code_uses_only_public_apis() -> None:
    trees = {path: path.read_text() for path in _sources()}
    own = set()
    for path in [*trees, COMPAT]:
        own |= _own_private_names(ast.parse(path.read_text()))
    found = {
        str(path.relative_to(ROOT)): hits
        for path, source in trees.items()
        if (hits := problems(source, own))
    }
    assert not found, "\n".join(f"{path}: {hit}" for path, hits in found.items() for hit in hits)


def test_the_check_catches_each_kind() -> None:
    """The checker itself: each kind of reach below a public API is caught."""
    own = {"_ours"}
    assert problems("from allauth.account.internal.flows import login", own)
    assert problems("import allauth.socialaccount.internal.jwtkit", own)
    assert problems("from psycopg import pq", own)
    assert problems("from psycopg import generators", own)
    assert problems("cache._cache.get_client('k')", own)
    assert problems("connection.health_check_done = True", own)
    assert problems("from django.db import connection\nconnection._ours", own)
    assert problems("thing._theirs", own)
    assert not problems("self._theirs\ncls._x\nthing._ours\nModel._meta\nx.__class__", own)
