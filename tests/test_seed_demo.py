import re
from io import StringIO

from allauth.account.models import EmailAddress
from django.core.management import call_command
from django.urls import reverse

from accounts import unified_id
from accounts.models import Customer


def _seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_seeding_twice_makes_one_verified_demo_customer(db):
    _seed()
    _seed()

    customer = Customer.objects.get()
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
