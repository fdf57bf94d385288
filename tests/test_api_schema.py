"""The served OpenAPI document against the running API: schemathesis's own command
line, every check, every phase (examples, boundary coverage, fuzzing), with a
real token and real data over HTTP. It fails on a 5xx, on a request the document
allows that the API refuses (or one it forbids that the API takes), and on an
answer, status, header or content type the document does not describe. Bounded:
a few examples per operation, on top of the coverage phase's fixed cases."""

import subprocess
import sys
from pathlib import Path

from django.urls import URLPattern, URLResolver, get_resolver

from accounts import unified_id as unified_ids
from linking import claims
from linking.api import openapi, views
from tests.api_support import fetch_token

pytest_plugins = ["tests.fixtures.api"]

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
EXAMPLES = 20


def test_schemathesis_with_every_check_finds_nothing(
    live_server, settings, make_client, service, make_account, make_customer, tmp_path
):
    settings.SITE_URL = live_server.url  # the document's server URL
    # The document's examples exist, so its example requests are answered 200.
    assert service.code == openapi.EXAMPLE_SERVICE
    customer = make_customer(unified_id=unified_ids.normalize(openapi.EXAMPLE_UNIFIED_ID))
    claims.link(
        account=make_account(openapi.EXAMPLE_EXTERNAL_ID, service=service),
        customer=customer,
        proof="code",
        request=None,
    )
    # ... and so are its link requests: the service allows them, the URL is registered.
    service.accepted_proofs = ["code", "vouched"]
    service.save()
    registered = make_client(services=[service])
    registered.access.return_urls = [openapi.EXAMPLE_RETURN_URL]
    registered.access.save()
    token = fetch_token(registered)

    run = subprocess.run(
        [
            SCHEMATHESIS,
            "run",
            f"{live_server.url}/api/v1/openapi.json",
            "--checks=all",
            f"--header=Authorization: Bearer {token}",
            f"--max-examples={EXAMPLES}",
            "--workers=1",
            "--generation-database=none",
            "--no-color",
        ],
        cwd=tmp_path,  # its cache of failures stays out of the project
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert run.returncode == 0, run.stdout + run.stderr
    assert "6 selected / 6 total" in run.stdout


def test_the_document_describes_every_api_route_and_only_those(client):
    document = client.get("/api/v1/openapi.json").json()
    described = {
        (path, method.upper())
        for path, operations in document["paths"].items()
        for method in operations
    }
    routed = set()
    for entry in get_resolver().url_patterns:
        if isinstance(entry, URLResolver) and entry.namespace == "api":
            for route in entry.url_patterns:
                assert isinstance(route, URLPattern)
                if route.callback is views.openapi:
                    continue
                method = route.callback.api_method
                path = "/" + str(route.pattern).replace("<str:", "{").replace(">", "}")
                routed.add((path, method))
    assert described == routed
