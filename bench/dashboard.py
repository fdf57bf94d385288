"""The link-rate dashboard with 1,000,000 legacy accounts and 500,000 links.

Builds the data on PostgreSQL with set-based SQL (generate_series): five services,
1,000,000 legacy accounts imported over a year, 50,000 customers owning 500,000 of
them (each link a LinkEvent over the last 180 days, proofs mixed), 20,000 more
accounts linked and unlinked again, and a three-step campaign with 150,000
deliveries. Then:

- refresh: the daily figures computed from scratch (linking.staff.stats.refresh,
  what the beat task does; later runs only recompute the days since the last one);
- ours: GET /admin/dashboard/ through the Django test client as a verified staff
  member, 30-day range, timed end to end (queries, template, two SVG charts);
- baseline: the naive way to get the per-service figures alone, two COUNTs per
  service (all accounts, linked accounts) on the same data.

Prints the medians; the JSON line's value is our median in ms, ratio is baseline
median / ours, target: at most 300 ms. Needs a database of its own, which it
empties first (its name must contain "bench"):

    psql -h 127.0.0.1 -U postgres -c 'CREATE DATABASE unified_id_bench_dash'
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/unified_id_bench_dash \\
        python -m bench.dashboard [--quick]
"""

import json
import statistics
import sys
import time

from bench import _common

FULL = {"accounts": 1_000_000, "customers": 50_000, "rounds": 15}
QUICK = {"accounts": 20_000, "customers": 1_000, "rounds": 5}
TARGET_MEDIAN_MS = 300.0
SERVICES = ("store", "app", "pos", "newsletter", "points")
PROOFS = ("password", "code", "oidc", "email_match", "campaign", "staff")
STAFF_EMAIL = "staff@bench-dash.invalid"


def _sql(statement: str, params: list | None = None) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])


def build(size: dict) -> None:
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import Customer
    from linking.campaigns.models import Campaign, CampaignStep
    from linking.models import LegacyService

    call_command("migrate", verbosity=0)
    tables = connection.introspection.table_names()
    _sql(
        "TRUNCATE "
        + ", ".join(
            t
            for t in tables
            if t.startswith(("linking_", "campaigns_", "accounts_", "otp_", "account_"))
            and t != "linking_staffaccess"
        )
        + " CASCADE"
    )
    started = time.perf_counter()
    with transaction.atomic():
        services = [
            LegacyService.objects.create(code=f"bench-{code}", name_ja=f"ベンチ {code}")
            for code in SERVICES
        ]
        Customer.objects.bulk_create(
            [
                Customer(unified_id=f"9{i:011d}", email=f"c{i}@bench-dash.invalid", password="!")
                for i in range(size["customers"])
            ],
            batch_size=5000,
        )
        ids = [s.pk for s in services]
        # Even accounts are linked (500k of 1M); accounts 1, 51, 101... were linked
        # and unlinked again. Owners: customer number i / 20 (each owns ten).
        _sql(
            """
            WITH owners AS (
                SELECT array_agg(id ORDER BY id) AS ids FROM accounts_customer
            )
            INSERT INTO linking_legacyaccount (
                service_id, external_id, email, phone, name, name_kana, birth_date,
                password_hash, points, attributes, email_key, phone_key, name_key,
                row_hash, imported_at, updated_at, owner_id, linked_at)
            SELECT (%s::bigint[])[1 + i %% 5], 'D' || lpad(i::text, 9, '0'),
                'u' || i || '@example.jp', '', '', '', NULL, '', i %% 5000, '{}',
                'u' || i || '@example.jp', '', '', '',
                %s::timestamptz - ((i * 7919) %% 365) * interval '1 day',
                %s::timestamptz,
                CASE WHEN i %% 2 = 0 THEN owners.ids[1 + (i / 20) %% %s] END,
                CASE WHEN i %% 2 = 0
                     THEN %s::timestamptz - ((i * 104729) %% 180) * interval '1 day'
                          - (i %% 86400) * interval '1 second' END
            FROM generate_series(0::bigint, %s - 1) AS i, owners
            """,
            [
                ids,
                timezone.now(),
                timezone.now(),
                size["customers"],
                timezone.now(),
                size["accounts"],
            ],
        )
        proofs = list(PROOFS)
        _sql(
            """
            INSERT INTO linking_linkevent (account_id, customer_id, customer_unified_id,
                action, proof, actor_kind, reason, user_agent, created_at)
            SELECT a.id, a.owner_id, '', 'link', (%s::text[])[1 + a.id %% 6], 'customer',
                '', '', a.linked_at
            FROM linking_legacyaccount a WHERE a.owner_id IS NOT NULL
            """,
            [proofs],
        )
        _sql(
            """
            WITH gone AS (
                SELECT a.id, c.id AS customer_id,
                    %s::timestamptz - ((a.id * 31) %% 170 + 10) * interval '1 day' AS at
                FROM linking_legacyaccount a
                JOIN accounts_customer c ON c.id = (SELECT min(id) FROM accounts_customer)
                WHERE a.owner_id IS NULL AND a.id %% 25 = 1
            )
            INSERT INTO linking_linkevent (account_id, customer_id, customer_unified_id,
                action, proof, actor_kind, reason, user_agent, created_at)
            SELECT id, customer_id, '', 'link', 'code', 'customer', '', '', at FROM gone
            UNION ALL
            SELECT id, customer_id, '', 'unlink', '', 'customer', '', '',
                at + interval '3 days' FROM gone
            """,
            [timezone.now()],
        )
        campaign = Campaign.objects.create(
            name="ベンチ連携キャンペーン",
            subject_ja="件名",
            text_ja="{{ link }}",
            sender_company="ベンチ",
            sender_address="東京",
            sender_contact="bench@example.jp",
            status=Campaign.Status.SENDING,
            started_at=timezone.now() - timezone.timedelta(days=20),
        )
        for number in (0, 1, 2):
            CampaignStep.objects.create(campaign=campaign, number=number, days_after=number * 7)
        _sql(
            """
            INSERT INTO campaigns_delivery (campaign_id, step, account_id, email, email_key,
                language, status, attempts, not_before, lease, error, sent_at, clicked_at,
                linked_at, unsubscribed_at, bounced_at)
            SELECT %s, s.step, a.id, a.email, a.email_key, 'ja',
                CASE WHEN a.id %% 40 = 0 THEN 'failed' ELSE 'sent' END, 1, %s, '', '',
                CASE WHEN a.id %% 40 = 0 THEN NULL ELSE %s END,
                CASE WHEN a.id %% 4 = 0 THEN %s END,
                CASE WHEN a.id %% 12 = 0 THEN %s END,
                CASE WHEN a.id %% 97 = 0 THEN %s END,
                CASE WHEN a.id %% 89 = 0 THEN %s END
            FROM linking_legacyaccount a, (VALUES (0), (1), (2)) AS s(step)
            WHERE a.id %% 10 = 3 AND (s.step = 0 OR a.id %% (20 * s.step) = 3)
            """,
            [campaign.pk, *([timezone.now()] * 6)],
        )
    _sql("ANALYZE")
    print(f"  built in {time.perf_counter() - started:.1f} s", flush=True)


def _staff_client():
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.models import Customer

    staff = Customer.objects.create_user(STAFF_EMAIL, None, is_staff=True, is_superuser=True)
    device = TOTPDevice.objects.create(user=staff, name="staff admin", confirmed=True)
    client = Client()
    client.force_login(staff)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def _median_ms(run, rounds: int) -> float:
    run()  # warm: connection, templates, caches of the database
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    args = _common.setup(__doc__.splitlines()[0])
    from django.conf import settings
    from django.db import connection
    from django.test.utils import override_settings, setup_test_environment

    from linking.models import LegacyAccount, LegacyService
    from linking.staff import stats

    if connection.vendor != "postgresql" or "bench" not in settings.DATABASES["default"]["NAME"]:
        sys.exit("bench.dashboard needs a PostgreSQL database of its own (name with 'bench')")
    size = QUICK if args.quick else FULL
    print(f"building {size['accounts']:,} legacy accounts on PostgreSQL ...", flush=True)
    build(size)
    print(
        f"  {LegacyAccount.objects.count():,} accounts, "
        f"{LegacyAccount.objects.filter(owner__isnull=False).count():,} linked",
        flush=True,
    )
    started = time.perf_counter()
    stats.refresh()
    print(f"refresh from scratch: {time.perf_counter() - started:.2f} s", flush=True)
    started = time.perf_counter()
    stats.refresh()
    print(
        f"refresh again (the days since the last final one): {time.perf_counter() - started:.2f} s",
        flush=True,
    )

    setup_test_environment()
    client = _staff_client()
    plain = {"staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    with override_settings(STORAGES={**settings.STORAGES, **plain}):

        def render() -> None:
            response = client.get("/admin/dashboard/")
            assert response.status_code == 200, response.status_code

        ours = _median_ms(render, size["rounds"])

    services = list(LegacyService.objects.all())

    def naive() -> None:
        for service in services:
            LegacyAccount.objects.filter(service=service).count()
            LegacyAccount.objects.filter(service=service, owner__isnull=False).count()

    baseline = _median_ms(naive, size["rounds"])
    print(f"dashboard render, median of {size['rounds']}: {ours:.1f} ms")
    print(f"baseline, per-service COUNTs only, median: {baseline:.1f} ms")
    result = {
        "bench": "dashboard",
        "value": round(ours, 2),
        "unit": "ms",
        "baseline": round(baseline, 2),
        "ratio": round(baseline / ours, 2) if ours else None,
        "target": TARGET_MEDIAN_MS,
        "meets": ours <= TARGET_MEDIAN_MS,
        "quick": args.quick,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
