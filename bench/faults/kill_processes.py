"""Fault: SIGKILL web and Celery worker processes under load.

Simulated customers (bench.load) sign in, claim accounts and call the API against
gunicorn while a gunicorn worker is killed every few seconds (the master starts a
new one); at the same time a campaign is sending and its Celery worker (pool and
beat) is killed with SIGKILL and started again.

Afterwards: no 5xx (a killed worker's request fails as a broken connection, never
as a 500, and the customer starts over); every confirmed claim is in the database,
every owned account has exactly one link event and no link is half-written; every
address got its email exactly once.

    python -m bench.faults.kill_processes [--quick]
"""

import os
import random
import signal
import threading

from bench import _common, load
from bench.faults import _support as support

FULL = (60, 90, 3000)  # customers, seconds, addresses
QUICK = (20, 30, 600)
KILL_EVERY = 15.0  # a new worker needs some seconds to load the site on a busy machine
RATE = 6000


def main() -> None:
    args = _common.setup(__doc__.splitlines()[0])
    from django.db import connection

    from linking.campaigns import control

    customers, seconds, count = QUICK if args.quick else FULL
    print(f"fault kill_processes: {customers} customers for {seconds} s, {count} addresses")
    print(f"  before: {support.uptime()}")
    seeded = load.seed(customers)
    web = load.Web().start()
    tally = load.Tally()
    kills: list[int] = []
    stop = threading.Event()

    def killer() -> None:
        rng = random.Random(7)
        while not stop.wait(KILL_EVERY):
            pids = web.worker_pids()
            if pids:
                pid = rng.choice(pids)
                try:
                    os.kill(pid, signal.SIGKILL)
                    kills.append(pid)
                except ProcessLookupError:
                    pass

    problems: list[str] = []
    with support.Sink() as sink:
        worker = support.Worker(sink.port)
        campaign, emails = support.make_campaign(count, rate_per_minute=RATE, tag="kill")
        worker.start()
        customers_done = threading.Event()

        def customers_run() -> None:
            try:
                load.run_customers(web.url, seeded, customers, seconds, tally, ramp=5)
            finally:
                customers_done.set()

        threading.Thread(target=customers_run, daemon=True).start()
        threading.Thread(target=killer, daemon=True).start()
        try:
            control.start(campaign)
            support.wait_for(lambda: sink.count() >= count // 4, seconds=120, what="a quarter")
            before = sink.count()
            worker.kill()
            print(f"  Celery worker killed after {before} emails; started again")
            worker.start()
            finished = support.wait_for_campaign(campaign, seconds=300)
            customers_done.wait(seconds + 300)
        finally:
            stop.set()
            worker.kill()
            web.stop()
        problems += support.unfinished(finished, worker)
        connection.close()
        problems += support.campaign_problems(campaign, sink, emails)
    print(f"  after: {support.uptime()}")
    load.report_actions(tally, seconds)
    problems += load.check_links(tally, seeded)
    problems += support.half_written_links()
    if tally.server_errors():
        problems.append(f"{tally.server_errors()} responses with 5xx")
    broken = sum(tally.failures.values())
    if broken > len(kills):
        problems.append(f"{broken} failed requests for {len(kills)} killed web workers")
    support.verdict(
        "kill_processes",
        problems,
        f"{len(kills)} gunicorn workers killed, {tally.requests()} answers, "
        f"{tally.server_errors()} 5xx, {broken} broken connections, "
        f"{len(tally.confirmed)} claims confirmed; Celery worker killed after {before} of "
        f"{count} emails, {sink.count()} received, {len(sink.ids)} distinct Message-IDs",
    )


if __name__ == "__main__":
    main()
