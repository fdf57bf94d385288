import re
from datetime import timedelta
from io import StringIO

from allauth.account.models import EmailAddress
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from accounts import unified_id
from accounts.models import Customer
from linking import demo
from linking.campaigns.models import Campaign, Delivery
from linking.models import LegacyAccount, LinkEvent
from linking.staff import stats


def _seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_seeding_twice_makes_one_verified_demo_customer(db):
    _seed()
    _seed()

    customer = Customer.objects.get(email="demo@example.jp")  # the others: demo history
    assert EmailAddress.objects.filter(email="demo@example.jp").count() == 1
    assert unified_id.is_valid(customer.unified_id)
    address = EmailAddress.objects.get(user=customer)
    assert address.email == customer.email
    assert address.verified
    assert address.primary


def test_the_demo_customer_signs_in_with_the_printed_password(client, db):
    _seed()
    printed = re.search(r"Demo customer \w[\w ]*: (\S+@\S+) / (\S+)", _seed())
    assert printed, "seed_demo prints the demo login"
    email, password = printed.groups()

    response = client.post(reverse("account_login"), {"login": email, "password": password})

    assert response.status_code == 302
    assert response["Location"] == reverse("me")
    page = client.get(reverse("me")).content.decode()
    assert Customer.objects.get(email=email).unified_id_display in page


def test_the_demo_has_90_days_of_links_and_a_finished_campaign_for_the_dashboard(db):
    _seed()
    _seed()  # once only
    links = LinkEvent.objects.filter(reason=demo.HISTORY_REASON)
    days = {event.created_at.date() for event in links}
    today = timezone.localdate()
    assert len(days) >= 25
    assert min(days) >= today - timedelta(days=demo.HISTORY_DAYS)
    assert max(days) - min(days) >= timedelta(days=60)
    assert links.values("proof").distinct().count() >= 3

    board = stats.dashboard(today - timedelta(days=89), today)
    assert len([day for day in board.days if day.links]) >= 25
    # Every account was there when the history starts: the link rate's line only
    # rises, instead of falling on the last day when the other accounts appear.
    assert len({day.accounts for day in board.days}) == 1
    (campaign,) = Campaign.objects.filter(status=Campaign.Status.FINISHED)
    steps = stats.funnel(today - timedelta(days=89), today)
    first = next(step for step in steps if step.campaign_id == campaign.pk)
    assert first.sent > first.clicked > first.linked > 0
    # A link proved by the campaign is one through a clicked campaign email.
    by_campaign = links.filter(proof="campaign").values_list("account", flat=True)
    through_email = Delivery.objects.filter(campaign=campaign, linked_at__isnull=False)
    assert sorted(by_campaign) == sorted(through_email.values_list("account", flat=True))
    demo_customer = Customer.objects.get(email="demo@example.jp")
    assert not LegacyAccount.objects.filter(owner=demo_customer).exists()
