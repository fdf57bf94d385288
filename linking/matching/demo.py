"""Demo data for `manage.py seed_demo`: synthetic accounts of a few people at the
demo services, and one matching run, so the review page shows groups at once."""

from linking.matching import jobs, synthetic
from linking.matching.models import MatchRun
from linking.models import LegacyService

RECORDS = 150


def seed() -> int:
    """Once: the records and a run. Returns the groups found (0 when already seeded)."""
    if MatchRun.objects.exists():
        return 0
    services = {s.code: s for s in LegacyService.objects.filter(code__in=synthetic.FIELDS)}
    if not services:
        return 0
    records = synthetic.generate(RECORDS, seed=2026, services=tuple(sorted(services)))
    synthetic.load(records, services, prefix="MATCH-")
    return jobs.run(MatchRun.objects.create().pk).groups_found
