"""Fault: a campaign through every outage at once, nobody restarting anything.

Two Celery workers (one with beat), started again by a supervising loop whenever
they die (config.run's backoff), send to a real SMTP sink while both are SIGKILLed
5 times, RabbitMQ is restarted 5 times (stop_app/start_app), PostgreSQL restarts
once, and the workers' only way to PostgreSQL (a TCP proxy) is cut for 30 s the
moment the sink accepts an email, before the sender can mark it sent. Afterwards:
no address got two emails, and every address that got none is shown unconfirmed
or failed.

    python -m bench.faults.campaign_outages [--quick]
"""

import threading
import time
from collections import Counter

from bench import _common
from bench.faults import _support as support

FULL = 3000
QUICK = 600
RATE = 1200  # emails a minute: sending lasts long enough for every outage
CUT_SECONDS = 30.0
# In order, each when the sink has received the next share of the emails.
EVENTS = ["kill", "broker", "kill", "broker", "postgres", "kill", "broker", "cut", "kill",
          "broker", "kill", "broker"]  # fmt: skip


def main() -> None:
    args = _common.setup(__doc__.splitlines()[0])
    from django.conf import settings
    from django.db import connection

    from linking.campaigns import control
    from linking.campaigns.models import Delivery
    from tests.campaign_support import TcpProxy

    if connection.vendor != "postgresql" or not settings.CELERY_BROKER_URL.startswith("amqp"):
        raise SystemExit(
            "set DATABASE_URL to the local PostgreSQL and CELERY_BROKER_URL to amqp://"
        )
    count = QUICK if args.quick else FULL
    db = connection.settings_dict
    proxy = TcpProxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432))
    through_proxy = f"postgres://{db['USER']}@127.0.0.1:{proxy.port}/{db['NAME']}"
    print(f"fault campaign_outages: {count} addresses, {support.uptime()}")
    done: list[str] = []
    cut_over = threading.Event()

    def cut() -> None:
        proxy.pause()
        done.append("cut")
        threading.Timer(CUT_SECONDS, lambda: (proxy.resume(), cut_over.set())).start()

    with support.Sink() as sink:
        workers = [
            support.Worker(sink.port, database_url=through_proxy),
            support.Worker(sink.port, database_url=through_proxy, beat=False),
        ]
        campaign, emails = support.make_campaign(count, rate_per_minute=RATE, tag="outages")
        started = time.monotonic()
        with support.Supervisor(workers) as supervisor:
            try:
                control.start(campaign)
                for number, event in enumerate(EVENTS, start=1):
                    at = count * number // (len(EVENTS) + 2)
                    if event == "cut":
                        at = max(at, sink.count() + 1)
                        sink.actions[at] = cut
                        support.wait_for(cut_over.is_set, seconds=300, what="the cut")
                        print(f"  PostgreSQL unreachable for {CUT_SECONDS:.0f} s at {at}")
                        continue
                    support.wait_for(lambda at=at: sink.count() >= at, seconds=300, what=f"{at}")
                    if event == "kill":
                        for worker in workers:
                            worker.kill()
                        print(f"  both workers SIGKILLed at {sink.count()}")
                    elif event == "broker":
                        took = support.rabbitmq_restart()
                        print(f"  RabbitMQ restarted at {sink.count()} ({took:.1f} s)")
                    else:
                        took = support.restart_postgres()
                        print(f"  PostgreSQL restarted at {sink.count()} ({took:.1f} s)")
                    done.append(event)
                finished = support.wait_for_campaign(campaign, seconds=600)
                elapsed = time.monotonic() - started
            finally:
                proxy.resume()
                if not support.postgres_up():
                    support.restart_postgres()
        restarts = supervisor.restarts
        proxy.close()
        connection.close()
        problems = support.unfinished(finished, workers[0])
        problems += support.campaign_problems(campaign, sink, emails, may_lose=True)
        if sorted(done) != sorted(EVENTS):
            problems.append(f"only these outages happened: {done}")
    statuses = Counter(Delivery.objects.filter(campaign=campaign).values_list("status", flat=True))
    missing = sum(1 for address in emails if sink.recipients[address] == 0)
    twice = sum(1 for address in emails if sink.recipients[address] > 1)
    support.verdict(
        "campaign_outages",
        problems,
        f"{count} addresses, {sink.count()} received, {twice} twice, {missing} got none; "
        f"deliveries {dict(statuses)}; {EVENTS.count('kill')} kills of both workers, "
        f"{EVENTS.count('broker')} RabbitMQ restarts, 1 PostgreSQL restart, "
        f"{CUT_SECONDS:.0f} s cut; {restarts} worker restarts by the supervisor; "
        f"finished in {elapsed:.0f} s",
    )


if __name__ == "__main__":
    main()
