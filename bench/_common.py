"""What every benchmark shares: the --quick flag, Django set-up, the final JSON line."""

import argparse
import json
import os
import sys

import django


def setup(description: str) -> argparse.Namespace:
    """Parse the command line and set Django up against the configured database."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick", action="store_true", help="a small smoke run; its figures mean little"
    )
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    return args


def report(
    *,
    bench: str,
    value: float,
    unit: str,
    baseline: float,
    target: float | None,
    quick: bool,
    meets: bool | None = None,
) -> dict:
    """Print the last line every benchmark ends with: one JSON object. meets defaults
    to value >= target (none without a target); a benchmark with further targets
    passes its own verdict."""
    if meets is None and target is not None:
        meets = value >= target
    result = {
        "bench": bench,
        "value": round(value, 2),
        "unit": unit,
        "baseline": round(baseline, 2),
        "ratio": round(value / baseline, 2) if baseline else None,
        "target": target,
        "meets": meets,
        "quick": quick,
    }
    sys.stdout.flush()
    print(json.dumps(result), flush=True)
    return result
