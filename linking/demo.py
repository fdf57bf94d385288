"""Demo data for `manage.py seed_demo`: three group services with realistic legacy
records, a few of them the demo customer's (same email or phone), and 90 days of
other members' links with a finished campaign for the dashboard."""

import random
from datetime import date, datetime, timedelta

from django.contrib.auth.hashers import make_password
from django.utils import timezone

from accounts.audit import ActorKind
from linking import normalize
from linking.models import LegacyAccount, LegacyService, LinkEvent, Proof

DEMO_STORE_NUMBER = "OS-100245"
DEMO_STORE_PASSWORD = "store-pass-2026"  # noqa: S105 - the documented demo login at the old store

SERVICES = [
    {
        "code": "online-store",
        "name_ja": "オンラインストア",
        "name_en": "Online store",
        "accepted_proofs": [Proof.PASSWORD, Proof.CODE, Proof.EMAIL_MATCH, Proof.CAMPAIGN],
        "incentive_ja": "連携すると 500 ポイントをプレゼント",
        "incentive_en": "Link it and get 500 bonus points",
    },
    {
        "code": "store-membership",
        "name_ja": "店舗会員（ポイントカード）",
        "name_en": "Store membership (points card)",
        "accepted_proofs": [Proof.CODE, Proof.CAMPAIGN],
        "incentive_ja": "店舗とオンラインのポイントをまとめて使えます",
        "incentive_en": "Use your store and online points together",
    },
    {
        "code": "newsletter",
        "name_ja": "メールマガジン",
        "name_en": "Newsletter",
        "accepted_proofs": [Proof.CODE, Proof.EMAIL_MATCH, Proof.CAMPAIGN],
        "incentive_ja": "",
        "incentive_en": "",
    },
]

_FAMILY = [
    ("佐藤", "サトウ"),
    ("鈴木", "スズキ"),
    ("高橋", "タカハシ"),
    ("田中", "タナカ"),
    ("伊藤", "イトウ"),
    ("渡辺", "ワタナベ"),
]
_GIVEN = [
    ("翔太", "ショウタ"),
    ("美咲", "ミサキ"),
    ("大輔", "ダイスケ"),
    ("陽菜", "ヒナ"),
    ("健一", "ケンイチ"),
    ("さくら", "サクラ"),
]


def _record(external_id: str, *, email: str, phone: str, name: str, kana: str, **fields) -> dict:
    return {
        "external_id": external_id,
        "email": email,
        "phone": phone,
        "name": name,
        "name_kana": kana,
        "email_key": normalize.normalize_email(email),
        "phone_key": normalize.normalize_phone(phone),
        "name_key": normalize.normalize_name(name),
        **fields,
    }


def _records(code: str, prefix: str, demo_email: str) -> list[dict]:
    rng = random.Random(code)  # the same demo data on every machine
    records = []
    for index in range(1, 25):
        (family, family_kana), (given, given_kana) = rng.choice(_FAMILY), rng.choice(_GIVEN)
        records.append(
            _record(
                f"{prefix}-{200000 + index * 37}",
                email=f"member{index:03d}.{code}@example.com",
                phone=f"090-{rng.randrange(1000, 9999)}-{rng.randrange(1000, 9999)}",
                name=f"{family} {given}",
                kana=f"{family_kana} {given_kana}",
                birth_date=date(
                    rng.randrange(1955, 2004), rng.randrange(1, 13), rng.randrange(1, 28)
                ),
                points=rng.randrange(0, 5000),
            )
        )
    if code == "online-store":
        records.append(
            _record(
                DEMO_STORE_NUMBER,
                email=demo_email.upper(),
                phone="090-1111-2222",
                name="山田 花子",
                kana="ヤマダ ハナコ",
                birth_date=date(1990, 4, 1),
                points=1280,
                password_hash=make_password(DEMO_STORE_PASSWORD, hasher="pbkdf2_sha256"),
            )
        )
    elif code == "store-membership":
        records.append(
            _record(
                "2000123456789",
                email=demo_email,
                phone="０９０－１１１１－２２２２",
                name="山田　花子",
                kana="ﾔﾏﾀﾞ ﾊﾅｺ",
                points=640,
            )
        )
    else:
        records.append(_record("NL-88812", email=f" {demo_email} ", phone="", name="", kana=""))
    return records


def seed(demo_email: str) -> int:
    """Create or refresh the demo services and accounts; never touches ownership."""
    count = 0
    for spec in SERVICES:
        service, _created = LegacyService.objects.update_or_create(code=spec["code"], defaults=spec)
        prefix = {"online-store": "OS", "store-membership": "POS", "newsletter": "NL"}[service.code]
        for record in _records(service.code, prefix, demo_email):
            LegacyAccount.objects.update_or_create(
                service=service, external_id=record.pop("external_id"), defaults=record
            )
            count += 1
    return count


HISTORY_DAYS = 90
HISTORY_REASON = "demo history"
# How members linked without the campaign email (its links are those who clicked).
_PROOFS = {
    "online-store": [Proof.PASSWORD, Proof.EMAIL_MATCH, Proof.CODE],
    "store-membership": [Proof.CODE],
    "newsletter": [Proof.EMAIL_MATCH, Proof.CODE],
}


def seed_history(now: datetime | None = None) -> int:
    """90 days of links by other (made-up) members and one finished campaign, so every
    chart and the funnel of the dashboard show something on a fresh start. Once only;
    never touches the demo customer's own accounts. Returns the links made."""
    from accounts.models import Customer
    from linking.campaigns.models import Campaign, CampaignStep, Delivery
    from linking.staff import stats

    if LinkEvent.objects.filter(reason=HISTORY_REASON).exists():
        return 0
    now = now or timezone.now()
    rng = random.Random("history")  # the same history on every machine
    start = now - timedelta(days=HISTORY_DAYS)
    members = list(
        LegacyAccount.objects.filter(owner__isnull=True, email__startswith="member")
        .select_related("service")
        .order_by("pk")
    )
    # Every account of the demo was imported before the history: the dashboard's
    # link rate then has one denominator over the whole period.
    LegacyAccount.objects.filter(imported_at__gt=start).update(imported_at=start)
    campaign = Campaign.objects.create(
        name="秋の統合ID連携キャンペーン",
        status=Campaign.Status.FINISHED,
        start_at=now - timedelta(days=40),
        started_at=now - timedelta(days=40),
        finished_at=now - timedelta(days=26),
        subject_ja="{{ name }}様、{{ service }}のアカウントを統合IDへ",
        text_ja="{{ name }}様\n{{ service }}の会員番号 {{ member_number }} を統合IDに連携すると"
        "{{ incentive }}\n{{ link }}",
        subject_en="{{ name }}, link your {{ service }} account",
        text_en="Dear {{ name }},\nlink member {{ member_number }}: {{ incentive }}\n{{ link }}",
        sender_company="サンプル商事株式会社",
        sender_address="東京都千代田区丸の内1-1-1",
        sender_contact="support@example.jp",
    )
    campaign.services.set(LegacyService.objects.filter(code__in=[s["code"] for s in SERVICES]))
    for number, days in ((0, 0), (1, 7)):
        CampaignStep.objects.create(
            campaign=campaign, number=number, days_after=days, planned_at=campaign.started_at
        )
    linked = 0
    for index, account in enumerate(members):
        mailed = index % 3 != 2  # two in three got the campaign mail
        sent_at = campaign.started_at + timedelta(hours=rng.randrange(0, 48))
        clicked = mailed and rng.random() < 0.55
        links = rng.random() < (0.8 if clicked else 0.6)
        when = (
            sent_at + timedelta(hours=rng.randrange(1, 14 * 24))
            if clicked and links
            # The others spread over the whole period, a day or so apart.
            else start
            + timedelta(days=HISTORY_DAYS * index / len(members), minutes=rng.randrange(0, 24 * 60))
        )
        if links:
            linked += 1
            proof = Proof.CAMPAIGN if clicked else rng.choice(_PROOFS[account.service.code])
            owner = Customer.objects.create_user(f"history{index:03d}@example.com", None)
            LegacyAccount.objects.filter(pk=account.pk).update(owner=owner, linked_at=when)
            LinkEvent.objects.create(
                account=account,
                customer=owner,
                customer_unified_id=owner.unified_id,
                action=LinkEvent.Action.LINK,
                proof=proof,
                actor_kind=ActorKind.CUSTOMER,
                campaign_id=campaign.pk if proof == Proof.CAMPAIGN else None,
                reason=HISTORY_REASON,
                created_at=when,
            )
        if mailed:
            Delivery.objects.create(
                campaign=campaign,
                step=0,
                account=account,
                email=account.email,
                email_key=account.email_key,
                language="ja",
                status=Delivery.Status.SENT,
                sent_at=sent_at,
                clicked_at=sent_at + timedelta(hours=1) if clicked else None,
                linked_at=when if clicked and links else None,
            )
    stats.refresh(now)
    return linked
