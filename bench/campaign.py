"""Campaign sending and planning: our Celery path next to Django's raw
send_messages into the same sink, and planning with and without linked accounts.

On the configured database and broker (PostgreSQL + Redis in production), with a
local SMTP server (aiosmtpd) on loopback as the mail provider:

- baseline: Django's SMTP backend, `send_messages` over one connection, for
  comparable messages built outside the clock (BASELINE_MAX of them);
- ours: N legacy accounts in ROUNDS campaigns, each started with `control.start`
  and sent by a Celery worker (`celery -A config worker`, four processes per core:
  a sender sends one email at a time and mostly waits on the mail server and the
  database) until it is finished: planning, leases, the hand-over and sent UPDATEs
  of each batch (CAMPAIGN_BATCH_SIZE emails), the shared rate limit, personal
  tokens and building each email (EmailMultiAlternatives) included. The baseline
  runs before the first campaign and after each one; its figure is their mean;
- planning (PostgreSQL): `planning.plan_step` over PLAN_ACCOUNTS legacy accounts,
  first with none linked, then with PLAN_LINKED of them linked (owners of whom one
  in ten said no to marketing email, each sharing an address with an unlinked one).

The sink counts each Message-ID: duplicates and missing recipients are reported.
Targets: at least half the raw rate, no duplicates, nothing lost; planning with the
links at most 1.5 times as long as without. The bench's rows are deleted at the end.

    python -m bench.campaign [--quick]
"""

import logging
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from bench import _common

FULL = 100_000
QUICK = 2_000
ROUNDS = {False: 4, True: 1}  # by --quick: campaigns, each between two baseline runs
BASELINE_MAX = 5_000
TARGET_RATIO = 0.5
SERVICE = "bench-campaign"
PLAN_ACCOUNTS = {False: 1_000_000, True: 20_000}  # by --quick
PLAN_LINKED = {False: 100_000, True: 2_000}
PLAN_TARGET = 1.5
PLAN_SERVICE = "bench-planning"
_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>]+>)", re.MULTILINE | re.IGNORECASE)


class Sink:
    """Counts messages by Message-ID and recipient; parses nothing else."""

    def __init__(self) -> None:
        self.ids: Counter = Counter()
        self.recipients: Counter = Counter()
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        found = _MESSAGE_ID.search(envelope.content)
        with self.lock:
            self.ids[found.group(1) if found else b"?"] += 1
            self.recipients.update(envelope.rcpt_tos)
        return "250 OK"

    def total(self) -> int:
        with self.lock:
            return sum(self.ids.values())

    def reset(self) -> None:
        with self.lock:
            self.ids.clear()
            self.recipients.clear()


def main() -> None:
    args = _common.setup(__doc__.splitlines()[0])
    sys.stdout.reconfigure(line_buffering=True)  # progress shows when piped to a file
    from aiosmtpd.controller import Controller
    from django.conf import settings
    from django.core.mail import EmailMultiAlternatives, get_connection
    from django.db import connection

    from linking.campaigns import content, control, selectors
    from linking.campaigns.models import Campaign, CampaignStep, Delivery
    from linking.models import LegacyAccount, LegacyService

    # aiosmtpd logs every SMTP command at INFO; that would slow both sides alike.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    count = QUICK if args.quick else FULL
    sink = Sink()
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    smtp = {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": port,
        "EMAIL_USE_TLS": False,
        "EMAIL_USE_SSL": False,
        "EMAIL_HOST_USER": "",
        "EMAIL_HOST_PASSWORD": "",
    }
    for name, value in smtp.items():
        setattr(settings, name, value)

    rounds = ROUNDS[args.quick]
    services = [
        LegacyService.objects.get_or_create(
            code=f"{SERVICE}-{number}",
            defaults={"name_ja": "ベンチ", "incentive_ja": "500ポイント"},
        )[0]
        for number in range(rounds)
    ]
    _clean()
    emails = [f"bench{number:07d}@example.jp" for number in range(count)]
    LegacyAccount.objects.bulk_create(
        (
            LegacyAccount(
                service=services[n * rounds // count],
                external_id=f"B{n:07d}",
                email=e,
                email_key=e,
                name="山田 花子",
            )
            for n, e in enumerate(emails)
        ),
        batch_size=5000,
    )
    if connection.vendor == "postgresql":
        # Statistics, as autovacuum would soon have them; without them the audience
        # query (planning, the preview sample) picks nested-loop plans over 100,000
        # fresh rows and takes minutes.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE linking_legacyaccount")
    campaigns = []
    for service in services:
        campaign = Campaign.objects.create(
            name="bench",
            subject_ja="{{ name }}様、統合IDへの連携のお願い",
            text_ja="{{ name }}様\n会員番号 {{ member_number }}\n{{ incentive }}\n{{ link }}\n" * 3,
            sender_company="サンプル商事株式会社",
            sender_address="東京都千代田区丸の内1-1-1",
            sender_contact="support@example.jp",
            rate_per_minute=100_000_000,
        )
        campaign.services.set([service])
        CampaignStep.objects.create(campaign=campaign, number=0)
        campaigns.append(campaign)

    # Baseline: comparable messages, built before the clock starts.
    sample = selectors.sample_account(campaigns[0])
    rendered = content.render(
        campaigns[0], sample, step=0, link="https://id.example.jp/c/l/x/", unsubscribe_url="u"
    )
    baseline_count = min(count, BASELINE_MAX)
    messages = []
    for number, address in enumerate(emails[:baseline_count]):
        message = EmailMultiAlternatives(
            rendered.subject, rendered.text, to=[address], headers={"Message-ID": f"<b{number}@x>"}
        )
        message.attach_alternative(rendered.html, "text/html")
        messages.append(message)

    def raw_rate() -> float:
        with get_connection() as mail:
            started = time.perf_counter()
            mail.send_messages(messages)
            rate = baseline_count / (time.perf_counter() - started)
        sink.reset()
        return rate

    print(f"load average at the start: {_load()}")
    workers = 4 * (os.cpu_count() or 1)
    env = {
        **os.environ,
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(port),
        "EMAIL_USE_TLS": "0",
        "EMAIL_USE_SSL": "0",
        "CAMPAIGN_SENDERS": os.environ.get("CAMPAIGN_SENDERS", str(workers)),
    }
    log_path = Path(tempfile.gettempdir()) / f"bench-campaign-worker-{os.getpid()}.log"
    log = log_path.open("wb")
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "-l", "warning"]
    command += ["-c", str(workers), "--without-gossip", "--without-mingle", "--without-heartbeat"]
    worker = subprocess.Popen(
        command,
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    # The machine's load changes over minutes: each campaign runs between two runs
    # of the baseline, and the baseline is the mean of them all.
    raw = [raw_rate()]
    elapsed = duplicates = missing = 0
    size = count // rounds
    try:
        time.sleep(3)  # the worker's start-up is not part of sending
        for number, campaign in enumerate(campaigns):
            started = time.perf_counter()
            control.start(campaign)
            while Campaign.objects.filter(pk=campaign.pk).values_list(
                "status", flat=True
            ).get() in ("scheduled", "sending"):
                if worker.poll() is not None:
                    raise SystemExit(f"the worker stopped; see {log_path}")
                time.sleep(0.2)
            seconds = time.perf_counter() - started
            elapsed += seconds
            duplicates += sum(n - 1 for n in sink.ids.values() if n > 1)
            mine = emails[number * size : (number + 1) * size]
            missing += len(set(mine) - set(sink.recipients))
            sink.reset()
            raw.append(raw_rate())
            around = (raw[-2] + raw[-1]) / 2
            print(
                f"  round {number + 1}: {size:,} emails in {seconds:.1f} s, "
                f"{size / seconds:,.0f}/s; raw around it {around:,.0f}/s "
                f"({size / seconds / around:.0%}); load {_load()}"
            )
    finally:
        os.killpg(worker.pid, 9)
        worker.wait()
        log.close()
    ours = count / elapsed
    baseline = sum(raw) / len(raw)
    messages.clear()
    sent = Delivery.objects.filter(campaign__in=campaigns, status="sent").count()
    planning = sum(
        (
            CampaignStep.objects.get(campaign=campaign, number=0).planned_at
            - Campaign.objects.get(pk=campaign.pk).started_at
        ).total_seconds()
        for campaign in campaigns
    )
    ratio = ours / baseline
    print(
        "baseline: Django send_messages, one connection: "
        + ", ".join(f"{rate:,.0f}" for rate in raw)
        + f" emails/s; mean {baseline:,.0f}"
    )
    print(
        f"ours: Celery ({workers} worker processes, {env['CAMPAIGN_SENDERS']} senders, "
        f"batches of {settings.CAMPAIGN_BATCH_SIZE}, {connection.vendor}, "
        f"{settings.CELERY_BROKER_URL.split(':')[0]} broker): {count:,} emails in "
        f"{elapsed:.1f} s, {ours:,.0f} emails/s ({ratio:.0%} of raw)"
    )
    print(f"load average at the end: {_load()}")
    print(f"sink: {duplicates} duplicates, {missing} missing")
    print(f"deliveries marked sent: {sent:,}; planning (in the time above) took {planning:.1f} s")
    _clean()
    controller.stop()
    log_path.unlink()
    meets = ratio >= TARGET_RATIO and duplicates == 0 and missing == 0 and sent == count
    if connection.vendor == "postgresql":
        none, linked = _planning(args.quick)
        meets = meets and linked <= PLAN_TARGET * none
    else:
        print("planning with and without links: PostgreSQL only")
    _common.report(
        bench="campaign",
        value=ours,
        unit="emails/s",
        baseline=baseline,
        target=round(baseline * TARGET_RATIO, 2),
        quick=args.quick,
        meets=meets,
    )
    if not meets:
        sys.exit(1)


def _planning(quick: bool) -> tuple[float, float]:
    """Seconds to plan a campaign over the accounts with none linked, then with
    PLAN_LINKED linked; both printed with their ratio."""
    from django.db import connection
    from django.utils import timezone

    from accounts.models import Customer
    from linking.campaigns import planning
    from linking.campaigns.models import Campaign, CampaignStep, Delivery
    from linking.models import LegacyAccount, LegacyService

    total, linked = PLAN_ACCOUNTS[quick], PLAN_LINKED[quick]
    owners = linked // 4
    service, _ = LegacyService.objects.get_or_create(
        code=PLAN_SERVICE, defaults={"name_ja": "ベンチ計画"}
    )
    _clean_planning(service)
    with connection.cursor() as cursor:
        # Accounts 2k and 2k+1 share an address; every tenth account gets an owner.
        cursor.execute(
            """
            INSERT INTO linking_legacyaccount (service_id, external_id, email, phone, name,
                name_kana, birth_date, password_hash, points, attributes, email_key,
                phone_key, name_key, row_hash, imported_at, updated_at)
            SELECT %s, 'P' || lpad(i::text, 9, '0'), 'p' || (i / 2) || '@example.jp', '',
                '', '', NULL, '', i %% 5000, '{}', 'p' || (i / 2) || '@example.jp', '', '',
                '', now(), now()
            FROM generate_series(0::bigint, %s - 1) AS i
            """,
            [service.pk, total],
        )
        cursor.execute("ANALYZE linking_legacyaccount")
    Customer.objects.bulk_create(
        (
            Customer(
                unified_id=f"8{number:011d}",
                email=f"owner{number}@bench-planning.invalid",
                password="!",
                marketing_email_consent=False if number % 10 == 0 else None,
            )
            for number in range(owners)
        ),
        batch_size=5000,
    )
    print(f"planning: {total:,} legacy accounts; {owners:,} customers to own {linked:,}")

    def plan(label: str) -> float:
        campaign = Campaign.objects.create(
            name=f"bench planning {label}",
            subject_ja="件名",
            text_ja="{{ link }}",
            sender_company="ベンチ",
            sender_address="東京",
            sender_contact="bench@example.jp",
        )
        campaign.services.set([service])
        CampaignStep.objects.create(campaign=campaign, number=0)
        started = time.perf_counter()
        planning.plan_step(campaign=campaign, number=0)
        seconds = time.perf_counter() - started
        planned = Delivery.objects.filter(campaign=campaign).count()
        print(f"  {label}: {planned:,} deliveries planned in {seconds:.1f} s")
        Delivery.objects.filter(campaign=campaign).delete()
        campaign.delete()
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE campaigns_delivery")
        return seconds

    none = plan("none linked")
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH owners AS (
                SELECT array_agg(id ORDER BY id) AS ids FROM accounts_customer
                WHERE email LIKE '%%@bench-planning.invalid'
            )
            UPDATE linking_legacyaccount a
            SET owner_id = owners.ids[1 + (a.id / 10) %% %s], linked_at = %s
            FROM owners
            WHERE a.service_id = %s AND a.id %% 10 = 0
            """,
            [owners, timezone.now(), service.pk],
        )
        cursor.execute("VACUUM ANALYZE linking_legacyaccount")
    count = LegacyAccount.objects.filter(service=service, owner__isnull=False).count()
    with_links = plan(f"{count:,} linked")
    print(f"planning with links / without: {with_links / none:.2f} (target at most {PLAN_TARGET})")
    _clean_planning(service)
    return none, with_links


def _clean_planning(service) -> None:
    """In SQL: Django's delete would collect a million primary keys first."""
    from django.db import connection

    from linking.campaigns.models import Campaign

    Campaign.objects.filter(services=service).delete()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM linking_legacyaccount WHERE service_id = %s", [service.pk])
        cursor.execute(
            "DELETE FROM accounts_customer WHERE email LIKE %s", ["%@bench-planning.invalid"]
        )


def _load() -> str:
    return " ".join(f"{n:.2f}" for n in os.getloadavg())


def _clean() -> None:
    from linking.campaigns.models import Campaign, Delivery
    from linking.models import LegacyAccount

    campaigns = Campaign.objects.filter(services__code__startswith=SERVICE)
    Delivery.objects.filter(campaign__in=campaigns).delete()
    campaigns.delete()
    LegacyAccount.objects.filter(service__code__startswith=SERVICE).delete()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


if __name__ == "__main__":
    main()
