"""Demo data for `manage.py seed_demo`: three group services with realistic legacy
records, a few of them the demo customer's (same email or phone)."""

import random
from datetime import date

from django.contrib.auth.hashers import make_password

from linking import normalize
from linking.models import LegacyAccount, LegacyService, Proof

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
