import itertools

import pytest

from accounts import unified_id
from accounts.models import Customer, IssuedUnifiedID


def test_generated_ids_are_twelve_digits_with_a_valid_check_digit():
    for _ in range(1000):
        value = unified_id.generate()
        assert len(value) == 12
        assert value.isdigit()
        assert value[0] != "0"
        assert unified_id.is_valid(value)


def test_known_damm_check_digit():
    # The worked example of the Damm algorithm: 572 -> check digit 4.
    assert unified_id.check_digit("572") == "4"


def test_every_single_digit_error_is_caught():
    for _ in range(200):
        value = unified_id.generate()
        for position, digit in itertools.product(range(12), "0123456789"):
            if value[position] == digit:
                continue
            typo = value[:position] + digit + value[position + 1 :]
            assert not unified_id.is_valid(typo), (value, typo)


def test_every_adjacent_transposition_is_caught():
    for _ in range(500):
        value = unified_id.generate()
        for position in range(11):
            a, b = value[position], value[position + 1]
            if a == b:
                continue
            swapped = value[:position] + b + a + value[position + 2 :]
            assert not unified_id.is_valid(swapped), (value, swapped)


def test_ids_are_not_sequential():
    values = [int(unified_id.generate()[:-1]) for _ in range(50)]
    gaps = {b - a for a, b in itertools.pairwise(values)}
    assert len(gaps) > 45


@pytest.mark.parametrize(
    "text", ["", "12345678901", "1234567890123", "12345678901a", "１２３４５６７８９０１２"]
)
def test_malformed_ids_are_rejected(text):
    assert not unified_id.is_valid(text)


def test_display_groups_by_four():
    assert unified_id.display("123456789012") == "1234 5678 9012"
    assert unified_id.is_valid(unified_id.display(unified_id.generate()))


@pytest.mark.django_db
def test_every_customer_gets_an_issued_id_on_creation():
    customer = Customer.objects.create_user("a@example.jp", "correct horse battery")
    assert unified_id.is_valid(customer.unified_id)
    assert IssuedUnifiedID.objects.filter(unified_id=customer.unified_id).exists()


@pytest.mark.django_db
def test_the_id_does_not_change_on_later_saves():
    customer = Customer.objects.create_user("a@example.jp", "correct horse battery")
    before = customer.unified_id
    customer.name = "佐藤"
    customer.save()
    customer.refresh_from_db()
    assert customer.unified_id == before


@pytest.mark.django_db
def test_a_deleted_customers_id_is_never_issued_again(monkeypatch):
    customer = Customer.objects.create_user("a@example.jp", "correct horse battery")
    taken = customer.unified_id
    customer.delete()
    fresh = unified_id.generate()
    draws = iter([taken, fresh])
    monkeypatch.setattr(unified_id, "generate", lambda: next(draws))
    newcomer = Customer.objects.create_user("b@example.jp", "correct horse battery")
    assert newcomer.unified_id == fresh
    assert IssuedUnifiedID.objects.filter(unified_id=taken).exists()


@pytest.mark.django_db
def test_unified_id_is_unique_in_the_database():
    from django.db import IntegrityError, transaction

    first = Customer.objects.create_user("a@example.jp", "correct horse battery")
    second = Customer.objects.create_user("b@example.jp", "correct horse battery")
    with pytest.raises(IntegrityError), transaction.atomic():
        Customer.objects.filter(pk=second.pk).update(unified_id=first.unified_id)
