from io import StringIO

from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.management.commands.seed_demo import DEMO_EMAIL, DEMO_PASSWORD
from linking import claims, demo
from linking.models import LegacyAccount, LegacyService
from tests.fixtures.mfa import stepped_up


def _seed() -> None:
    call_command("seed_demo", stdout=StringIO())


def test_demo_data_has_three_services_and_is_idempotent(db):
    _seed()
    counts = (LegacyService.objects.count(), LegacyAccount.objects.count())
    _seed()
    assert counts[0] == 3
    assert (LegacyService.objects.count(), LegacyAccount.objects.count()) == counts


def test_the_demo_customer_sees_suggestions_and_links_the_store_account(client, db):
    _seed()
    client.post("/accounts/login/", {"login": DEMO_EMAIL, "password": DEMO_PASSWORD})
    stepped_up(client, DEMO_PASSWORD)  # linking asks for the password again
    page = client.get("/link/").content.decode()
    assert page.count("/link/suggested/") == 3
    client.post(
        "/link/service/online-store/",
        {"pw-external_id": demo.DEMO_STORE_NUMBER, "pw-password": demo.DEMO_STORE_PASSWORD},
    )
    store = LegacyAccount.objects.get(external_id=demo.DEMO_STORE_NUMBER)
    assert store.owner is not None and store.owner.email == DEMO_EMAIL


def test_me_shows_linked_accounts_with_points_per_service_and_combined(client, db):
    _seed()
    client.post("/accounts/login/", {"login": DEMO_EMAIL, "password": DEMO_PASSWORD})
    owner = client.get("/me/").wsgi_request.user
    for external_id in (demo.DEMO_STORE_NUMBER, "2000123456789"):
        claims.link(
            account=LegacyAccount.objects.get(external_id=external_id),
            customer=owner,
            proof="staff",
            request=None,
        )
    page = client.get("/me/").content.decode()
    assert "****0245" in page and "****6789" in page
    assert 'data-testid="me-total-points">1,920<' in page
    assert LegacyAccount.objects.get(external_id="NL-88812").owner is None


def test_me_uses_the_same_queries_with_one_and_three_links(client, db):
    _seed()
    client.post("/accounts/login/", {"login": DEMO_EMAIL, "password": DEMO_PASSWORD})
    owner = client.get("/me/").wsgi_request.user
    counts = []
    for external_id in (demo.DEMO_STORE_NUMBER, "2000123456789", "NL-88812"):
        claims.link(
            account=LegacyAccount.objects.get(external_id=external_id),
            customer=owner,
            proof="staff",
            request=None,
        )
        with CaptureQueriesContext(connection) as captured:
            client.get("/me/")
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1] == counts[2]
