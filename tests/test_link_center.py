import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.audit import AuditEvent
from linking import claims
from linking.claims import AccountTaken
from linking.models import LegacyAccount, LinkEvent
from linking.proofs import ProofRefused
from linking.proofs.email_match import link_by_email_match
from tests.fixtures.mfa import stepped_up


@pytest.fixture
def customer_client(customer_client):
    """Linking needs step-up (accounts.stepup): the customer re-authenticated just now."""
    return stepped_up(customer_client)


def test_center_lists_linked_accounts_masked_with_combined_points(
    customer_client, customer, make_account, make_service
):
    app = make_service("app")
    for external_id, service, points in [("S0001234", None, 100), ("A0009876", app, 250)]:
        kwargs = {"service": service} if service else {}
        account = make_account(external_id, points=points, **kwargs)
        claims.link(account=account, customer=customer, proof="staff", request=None)
    page = customer_client.get("/link/").content.decode()
    assert "****1234" in page and "****9876" in page
    assert "S0001234" not in page
    assert 'data-testid="total-points">350<' in page


def test_suggestions_come_from_verified_email_only_and_show_masked_hints(
    customer_client, customer, make_account
):
    mine = make_account(
        "S0001111", email="HANAKO@example.jp", name="山田 花子", phone="09011112222"
    )
    make_account("S0002222", email="someone-else@example.jp", name="他人")
    page = customer_client.get("/link/").content.decode()
    assert "****1111" in page
    assert "****2222" not in page
    assert "山田" not in page and "09011112222" not in page
    assert f"/link/suggested/{mine.pk}/" in page


def test_unverified_email_gives_no_suggestions(client, make_customer, make_account):
    unverified = make_customer("hanako@example.jp", verified=False)
    make_account("S0001111", email="hanako@example.jp")
    client.force_login(unverified)
    assert "****1111" not in client.get("/link/").content.decode()


def test_the_center_uses_the_same_queries_for_1_and_30_links(client, make_customer, make_account):
    def queries_for(customer, count):
        for index in range(count):
            account = make_account(f"{customer.pk}-{index:04d}", points=index)
            claims.link(account=account, customer=customer, proof="staff", request=None)
        client.force_login(customer)
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/link/").status_code == 200
        return len(captured.captured_queries)

    one = queries_for(make_customer("one@example.jp"), 1)
    thirty = queries_for(make_customer("thirty@example.jp"), 30)
    assert one == thirty


def test_verified_email_match_links_with_one_confirmation(customer_client, customer, make_account):
    account = make_account("S0001111", email="hanako@example.jp")
    response = customer_client.post(f"/link/suggested/{account.pk}/", follow=True)
    account.refresh_from_db()
    assert account.owner == customer
    assert account.link_events.get().proof == "email_match"
    assert "****1111" in response.content.decode()


def test_email_match_is_refused_for_an_unverified_email(rf, make_customer, make_account):
    customer = make_customer("hanako@example.jp", verified=False)
    account = make_account("S0001111", email="hanako@example.jp")
    with pytest.raises(ProofRefused):
        link_by_email_match(customer=customer, account=account, request=rf.post("/"))
    account.refresh_from_db()
    assert account.owner is None
    assert AuditEvent.objects.filter(action="proof_failed", method="email_match").exists()


def test_email_match_is_refused_where_the_service_does_not_allow_it(
    rf, customer, make_service, make_account
):
    strict = make_service("pos", proofs=["code"])
    account = make_account("P1", service=strict, email="hanako@example.jp")
    with pytest.raises(ProofRefused):
        link_by_email_match(customer=customer, account=account, request=rf.post("/"))
    account.refresh_from_db()
    assert account.owner is None


def test_a_suggestion_of_another_customer_cannot_be_opened(client, make_customer, make_account):
    make_customer("hanako@example.jp")
    account = make_account("S0001111", email="hanako@example.jp")
    client.force_login(make_customer("taro@example.jp"))
    stepped_up(client)
    assert client.post(f"/link/suggested/{account.pk}/").status_code == 404
    account.refresh_from_db()
    assert account.owner is None


def test_unlink_asks_to_reauthenticate_then_confirm(client, customer, make_account):
    from tests.conftest import PASSWORD

    account = make_account("S0001111")
    claims.link(account=account, customer=customer, proof="staff", request=None)
    client.post("/accounts/login/", {"login": customer.email, "password": PASSWORD})
    # A sign-in long ago: unlinking asks for the password again.
    session = client.session
    session["account_authentication_methods"] = [
        {**m, "at": m["at"] - 3600} for m in session.get("account_authentication_methods", [])
    ]
    session.save()
    response = client.get(f"/link/account/{account.pk}/unlink/")
    assert response.status_code == 302 and "reauthenticate" in response["Location"]
    client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    assert (
        client.post(f"/link/account/{account.pk}/unlink/", {}).status_code == 200
    )  # confirm box unticked
    account.refresh_from_db()
    assert account.owner == customer
    client.post(f"/link/account/{account.pk}/unlink/", {"confirm": "on"})
    account.refresh_from_db()
    assert account.owner is None
    assert [e.action for e in LinkEvent.objects.filter(account=account).order_by("id")] == [
        "link",
        "unlink",
    ]


def test_relinking_after_unlink_works(customer, make_account):
    account = make_account("S0001111")
    claims.link(account=account, customer=customer, proof="staff", request=None)
    claims.unlink(account=account, customer=customer, request=None)
    assert claims.link(account=account, customer=customer, proof="staff", request=None)
    account.refresh_from_db()
    assert account.owner == customer


def test_link_history_is_append_only(customer, make_account):
    account = make_account("S0001111")
    claims.link(account=account, customer=customer, proof="staff", request=None)
    event = LinkEvent.objects.get()
    event.reason = "rewritten"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        LinkEvent.objects.all().delete()
    with pytest.raises(PermissionError):
        LinkEvent.objects.update(reason="x")


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_by_different_customers_have_exactly_one_winner(
    make_customer, make_account
):
    if connection.vendor != "postgresql":
        pytest.skip("needs concurrent writers: runs on PostgreSQL in CI (.ci/run)")
    account = make_account("S0001111")
    customers = [make_customer(f"c{index}@example.jp") for index in range(8)]
    barrier = threading.Barrier(len(customers))
    outcomes: list[str] = []

    def claim(customer) -> None:
        from django.db import connections

        try:
            barrier.wait()
            claims.link(account=account, customer=customer, proof="staff", request=None)
            outcomes.append("won")
        except AccountTaken:
            outcomes.append("taken")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claim, args=(customer,)) for customer in customers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["taken"] * 7 + ["won"]
    account.refresh_from_db()
    assert account.owner in customers
    assert LinkEvent.objects.filter(account=account).count() == 1
    assert AuditEvent.objects.filter(action="link_conflict").count() == 7
    assert LegacyAccount.objects.filter(owner__isnull=False).count() == 1
