"""Synthetic legacy records with known truth, for tests, the benchmark and the demo.

People come from Faker's ja_JP names; each holds accounts at one to four services.
The services keep different fields, as real ones do (a points card has no email, a
newsletter no phone), and each record carries the noise legacy data has: kana in
katakana, hiragana or half-width, spaces of any width or none, full-width digits,
a changed phone or free-mail address, a married name, a day-first birth date."""

import random
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

from faker import Faker

SERVICES = ("online-store", "store-membership", "newsletter", "travel")
# Which fields each service collects.
FIELDS = {
    "online-store": {"name", "kana", "email", "phone", "birth", "postal"},
    "store-membership": {"name", "kana", "phone", "birth", "postal"},
    "newsletter": {"kana", "email", "birth"},
    "travel": {"name", "kana", "email", "phone", "birth", "postal"},
}
_HALF = {}
for _code in range(0xFF61, 0xFFA0):
    _full = unicodedata.normalize("NFKC", chr(_code))
    if len(_full) == 1:
        _HALF[_full] = chr(_code)
for _code in range(0x30A1, 0x30F7):
    _parts = unicodedata.normalize("NFD", chr(_code))
    if len(_parts) == 2 and _parts[0] in _HALF:
        _HALF[chr(_code)] = _HALF[_parts[0]] + ("ﾞ" if _parts[1] == "\u3099" else "ﾟ")
_WIDE = {ord(c): ord(c) + 0xFEE0 for c in "0123456789-"}


@dataclass
class Person:
    surname: tuple[str, str, str]
    given: tuple[str, str, str]
    birth: date
    email: str
    phone: str
    postal: str
    prefecture: str


# Faker's ja_JP lists hold about 50 surnames and 50 given names: a million people
# would share far more names than real ones do. Compounds of these parts add a long
# tail; Faker's common names stay the frequent ones.
def _parts(text: str) -> list[tuple[str, ...]]:
    return [tuple(part.split(":")) for part in text.split()]


_SURNAME_PARTS = _parts(
    "山:ヤマ:yama 田:タ:ta 中:ナカ:naka 村:ムラ:mura 川:カワ:kawa 本:モト:moto 木:キ:ki "
    "井:イ:i 松:マツ:matsu 石:イシ:ishi 藤:フジ:fuji 野:ノ:no 原:ハラ:hara 島:シマ:shima "
    "小:コ:ko 大:オオ:oo 高:タカ:taka 橋:ハシ:hashi 森:モリ:mori 岡:オカ:oka 上:ウエ:ue "
    "下:シタ:shita 西:ニシ:nishi 東:ヒガシ:higashi 北:キタ:kita 谷:タニ:tani 崎:サキ:saki "
    "平:ヒラ:hira 沢:サワ:sawa 宮:ミヤ:miya 浜:ハマ:hama 堀:ホリ:hori"
)
_GIVEN_HEADS = _parts(
    "健:ケン:ken 翔:ショウ:sho 大:ダイ:dai 美:ミ:mi 優:ユウ:yu 真:マ:ma 陽:ハル:haru "
    "悠:ユウ:yu 結:ユ:yu 花:ハナ:hana 和:カズ:kazu 智:トモ:tomo 直:ナオ:nao 恵:メグ:megu "
    "千:チ:chi 彩:アヤ:aya"
)
_GIVEN_TAILS = _parts(
    "太:タ:ta 子:コ:ko 斗:ト:to 介:スケ:suke 菜:ナ:na 香:カ:ka 樹:キ:ki 也:ヤ:ya 奈:ナ:na "
    "郎:ロウ:ro"
)


def _compound(rng: random.Random, heads: list, tails: list) -> tuple[str, str, str]:
    head, tail = rng.choice(heads), rng.choice(tails)
    return head[0] + tail[0], head[1] + tail[1], (head[2] + tail[2]).capitalize()


class Pools:
    """Faker values drawn once: composing records from them is fast enough for 1M."""

    def __init__(self, rng: random.Random, size: int = 3000) -> None:
        fake = Faker("ja_JP")
        fake.seed_instance(rng.randrange(1 << 30))
        self.surnames = [fake.last_name_pair() for _ in range(size)]
        self.surnames += [_compound(rng, _SURNAME_PARTS, _SURNAME_PARTS) for _ in range(size)]
        self.given = [
            fake.first_name_female_pair() if i % 2 else fake.first_name_male_pair()
            for i in range(size)
        ]
        self.given += [_compound(rng, _GIVEN_HEADS, _GIVEN_TAILS) for _ in range(size)]
        self.places = [(fake.zipcode(), fake.prefecture()) for _ in range(size)]
        self.domains = [*sorted({fake.free_email_domain() for _ in range(200)}), "docomo.ne.jp"]


def _phone(rng: random.Random, number: int | None = None) -> str:
    """A mobile number; with `number`, one no other person has (a permutation of it)."""
    digits = (number * 48_271 + 12_345) % 10**8 if number is not None else rng.randrange(10**8)
    return f"0{rng.choice('789')}0-{digits // 10000:04d}-{digits % 10000:04d}"


def _email(rng: random.Random, person_roman: str, pools: Pools, number: int | None = None) -> str:
    """A free-mail address; with `number`, one no other person has."""
    local = person_roman.lower().replace(" ", rng.choice(["", ".", "_"]))
    suffix = number if number is not None else rng.randrange(10000)
    return f"{local}{suffix}@{rng.choice(pools.domains)}"


def person(rng: random.Random, pools: Pools, number: int) -> Person:
    surname, given = rng.choice(pools.surnames), rng.choice(pools.given)
    postal, prefecture = rng.choice(pools.places)
    return Person(
        surname=surname,
        given=given,
        birth=date(1940, 1, 1) + timedelta(days=rng.randrange(365 * 65)),
        email=_email(rng, f"{given[2]} {surname[2]}", pools, number),
        phone=_phone(rng, number),
        postal=postal,
        prefecture=prefecture,
    )


def _kana(rng: random.Random, surname: str, given: str) -> str:
    style = rng.random()
    text = surname + rng.choice([" ", "　", ""]) + given
    if style < 0.3:
        return "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in text)
    if style < 0.4:
        return "".join(_HALF.get(c, c) for c in text)
    return text


def _digits(rng: random.Random, value: str) -> str:
    if rng.random() < 0.2:
        return value.translate(_WIDE)
    if rng.random() < 0.3:
        return value.replace("-", "")
    return value


def record(rng: random.Random, who: Person, service: str, pools: Pools) -> dict:
    """One account of `who` at `service`, with noise."""
    fields = FIELDS[service]
    surname = who.surname
    if rng.random() < 0.03:  # married (or unmarried) since
        surname = rng.choice(pools.surnames)
    phone = who.phone if rng.random() < 0.85 else _phone(rng)
    email = who.email
    if rng.random() < 0.15:  # another free-mail address, often with the same local part
        local = who.email.partition("@")[0]
        if rng.random() < 0.5:
            local = _email(rng, who.given[2], pools).partition("@")[0]
        email = f"{local}@{rng.choice(pools.domains)}"
    if rng.random() < 0.1:
        email = email.upper()
    birth = who.birth
    if rng.random() < 0.1 and birth.day <= 12:
        birth = date(birth.year, birth.day, birth.month)
    postal, prefecture = (
        (who.postal, who.prefecture) if rng.random() < 0.85 else rng.choice(pools.places)
    )
    # Sorted: a set's order varies from process to process, and the draws must not.
    keep = {field for field in sorted(fields) if rng.random() < 0.95}
    attributes = {}
    if "postal" in keep:
        attributes = {"postal_code": _digits(rng, postal), "prefecture": prefecture}
    return {
        "service": service,
        "name": surname[0] + rng.choice([" ", "　", ""]) + who.given[0] if "name" in keep else "",
        "name_kana": _kana(rng, surname[1], who.given[1]) if "kana" in keep else "",
        "email": email if "email" in keep else "",
        "phone": _digits(rng, phone) if "phone" in keep else "",
        "birth_date": birth if "birth" in keep else None,
        "attributes": attributes,
    }


def generate(n: int, *, seed: int = 22, services: tuple[str, ...] = SERVICES) -> list[dict]:
    """n records at `services` (codes of FIELDS); each has "person" (the truth) and
    an "id" from 1."""
    rng = random.Random(seed)
    pools = Pools(rng)
    records: list[dict] = []
    person_id = 0
    while len(records) < n:
        person_id += 1
        who = person(rng, pools, person_id)
        count = rng.choices((1, 2, 3, 4), weights=(35, 35, 20, 10))[0]
        for service in rng.sample(services, min(count, len(services))):
            row = record(rng, who, service, pools)
            row["person"] = person_id
            row["id"] = len(records) + 1
            records.append(row)
    return records[:n]


def load(records: list[dict], services: dict, prefix: str = "SYN") -> dict[int, int]:
    """Save records as LegacyAccounts of `services` (by code), match keys computed as
    the importer does. Returns {record id: account pk}."""
    from linking import normalize
    from linking.models import LegacyAccount

    accounts = LegacyAccount.objects.bulk_create(
        (
            LegacyAccount(
                service=services[record["service"]],
                external_id=f"{prefix}{record['id']:07d}",
                email=record["email"],
                phone=record["phone"],
                name=record["name"],
                name_kana=record["name_kana"],
                birth_date=record["birth_date"],
                attributes=record["attributes"],
                email_key=normalize.normalize_email(record["email"]),
                phone_key=normalize.normalize_phone(record["phone"]),
                name_key=normalize.normalize_name(record["name"]),
            )
            for record in records
        ),
        batch_size=2000,
    )
    return {record["id"]: account.pk for record, account in zip(records, accounts, strict=True)}
