"""Fault: SIGKILL the campaign's Celery worker again and again while it sends.

One campaign; the worker (two senders and beat) is killed with SIGKILL at a random
moment while emails are arriving, started again, killed again, and so on; then the
campaign is left to finish.

A batch is committed "sending" before the mail server gets it and is never sent
again: a kill while the server takes it leaves that batch unconfirmed (some of it
may have arrived). Afterwards: no address got two emails, and every address that
got none is such a delivery (shown to staff as unconfirmed).

    python -m bench.faults.kill_senders [--quick]
"""

import random
import time

from bench import _common
from bench.faults import _support as support

FULL = (30, 30_000)  # kills, addresses
QUICK = (6, 4_000)
RATE = 60_000


def main() -> None:
    args = _common.setup(__doc__.splitlines()[0])
    from django.db import connection

    from linking.campaigns import control
    from linking.campaigns.models import Delivery

    kills, count = QUICK if args.quick else FULL
    print(f"fault kill_senders: {kills} kills of the worker, {count} addresses")
    print(f"  before: {support.uptime()}")
    rng = random.Random(11)
    problems: list[str] = []
    with support.Sink() as sink:
        worker = support.Worker(sink.port)
        campaign, emails = support.make_campaign(count, rate_per_minute=RATE, tag="senders")
        worker.start()
        control.start(campaign)
        done = 0
        try:
            while done < kills and support.campaign_status(campaign) != "finished":
                started = sink.count()
                # Kill while it sends: after the new worker's first emails arrive.
                arriving = support.wait_for(
                    lambda s=started: sink.count() > s, seconds=60, what="emails"
                )
                if not arriving:
                    break
                time.sleep(rng.uniform(0.2, 1.5))
                worker.kill()
                done += 1
                worker.start()
            finished = support.wait_for_campaign(campaign, seconds=600)
        finally:
            worker.kill()
        problems += support.unfinished(finished, worker)
        connection.close()
        problems += support.campaign_problems(campaign, sink, emails, may_lose=True)
        missing = [address for address in emails if sink.recipients[address] == 0]
        lost = Delivery.objects.filter(campaign=campaign, email__in=missing)
        unseen = lost.exclude(status="unconfirmed").count()
        if unseen or lost.count() != len(missing):
            problems.append(f"{len(missing)} addresses got nothing, not all shown unconfirmed")
        unconfirmed = Delivery.objects.filter(campaign=campaign, status="unconfirmed").count()
        leases = lost.values_list("lease", flat=True).distinct().count()
    print(f"  after: {support.uptime()}")
    support.verdict(
        "kill_senders",
        problems,
        f"{done} kills while sending; {sink.count()} of {count} received, "
        f"{len(missing)} lost in {leases} batches "
        f"({unconfirmed} shown unconfirmed)",
    )


if __name__ == "__main__":
    main()
