"""Pairwise precision, recall and F1 against known truth, for Splink's groups and for
today's exact-key report (linking.normalize.EXACT_RULES) on the same records."""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import combinations

from linking import normalize
from linking.normalize import EXACT_RULES


@dataclass
class Scores:
    precision: float
    recall: float
    f1: float


def pairs(groups: Iterable[Iterable[int]]) -> set[tuple[int, int]]:
    return {pair for group in groups for pair in combinations(sorted(group), 2)}


def scores(found: set[tuple[int, int]], truth: set[tuple[int, int]]) -> Scores:
    hits = len(found & truth)
    precision = hits / len(found) if found else 1.0
    recall = hits / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    return Scores(round(precision, 4), round(recall, 4), round(f1, 4))


def true_groups(records: Iterable[dict]) -> list[list[int]]:
    people: dict[int, list[int]] = defaultdict(list)
    for record in records:
        people[record["person"]].append(record["id"])
    return list(people.values())


def exact_key_groups(records: Iterable[dict]) -> list[list[int]]:
    """The report's groups: equal keys of one rule (keys as the importer computes
    them, blank keys never match) at more than one service."""
    keyed: dict[tuple, list[dict]] = defaultdict(list)
    for record in records:
        keys = {
            "email_key": normalize.normalize_email(record.get("email", "")),
            "phone_key": normalize.normalize_phone(record.get("phone", "")),
            "name_key": normalize.normalize_name(record.get("name", "")),
            "birth_date": record.get("birth_date"),
        }
        for rule, fields in EXACT_RULES.items():
            values = tuple(keys[field] for field in fields)
            if all(values):
                keyed[(rule, *values)].append(record)
    return [
        [record["id"] for record in group]
        for group in keyed.values()
        if len({record["service"] for record in group}) > 1
    ]
