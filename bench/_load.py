"""A load generator for bench.resolve, run as its own process: threads with
keep-alive HTTP/1.1 connections on loopback.

    python -m bench._load HOST PORT PATHS_FILE SECONDS THREADS [RATE] [TOKEN]

Without RATE each thread sends as fast as answers come (peak); with RATE the
threads together send RATE requests a second on a fixed schedule. Prints one JSON
object: requests, errors, seconds, rate, p50/p99 in milliseconds."""

import http.client
import json
import sys
import threading
import time
from pathlib import Path


def main() -> None:
    host, port, paths_file, seconds, threads = sys.argv[1:6]
    rate = float(sys.argv[6]) if len(sys.argv) > 6 and sys.argv[6] != "0" else 0.0
    token = sys.argv[7] if len(sys.argv) > 7 else ""
    paths = [line.strip() for line in Path(paths_file).read_text().splitlines() if line.strip()]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    count, duration = int(threads), float(seconds)
    latencies: list[list[float]] = [[] for _ in range(count)]
    errors = [0] * count
    start = time.perf_counter() + 0.2
    end = start + duration

    def worker(number: int) -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        interval = count / rate if rate else 0.0
        next_at = start + number * (interval / count if interval else 0)
        index = number
        while True:
            now = time.perf_counter()
            if interval:
                if next_at > now:
                    time.sleep(next_at - now)
                next_at += interval
            elif now < start:
                time.sleep(start - now)
            sent = time.perf_counter()
            if sent >= end:
                break
            try:
                connection.request("GET", paths[index % len(paths)], headers=headers)
                response = connection.getresponse()
                response.read()
                if response.status >= 500 or response.status == 429:
                    errors[number] += 1
            except (OSError, http.client.HTTPException):
                errors[number] += 1
                connection.close()
                connection = http.client.HTTPConnection(host, int(port), timeout=30)
            latencies[number].append(time.perf_counter() - sent)
            index += count

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(count)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    every = sorted(value for values in latencies for value in values)
    total = len(every)
    print(
        json.dumps(
            {
                "requests": total,
                "errors": sum(errors),
                "seconds": duration,
                "rate": total / duration,
                "p50_ms": every[total // 2] * 1000 if total else None,
                "p99_ms": every[min(total - 1, int(total * 0.99))] * 1000 if total else None,
            }
        )
    )


if __name__ == "__main__":
    main()
