"""The matching report (名寄せ) on a known dataset: groups across services by email,
phone, or name plus birth date; it links nothing."""

import datetime

import pytest

from linking.models import LegacyAccount, LinkEvent
from linking.staff import matching
from tests.fixtures.staff import verified_login

BIRTH = datetime.date(1990, 4, 1)


@pytest.fixture
def known(make_service, make_account, service):
    app, pos = make_service("app"), make_service("pos")
    # Email: one group over store and app (case and width differ); the two store-only
    # records sharing an email are no group (one service).
    make_account("E1", email="Taro@Example.jp")
    make_account("E2", service=app, email="ｔａｒｏ@example.jp")
    make_account("E3", service=app, email="taro@example.jp")
    make_account("E4", email="solo@example.jp")
    make_account("E5", email="solo@example.jp")
    # Phone: one group over three services.
    make_account("P1", phone="090-1111-2222")
    make_account("P2", service=app, phone="+81 90 1111 2222")
    make_account("P3", service=pos, phone="09011112222")
    # Name and birth date: a group of two; a namesake born another day is not in it;
    # a name without a birth date never matches.
    make_account("N1", name="山田 花子", birth_date=BIRTH)
    make_account("N2", service=pos, name="山田　花子", birth_date=BIRTH)
    make_account("N3", service=app, name="山田花子", birth_date=datetime.date(1991, 1, 1))
    make_account("N4", service=app, name="山田花子")
    return {"app": app, "pos": pos}


def test_it_counts_groups_per_rule(known):
    assert matching.summary() == {
        "email": {"groups": 1, "accounts": 3},
        "phone": {"groups": 1, "accounts": 3},
        "name_birth": {"groups": 1, "accounts": 2},
    }


def test_it_lists_each_group_with_its_accounts(known):
    (email,) = matching.groups("email")
    assert sorted(a.external_id for a in email.members) == ["E1", "E2", "E3"]
    assert (email.accounts, email.services) == (3, 2)
    (phone,) = matching.groups("phone")
    assert sorted(a.external_id for a in phone.members) == ["P1", "P2", "P3"]
    (name,) = matching.groups("name_birth")
    assert sorted(a.external_id for a in name.members) == ["N1", "N2"]


def test_the_page_shows_the_report_and_links_nothing(client, make_staff, known):
    verified_login(client, make_staff(role="analyst"))
    for rule in ("email", "phone", "name_birth", "bogus"):
        response = client.get("/admin/matching/", {"rule": rule})
        assert response.status_code == 200
    page = client.get("/admin/matching/?rule=phone").content.decode()
    assert "P1" in page and "P3" in page
    assert not LegacyAccount.objects.filter(owner__isnull=False).exists()
    assert not LinkEvent.objects.exists()


def test_a_group_can_be_invited_by_a_campaign_limited_to_its_accounts(client, make_staff, known):
    from django.contrib.auth.models import Group as StaffGroup

    from linking.campaigns import planning
    from linking.campaigns.models import Campaign

    staff = make_staff("admin@example.jp", superuser=True)
    verified_login(client, staff)
    (group,) = matching.groups("email")
    page = client.get("/admin/matching/?rule=email").content.decode()
    invite = f"/admin/campaigns/campaign/add/?{group.campaign_query}".replace("&", "&amp;")
    assert invite in page

    form = client.get(f"/admin/campaigns/campaign/add/?{group.campaign_query}").content.decode()
    ids = ",".join(str(a.pk) for a in group.members)
    assert f'value="{ids}"' in form  # the accounts field comes prefilled

    campaign = Campaign.objects.create(
        name="名寄せ email",
        subject_ja="連携のご案内",
        text_ja="{{ link }}",
        sender_company="サンプル商事株式会社",
        sender_address="東京都千代田区丸の内1-1-1",
        sender_contact="support@example.jp",
    )
    campaign.services.set({a.service for a in group.members} | {known["pos"]})
    campaign.accounts.set(group.members)
    assert sorted(a.external_id for a in planning.audience(campaign)) == ["E1", "E2", "E3"]
    campaign.accounts.clear()
    assert "E4" in {a.external_id for a in planning.audience(campaign)}
    assert StaffGroup.objects.exists()  # roles are there; nothing above linked anything
    assert not LinkEvent.objects.exists()
