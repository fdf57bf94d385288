"""Every test the docs cite as proof exists: a renamed or deleted test cannot leave a
claim in docs/ standing without it."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_CITED = re.compile(r"`(?:(test_\w+)\.py)?(?:::)?(test_\w+)?\*?`")


def _defined() -> tuple[set[str], set[str]]:
    modules, functions = set(), set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        modules.add(path.stem)
        functions.update(re.findall(r"^\s*def (test_\w+)", path.read_text(), re.M))
    return modules, functions


def test_every_test_the_docs_cite_exists():
    modules, functions = _defined()
    missing = []
    for doc in sorted((ROOT / "docs").glob("*.md")):
        for module, function in _CITED.findall(doc.read_text()):
            if module and module not in modules:
                missing.append(f"{doc.name}: {module}.py")
            if function and not function.endswith("_") and function not in functions:
                missing.append(f"{doc.name}: {function}")
    assert missing == []
