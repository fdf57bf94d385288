"""Dependencies flow one way (docs/architecture.md, "Layers"): a module imports only
its own layer's unit or a lower layer, units never import each other in a circle,
and no two files import each other, directly or round a longer loop. Imports inside
functions count: one that only dodges a cycle is still a cycle."""

import subprocess
import sys
import textwrap
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("accounts", "linking", "config")

# Layers, bottom first; in each, units by name with the modules they hold. A module
# belongs to the unit with the longest prefix of its name ("*.admin": every module so
# named, before any prefix), so a new module or package is placed by where it is.
LAYERS: tuple[dict[str, tuple[str, ...]], ...] = (
    # Shared by everything: the audit trail, the rate limiter, the mail backends.
    {"shared": ("accounts.audit", "accounts.limits", "config.mailbox")},
    # Identity: the customer, the unified ID, sign-in, second factors.
    {"identity": ("accounts",)},
    # Legacy services and accounts, proofs, links.
    {"links": ("linking",)},
    # Features on top; lower layers tell them things through signals.
    {
        "campaigns": ("linking.campaigns",),
        # Vouched links are proofs the group services' API pushes (linking.api's
        # LinkRequest), so they sit with the API.
        "group services": ("linking.api", "linking.proofs.vouched", "linking.vouched_views"),
        "sign-in for group services": (
            "accounts.oidc_provider",
            "accounts.oidc_views",
            "accounts.oidc_logout",
        ),
        "matching": ("linking.matching",),
        "privacy": ("accounts.export", "accounts.deletion"),
        "customer pages": ("accounts.views",),
        # The admin is the staff's interface to every app.
        "staff": (
            "linking.staff",
            "*.admin",
            "linking.api.admin_labels",
            "linking.templatetags.staff",
        ),
        "demo data": (
            "accounts.management.commands.seed_demo",
            "accounts.demo",
            "linking.demo",
            "linking.matching.demo",
        ),
    },
    # Wiring: settings, the Celery app, URL maps, each app's AppConfig (which
    # connects the signal receivers), and migrations (run by manage.py; nothing
    # imports them).
    {"wiring": ("config", "*.apps", "*.urls", "*.migrations")},
)


def _weight(module: str, prefix: str) -> int:
    """How closely prefix names module: 0 not at all, more is closer."""
    if prefix.startswith("*."):
        return 1000 if f".{module}.".find(prefix[1:] + ".") >= 0 else 0
    return len(prefix) if module == prefix or module.startswith(prefix + ".") else 0


def unit_of(module: str, layers=LAYERS) -> tuple[int, str] | None:
    """(layer, unit) of a module: the unit that names it most closely."""
    matches = [
        (weight, level, unit)
        for level, units in enumerate(layers)
        for unit, prefixes in units.items()
        for prefix in prefixes
        if (weight := _weight(module, prefix))
    ]
    return max(matches)[1:] if matches else None


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def violations(graph: grimp.ImportGraph, layers=LAYERS) -> list[tuple[str, ...]]:
    """Every upward import ("upward", importer, imported), every cycle between units
    ("unit cycle", *units) and every cycle between files ("file cycle", *modules)."""
    found = []
    files: dict[str, set[str]] = {}
    units: dict[str, set[str]] = {}
    for importer in sorted(graph.modules):
        placed = unit_of(importer, layers)
        files[importer] = set()
        for imported in graph.find_modules_directly_imported_by(importer):
            target = unit_of(imported, layers)
            if placed is None or target is None:
                continue
            files[importer].add(imported)
            if target[0] > placed[0]:
                found.append(("upward", importer, imported))
            elif target[1] != placed[1]:
                units.setdefault(placed[1], set()).add(target[1])
                units.setdefault(target[1], set())
    found += [("unit cycle", *cycle) for cycle in _cycles(units)]
    found += [("file cycle", *cycle) for cycle in _cycles(files)]
    return found


def test_imports_flow_one_way():
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    assert violations(graph) == [], "see docs/architecture.md, Layers"


def test_every_module_has_a_layer():
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    assert [m for m in sorted(graph.modules) if unit_of(m) is None] == []


@pytest.fixture
def sample(tmp_path, monkeypatch):
    """A package laid out like ours, with a bottom, a middle and a top: write files
    into it, then build its graph."""
    monkeypatch.syspath_prepend(str(tmp_path))
    layers = (
        {"base": ("shop.base",)},
        {"core": ("shop",)},
        {"top": ("shop.top",), "side": ("shop.side",)},
    )

    def build(files: dict[str, str]) -> list[str]:
        for name, source in {
            "__init__": "",
            "top/__init__": "",
            "side/__init__": "",
            **files,
        }.items():
            path = tmp_path / "shop" / f"{name}.py"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source))
        return violations(grimp.build_graph("shop", cache_dir=None), layers)

    return build


def test_a_downward_import_passes(sample):
    assert (
        sample({"base": "", "core": "from shop import base", "top/view": "import shop.core"}) == []
    )


def test_an_upward_import_fails(sample):
    problems = sample({"base": "", "core": "from shop.top import view", "top/view": ""})
    assert problems == [("upward", "shop.core", "shop.top.view")]


def test_an_upward_import_inside_a_function_fails(sample):
    problems = sample({"base": "def f():\n    from shop import core\n", "core": "", "top/view": ""})
    assert problems == [("upward", "shop.base", "shop.core")]


def test_a_cycle_between_files_fails(sample):
    problems = sample(
        {
            "base": "",
            "a": "from shop import b",
            "b": "def later():\n    from shop import c\n",
            "c": "import shop.a",
            "top/view": "",
        }
    )
    assert problems == [("file cycle", "shop.a", "shop.b", "shop.c")]


def test_a_cycle_between_units_of_one_layer_fails(sample):
    problems = sample(
        {
            "base": "",
            "top/view": "from shop.side import model",
            "side/model": "",
            "side/admin": "from shop.top import widgets",
            "top/widgets": "",
        }
    )
    assert problems == [("unit cycle", "side", "top")]


def test_every_task_beat_schedules_is_registered_in_the_worker():
    """Tasks of the units above live in their own modules (accounts.deletion,
    accounts.oidc_provider, linking.staff.tasks): a fresh process that loads what a
    worker loads must still know each."""
    script = (
        "import django; django.setup()\n"
        "from django.conf import settings\n"
        "from config.celery import app\n"
        "app.loader.import_default_modules()\n"
        "scheduled = {entry['task'] for entry in settings.CELERY_BEAT_SCHEDULE.values()}\n"
        "print(sorted(scheduled - set(app.tasks)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


NUMBERS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
]


def test_the_architecture_document_names_every_app_and_task():
    """docs/architecture.md lists our AppConfigs (and says how many) and every task."""
    from django.apps import apps

    from config.celery import app

    app.loader.import_default_modules()
    doc = (ROOT / "docs" / "architecture.md").read_text()
    configs = [
        f"{type(config).__module__}.{type(config).__name__}"
        for config in apps.get_app_configs()
        if type(config).__module__.startswith(("accounts.", "linking.", "config."))
    ]
    tasks = [name for name in app.tasks if not name.startswith("celery.")]
    assert [name for name in configs + tasks if f"`{name}`" not in doc] == []
    assert f"{NUMBERS[len(configs)].capitalize()} AppConfigs are ours" in doc
