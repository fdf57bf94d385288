"""Staff see the LINE Official Account's friends, bindings, nonces and webhook events
in the admin, read-only; analysts and support by their role."""

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from linking.line.models import LineFriend
from tests.fakes.line import line_user_id
from tests.fixtures.staff import verified_login

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", ["analyst", "support", "admin"])
def test_every_role_sees_line_friends_and_nobody_edits_them(client, make_staff, customer, role):
    friend = LineFriend.objects.create(
        line_user_id=line_user_id(), customer=customer, linked_at=timezone.now()
    )
    staff = make_staff(role=role)
    verified_login(client, staff)

    listing = client.get("/admin/line_oa/linefriend/", HTTP_ACCEPT_LANGUAGE="ja")
    change = client.post(f"/admin/line_oa/linefriend/{friend.pk}/change/", {"customer": ""})

    assert listing.status_code == 200
    assert friend.line_user_id in listing.content.decode()
    assert "LINEの友だち" in listing.content.decode()
    assert change.status_code == 403
    friend.refresh_from_db()
    assert friend.customer == customer
    assert staff.has_perm("line_oa.view_webhookevent")


def test_the_roles_get_the_line_permissions_from_the_migrations(db):
    codenames = set(
        Group.objects.get(name="analyst").permissions.values_list("codename", flat=True)
    )

    assert {"view_linefriend", "view_accountlinknonce", "view_webhookevent"} <= codenames
    assert "change_linefriend" not in codenames
