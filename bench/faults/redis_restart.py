"""Fault: Redis (the broker) stops and starts again mid-campaign.

Redis keeps nothing on disk here, so every queued sender task vanishes with it.
Beat's campaigns.tick must notice the silent senders once their leases run out and
start new ones; the campaign must still reach every address exactly once.

    python -m bench.faults.redis_restart [--quick]
"""

import time

from bench import _common
from bench.faults import _support as support

FULL = 3000
QUICK = 600
RATE = 6000  # emails a minute: sending lasts long enough to be interrupted


def main() -> None:
    args = _common.setup(__doc__.splitlines()[0])
    from django.conf import settings

    from linking.campaigns import control

    if not settings.CELERY_BROKER_URL.startswith("redis"):
        raise SystemExit("set CELERY_BROKER_URL to the local Redis (redis://127.0.0.1:6379/N)")
    count = QUICK if args.quick else FULL
    print(f"fault redis_restart: {count} addresses, {support.uptime()}")
    problems: list[str] = []
    with support.Sink() as sink:
        worker = support.Worker(sink.port)
        campaign, emails = support.make_campaign(count, rate_per_minute=RATE, tag="redis")
        worker.start()
        try:
            started = time.monotonic()
            control.start(campaign)
            support.wait_for(lambda: sink.count() >= count // 4, seconds=120, what="a quarter")
            before = sink.count()
            down = support.restart_redis(down_seconds=1.0)
            print(f"  Redis restarted after {before} emails, down {down:.1f} s")
            finished = support.wait_for_campaign(campaign, seconds=300)
            elapsed = time.monotonic() - started
        finally:
            if not support.redis_up():
                support.restart_redis(down_seconds=0)
            worker.kill()
        problems += support.unfinished(finished, worker)
        problems += support.campaign_problems(campaign, sink, emails)
        problems += support.half_written_links()
    support.verdict(
        "redis_restart",
        problems,
        f"{count} addresses, {sink.count()} received, {len(sink.ids)} distinct Message-IDs, "
        f"Redis down {down:.1f} s after {before}, finished in {elapsed:.1f} s",
    )


if __name__ == "__main__":
    main()
