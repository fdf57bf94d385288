"""CPU per call of GET /api/v1/resolve in one process, next to the bare endpoint.

Where bench.resolve measures throughput under gunicorn (and so also the load
generator, PostgreSQL and the kernel sharing the cores), this counts only the web
process's own CPU (time.process_time) per request, calling Django's WSGI handler
directly: the same site, middleware and URLs as bench.resolve (bench._resolve_site),
the bare endpoint first, then resolve with a client-credentials token. Lower is
better. No target of its own: it shows where a change to the API path went, which
bench.resolve's run-to-run spread hides.

    python -m bench.resolve_cpu [--quick]
"""

import base64
import json
import os
import time
from io import BytesIO

os.environ["DJANGO_SETTINGS_MODULE"] = "bench._resolve_site"
os.environ["DEBUG"] = "0"  # as under gunicorn in bench.resolve: no query log
os.environ["ALLOWED_HOSTS"] = "127.0.0.1"

from bench._common import report, setup


def main() -> None:
    args = setup(__doc__.splitlines()[0])
    from django.core.handlers.wsgi import WSGIHandler

    from bench.resolve import SERVICE, _prepare

    count = 2_000
    calls = 500 if args.quick else 5_000
    client_id, secret = _prepare(count)
    app = WSGIHandler()

    def call(path: str, *, method: str = "GET", headers=None, body: bytes = b""):
        path_info, _, query = path.partition("?")
        environ = {
            "REQUEST_METHOD": method, "PATH_INFO": path_info, "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "HTTP_HOST": "127.0.0.1",
            "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
            "wsgi.input": BytesIO(body), "wsgi.url_scheme": "http",
            "CONTENT_LENGTH": str(len(body)),
            "CONTENT_TYPE": "application/x-www-form-urlencoded",
            **(headers or {}),
        }  # fmt: skip
        status = []
        content = b"".join(app(environ, lambda line, _headers: status.append(line)))
        return int(status[0].split()[0]), content

    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    _status, content = call(
        "/identity/o/api/token",
        method="POST",
        headers={"HTTP_AUTHORIZATION": f"Basic {basic}"},
        body=b"grant_type=client_credentials&scope=resolve",
    )
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {json.loads(content)['access_token']}"}
    paths = [f"/api/v1/resolve?service={SERVICE}&external_id=B{n:08d}" for n in range(count)]
    assert call(paths[0], headers=bearer)[0] == 200 and call("/bench/bare")[0] == 200

    def per_call(which: str) -> float:
        started = time.process_time()
        for number in range(calls):
            if which == "bare":
                status, _content = call("/bench/bare")
            else:
                status, _content = call(paths[number % count], headers=bearer)
            assert status == 200, status
        return (time.process_time() - started) / calls * 1e6

    per_call("bare"), per_call("resolve")  # warm-up
    bare = min(per_call("bare") for _ in range(3))
    resolve = min(per_call("resolve") for _ in range(3))
    print(f"CPU per call: bare {bare:.0f} µs, resolve {resolve:.0f} µs ({calls} calls, best of 3)")
    report(
        bench="resolve_cpu",
        value=resolve,
        unit="µs CPU/call",
        baseline=bare,
        target=None,
        quick=args.quick,
    )


if __name__ == "__main__":
    main()
