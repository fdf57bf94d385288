"""Planning a campaign costs the same however many legacy accounts are linked: one
set-based query for the audience (anti-joins, no sub-query per account)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import consent
from accounts.models import Customer
from linking import claims
from linking.campaigns import planning, sending
from linking.campaigns.models import Delivery

pytest_plugins = ["tests.fixtures.campaigns"]


def _service_with_links(make_service, make_account, code: str, linked: int, total: int = 30):
    """A service of `total` accounts, the first `linked` linked to customers who said no
    to marketing email; every third unlinked one shares its address with one of those."""
    service = make_service(code)
    for number in range(total):
        address = f"{code}-{number}@example.jp"
        if number >= linked and number % 3 == 0 and linked:
            address = f"{code}-{number % linked}@example.jp"
        account = make_account(f"{code}-{number}", service=service, email=address)
        if number < linked:
            owner = Customer.objects.create_user(f"owner-{code}-{number}@example.jp", "pw-Long-921")
            consent.set_marketing_email(customer=owner, granted=False, source="test")
            claims.link(account=account, customer=owner, proof="staff", request=None)
    return service


def test_planning_takes_the_same_queries_however_many_accounts_are_linked(
    make_campaign, make_account, make_service
):
    counts = {}
    for linked in (0, 5, 20):
        service = _service_with_links(make_service, make_account, f"svc{linked}", linked)
        campaign = make_campaign(services=[service])
        with CaptureQueriesContext(connection) as queries:
            planning.plan_step(campaign=campaign, number=0)
        counts[linked] = len(queries)
        # Linked accounts, and unlinked ones at an address whose owner said no, are out.
        expected = {n for n in range(linked, 30) if not (linked and n % 3 == 0)}
        planned = Delivery.objects.filter(campaign=campaign).values_list(
            "account__external_id", flat=True
        )
        assert set(planned) == {f"svc{linked}-{n}" for n in expected}

    assert counts[0] == counts[5] == counts[20]


def test_the_audience_reads_the_linked_accounts_once_not_once_per_account(
    make_campaign, make_account, make_service
):
    if connection.vendor != "postgresql":
        pytest.skip("reads PostgreSQL's plan")
    service = _service_with_links(make_service, make_account, "plan", 10)
    campaign = make_campaign(services=[service])

    plan = planning.audience(campaign).explain()

    # A SubPlan is a sub-query run per audience row; anti-joins read each table once.
    assert "SubPlan" not in plan, plan
    assert "Anti Join" in plan, plan


def test_the_check_before_each_batch_looks_up_each_address_by_its_index(
    make_campaign, make_account, make_service
):
    if connection.vendor != "postgresql":
        pytest.skip("reads PostgreSQL's plan")
    service = _service_with_links(make_service, make_account, "batch", 10)
    campaign = make_campaign(services=[service])
    planning.plan_step(campaign=campaign, number=0)
    batch = Delivery.objects.filter(campaign=campaign).values_list("pk", flat=True)[:5]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # as on a big table

    plan = Delivery.objects.filter(pk__in=list(batch)).filter(sending._sendable()).explain()

    # Owned records at the address: one index lookup per delivery of the batch, not
    # a pass over every linked account for each (64 ms a batch at 100,000 links).
    assert "legacy_email_key" in plan, plan
