"""Fault: the mail server answers 451 (try again later) for a while.

A local SMTP server refuses every message with 451 after the final "." for the
first WINDOW seconds of a campaign, then accepts. Deliveries refused are retried
after their backoff (one minute for the first retry); the campaign must reach
every address exactly once (counted at the server by Message-ID).

    python -m bench.faults.smtp_tempfail [--quick]
"""

import time

from bench import _common
from bench.faults import _support as support

FULL = (2000, 20.0)  # addresses, seconds of 451
QUICK = (400, 5.0)
RATE = 6000


def main() -> None:
    args = _common.setup(__doc__.splitlines()[0])
    from linking.campaigns import control

    count, window = QUICK if args.quick else FULL
    print(f"fault smtp_tempfail: {count} addresses, 451 for {window:.0f} s, {support.uptime()}")
    with support.Sink() as sink:
        worker = support.Worker(sink.port)
        campaign, emails = support.make_campaign(count, rate_per_minute=RATE, tag="451")
        worker.start()
        try:
            time.sleep(3)  # the worker's start-up is not part of the window
            sink.tempfail_until = time.monotonic() + window
            started = time.monotonic()
            control.start(campaign)
            finished = support.wait_for_campaign(campaign, seconds=600)
            elapsed = time.monotonic() - started
        finally:
            worker.kill()
        problems = support.unfinished(finished, worker)
        if not sink.tempfailed:
            problems.append("the server never answered 451: the fault did not happen")
        problems += support.campaign_problems(campaign, sink, emails)
        problems += support.half_written_links()
    support.verdict(
        "smtp_tempfail",
        problems,
        f"{count} addresses, {sink.tempfailed} answers of 451 in {window:.0f} s, "
        f"{sink.count()} accepted, {len(sink.ids)} distinct Message-IDs, "
        f"finished in {elapsed:.1f} s",
    )


if __name__ == "__main__":
    main()
