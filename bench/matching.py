"""Probabilistic 名寄せ (linking.matching, Splink on DuckDB) next to today's exact-key
report, on synthetic legacy records across four services with known truth.

For N records and for N/10 (to see how the cost grows): the time of train + predict
+ cluster, the process's peak memory (max RSS, DuckDB included), and pairwise
precision, recall and F1 against the truth, for Splink and for the exact-key rules
of linking.staff.matching on the same records. Nothing touches the database.

Targets: F1 >= 0.95, at least 0.15 above the exact-key report, and N records in at
most 12x the time of N/10.

    python -m bench.matching [--records N] [--quick]
"""

import argparse
import os
import resource
import time

import django

FULL_RECORDS = 1_000_000
QUICK_RECORDS = 20_000


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, help=f"default {FULL_RECORDS:,}")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_RECORDS:,}, a smoke run")
    args = parser.parse_args()
    args.records = args.records or (QUICK_RECORDS if args.quick else FULL_RECORDS)
    return args


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _measure(n: int) -> dict:
    from linking.matching import engine, evaluation, features, synthetic

    records = synthetic.generate(n)
    table = features.table(records)
    truth = evaluation.pairs(evaluation.true_groups(records))
    began = time.perf_counter()
    trained = engine.train(table)
    trained_at = time.perf_counter()
    result = engine.score(table, trained)
    seconds = time.perf_counter() - began
    ours = evaluation.scores(evaluation.pairs(result.groups), truth)
    exact_began = time.perf_counter()
    exact_groups = evaluation.exact_key_groups(records)
    exact_seconds = time.perf_counter() - exact_began
    exact = evaluation.scores(evaluation.pairs(exact_groups), truth)
    row = {
        "n": n,
        "seconds": seconds,
        "train": trained_at - began,
        "pairs": result.pairs_scored,
        "ours": ours,
        "exact": exact,
        "exact_seconds": exact_seconds,
        "peak_mib": _peak_mib(),
    }
    print(
        f"{n:>9,} records: splink {seconds:7.1f} s (train {row['train']:.1f} s, "
        f"{result.pairs_scored:,} pairs >= {engine.model.THRESHOLD}), "
        f"P {ours.precision:.4f} R {ours.recall:.4f} F1 {ours.f1:.4f} | exact-key "
        f"{exact_seconds:.1f} s, P {exact.precision:.4f} R {exact.recall:.4f} F1 {exact.f1:.4f} "
        f"| peak RSS so far {row['peak_mib']:,.0f} MiB",
        flush=True,
    )
    return row


def main() -> None:
    args = _arguments()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from bench._common import report

    small = _measure(args.records // 10)
    large = _measure(args.records)
    growth = large["seconds"] / small["seconds"]
    gain = large["ours"].f1 - large["exact"].f1
    print(f"time ratio {args.records:,} / {args.records // 10:,}: {growth:.1f}x (target <= 12x)")
    print(f"F1 gain over the exact-key report: {gain:+.4f} (target >= 0.15)")
    report(
        bench="matching",
        value=large["ours"].f1,
        unit="F1",
        baseline=large["exact"].f1,
        target=0.95,
        quick=args.quick,
        meets=large["ours"].f1 >= 0.95 and gain >= 0.15 and growth <= 12,
    )


if __name__ == "__main__":
    main()
