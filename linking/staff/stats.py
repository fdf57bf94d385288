"""Figures for the link-rate dashboard, fast at millions of legacy accounts.

Every figure is a count of LinkEvent rows (links and unlinks: linking.claims writes
one in the same transaction as every ownership change) or of LegacyAccount rows by
imported_at. Finished days are kept as DailyLinkStat rows, filled by a beat task
(linking.staff.tasks.refresh_link_stats) and on demand; a page view sums those few
thousand rows and counts only the events after the last finished day, through the
created_at and imported_at indexes.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from linking.campaigns.models import Campaign, Channel, Delivery
from linking.models import DailyLinkStat, LegacyAccount, LegacyService, LinkEvent, StatsDay

Kind = DailyLinkStat.Kind
# A day's rows become final this long after the day ended: a transaction that
# stamped an event just before midnight has committed by then.
FINAL_MARGIN = timedelta(minutes=10)
_LOCK_KEY = 0x51A75  # pg_advisory_xact_lock: one refresh at a time

Row = tuple[date, int, str, str, int]  # day, service id, kind, proof, count


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_default_timezone())


def daily_rows(since: datetime | None = None) -> list[Row]:
    """Accounts imported, links and unlinks per local day, service and proof."""
    tz = timezone.get_default_timezone()
    events = LinkEvent.objects.order_by()
    accounts = LegacyAccount.objects.order_by()
    if since is not None:
        events = events.filter(created_at__gte=since)
        accounts = accounts.filter(imported_at__gte=since)
    rows: list[Row] = [
        (day, service, action, proof, n)
        for day, service, action, proof, n in events.annotate(
            day=TruncDate("created_at", tzinfo=tz)
        )
        .values("day", "account__service", "action", "proof")
        .annotate(n=Count("pk"))
        .values_list("day", "account__service", "action", "proof", "n")
    ]
    rows += [
        (day, service, Kind.ACCOUNTS, "", n)
        for day, service, n in accounts.annotate(day=TruncDate("imported_at", tzinfo=tz))
        .values("day", "service")
        .annotate(n=Count("pk"))
        .values_list("day", "service", "n")
    ]
    return rows


def last_final_day() -> date | None:
    """The last day whose rows are final. Every refresh computes through its own
    day, so the final days are contiguous and the last one is among the newest three."""
    for day, computed_at in StatsDay.objects.order_by("-day").values_list("day", "computed_at")[:3]:
        if computed_at >= day_start(day + timedelta(days=1)) + FINAL_MARGIN:
            return day
    return None


def refresh(now: datetime | None = None) -> int:
    """Recompute the days after the last final one, through today. Returns the
    number of rows written. Safe to run at any time, also twice at once."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        final = last_final_day()
        first = final + timedelta(days=1) if final else None
        rows = daily_rows(day_start(first) if first else None)
        if first is None:
            first = min([row[0] for row in rows], default=today)
        stale = DailyLinkStat.objects.all()
        if final:
            stale = stale.filter(day__gt=final)
        stale.delete()
        DailyLinkStat.objects.bulk_create(
            [
                DailyLinkStat(day=d, service_id=s, kind=k, proof=p, count=n)
                for d, s, k, p, n in rows
                if d >= first
            ],
            batch_size=2000,
        )
        days = [first + timedelta(days=i) for i in range((today - first).days + 1)]
        StatsDay.objects.bulk_create(
            [StatsDay(day=day, computed_at=now) for day in days],
            update_conflicts=True,
            unique_fields=["day"],
            update_fields=["computed_at"],
        )
    refresh_funnels()
    return len(rows)


@dataclass
class ServiceFigures:
    service: LegacyService
    accounts: int = 0
    linked: int = 0

    @property
    def rate(self) -> float | None:
        return self.linked / self.accounts if self.accounts else None


@dataclass
class Period:
    """A day or a week: links made in it, and the totals at its end."""

    start: date
    end: date
    links: int = 0
    unlinks: int = 0
    accounts: int = 0
    linked: int = 0

    @property
    def rate(self) -> float | None:
        return self.linked / self.accounts if self.accounts else None


class _Rates:
    """Clicks and links over what may have arrived (reached), per funnel row."""

    reached: int
    clicked: int
    linked: int

    @property
    def click_rate(self) -> float | None:
        return self.clicked / self.reached if self.reached else None

    @property
    def link_rate(self) -> float | None:
        return self.linked / self.reached if self.reached else None


@dataclass
class FunnelStep(_Rates):
    """One step of one campaign by one channel (email or LINE)."""

    campaign_id: int
    campaign_name: str
    step: int
    channel: str
    audience: int
    sent: int
    unconfirmed: int  # handed over, the mail server's answer lost: may have arrived
    failed: int
    clicked: int
    linked: int
    unsubscribed: int
    bounced: int

    @property
    def channel_label(self) -> str:
        return Channel(self.channel).label

    @property
    def reached(self) -> int:
        """Emails that may have arrived (Delivery.REACHED): a click can come from either."""
        return self.sent + self.unconfirmed

    @property
    def click_to_link(self) -> float | None:
        return self.linked / self.clicked if self.clicked else None


@dataclass
class ChannelFigures(_Rates):
    """Every funnel row of one channel together: reached -> clicked -> linked."""

    channel: str
    reached: int = 0
    clicked: int = 0
    linked: int = 0

    @property
    def label(self) -> str:
        return Channel(self.channel).label


@dataclass
class Dashboard:
    start: date
    end: date
    final_day: date | None
    services: list[ServiceFigures]
    days: list[Period]
    weeks: list[Period]
    proofs: dict[str, int]
    funnel: list[FunnelStep]
    totals: ServiceFigures = field(init=False)
    channels: list[ChannelFigures] = field(init=False)

    def __post_init__(self) -> None:
        self.totals = ServiceFigures(
            service=None,  # type: ignore[arg-type]
            accounts=sum(s.accounts for s in self.services),
            linked=sum(s.linked for s in self.services),
        )
        by_channel = {channel: ChannelFigures(channel) for channel in Channel.values}
        for step in self.funnel:
            figures = by_channel[step.channel]
            figures.reached += step.reached
            figures.clicked += step.clicked
            figures.linked += step.linked
        self.channels = list(by_channel.values())


def dashboard(start: date, end: date) -> Dashboard:
    """All figures of the dashboard in a fixed number of queries."""
    final = last_final_day()
    services = {s.pk: ServiceFigures(s) for s in LegacyService.objects.order_by("code")}

    # Rows: the stored ones up to the final day (summed per service for days before
    # the range, kept per day inside it), then the live ones after it.
    stored = DailyLinkStat.objects.filter(day__lte=final) if final else DailyLinkStat.objects.none()
    before: list[Row] = [
        (start - timedelta(days=1), s, k, p, n)
        for s, k, p, n in stored.filter(day__lt=start)
        .values("service", "kind", "proof")
        .annotate(n=Sum("count"))
        .values_list("service", "kind", "proof", "n")
    ]
    inside: list[Row] = list(
        stored.filter(day__gte=start).values_list("day", "service", "kind", "proof", "count")
    )
    live = daily_rows(day_start(final + timedelta(days=1)) if final else None)
    rows = before + inside + live

    days = [
        Period(start + timedelta(days=i), start + timedelta(days=i))
        for i in range((end - start).days + 1)
    ]
    links_per_day: dict[date, list[int]] = defaultdict(
        lambda: [0, 0, 0]
    )  # links, unlinks, accounts
    base = [0, 0]  # accounts, linked before the range
    proofs: dict[str, int] = defaultdict(int)
    for day, service_id, kind, proof, n in rows:
        figures = services.get(service_id)
        if figures is None:
            continue
        sign = {Kind.ACCOUNTS: 0, Kind.LINK: 1, Kind.UNLINK: -1}[kind]
        if kind == Kind.ACCOUNTS:
            figures.accounts += n
        else:
            figures.linked += sign * n
        if day < start:
            if kind == Kind.ACCOUNTS:
                base[0] += n
            else:
                base[1] += sign * n
        elif day <= end:
            links_per_day[day][{Kind.LINK: 0, Kind.UNLINK: 1, Kind.ACCOUNTS: 2}[kind]] += n
            if kind == Kind.LINK:
                proofs[proof] += n

    accounts, linked = base
    for period in days:
        made, undone, imported = links_per_day.get(period.start, (0, 0, 0))
        accounts += imported
        linked += made - undone
        period.links, period.unlinks, period.accounts, period.linked = (
            made,
            undone,
            accounts,
            linked,
        )

    return Dashboard(
        start=start,
        end=end,
        final_day=final,
        services=list(services.values()),
        days=days,
        weeks=_weeks(days),
        proofs=dict(sorted(proofs.items(), key=lambda item: -item[1])),
        funnel=funnel(start, end),
    )


def _weeks(days: list[Period]) -> list[Period]:
    """Weeks from Monday; a week's totals are those at its last day in the range."""
    weeks: list[Period] = []
    for day in days:
        monday = day.start - timedelta(days=day.start.weekday())
        if not weeks or weeks[-1].start != monday:
            weeks.append(Period(monday, day.start))
        week = weeks[-1]
        week.end = day.start
        week.links += day.links
        week.unlinks += day.unlinks
        week.accounts, week.linked = day.accounts, day.linked
    return weeks


def funnel(start: date, end: date) -> list[FunnelStep]:
    """Per campaign and step, for campaigns running at any time within the range.

    Counting a campaign's deliveries takes a scan of them (100 ms for 150,000), so
    each campaign's funnel is kept in the cache for FUNNEL_SECONDS; refresh() (the
    beat task, the "Recompute" button) renews it. Two queries at most per page."""
    running = list(
        Campaign.objects.filter(started_at__lt=day_start(end + timedelta(days=1)))
        .filter(Q(finished_at__isnull=True) | Q(finished_at__gte=day_start(start)))
        .order_by("-pk")
        .values_list("pk", flat=True)
    )
    cached = cache.get_many([_funnel_key(pk) for pk in running])
    missing = [pk for pk in running if _funnel_key(pk) not in cached]
    if missing:
        cached.update(_store_funnels(missing))
    return [step for pk in running for step in cached[_funnel_key(pk)]]


FUNNEL_SECONDS = 5 * 60


def _funnel_key(campaign_id: int) -> str:
    return f"staff:funnel:v3:{campaign_id}"  # v3: per channel


def _store_funnels(campaign_ids: list[int]) -> dict[str, list[FunnelStep]]:
    S = Delivery.Status
    rows = (
        Delivery.objects.filter(campaign__in=campaign_ids)
        .values("campaign", "campaign__name", "step", "channel")
        .annotate(
            audience=Count("pk"),
            sent=Count("pk", filter=Q(status=S.SENT)),
            unconfirmed=Count("pk", filter=Q(status=S.UNCONFIRMED)),
            failed=Count("pk", filter=Q(status=S.FAILED)),
            clicked=Count("pk", filter=Q(clicked_at__isnull=False)),
            linked=Count("pk", filter=Q(linked_at__isnull=False)),
            unsubscribed=Count("pk", filter=Q(unsubscribed_at__isnull=False)),
            bounced=Count("pk", filter=Q(bounced_at__isnull=False)),
        )
        .order_by("step", "channel")
    )
    found: dict[str, list[FunnelStep]] = {_funnel_key(pk): [] for pk in campaign_ids}
    for row in rows:
        found[_funnel_key(row["campaign"])].append(
            FunnelStep(
                campaign_id=row["campaign"],
                campaign_name=row["campaign__name"],
                step=row["step"],
                channel=row["channel"],
                audience=row["audience"],
                sent=row["sent"],
                unconfirmed=row["unconfirmed"],
                failed=row["failed"],
                clicked=row["clicked"],
                linked=row["linked"],
                unsubscribed=row["unsubscribed"],
                bounced=row["bounced"],
            )
        )
    cache.set_many(found, timeout=FUNNEL_SECONDS)
    return found


def refresh_funnels() -> None:
    """Recount the funnels of campaigns that are running or ended within a day."""
    recent = timezone.now() - timedelta(days=1)
    ids = list(
        Campaign.objects.filter(started_at__isnull=False)
        .filter(Q(finished_at__isnull=True) | Q(finished_at__gte=recent))
        .values_list("pk", flat=True)
    )
    if ids:
        _store_funnels(ids)
