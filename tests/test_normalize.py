import phonenumbers
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from linking.normalize import normalize_email, normalize_kana, normalize_name, normalize_phone

NORMALIZERS = [normalize_email, normalize_phone, normalize_name, normalize_kana]

# Arbitrary text, weighted towards what legacy exports contain: kana of both widths,
# kanji, full-width Latin and digits, 全角スペース, combining (han)dakuten.
JAPANESE = st.sampled_from(
    list("アイウヴカガｶﾞﾊﾟヵヶヽヾーｰ・･あいゔかがゝゞ山田太郎髙橋")
    + list("ＡＢｃ０１９＋－（）　 \u3099\u309a\u200b")
)
ANY_TEXT = st.text(st.characters(codec=None) | JAPANESE)
PHONE_LIKE = st.text(st.sampled_from(list("0123456789０１２３４５６７８９+＋-－ー()（） 　.")))


@pytest.mark.parametrize("normalize", NORMALIZERS)
@given(value=ANY_TEXT)
def test_it_is_total_and_idempotent(normalize, value):
    once = normalize(value)
    assert isinstance(once, str)
    assert normalize(once) == once


@given(value=PHONE_LIKE)
def test_phone_keys_are_e164_or_empty(value):
    key = normalize_phone(value)
    assert key == "" or (key.startswith("+") and key[1:].isdigit())
    assert normalize_phone(key) == key


def _reference_e164(digits: str) -> str:
    try:
        number = phonenumbers.parse(digits, "JP")
    except phonenumbers.NumberParseException:
        return ""
    if not phonenumbers.is_valid_number(number):
        return ""
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@given(national=st.from_regex(r"[1-9][0-9]{8,9}", fullmatch=True))
@example(national="9012345678")
@example(national="9001234567")
@example(national="120123456")
@example(national="108900000")
def test_fast_japanese_path_agrees_with_phonenumbers(national):
    assert normalize_phone("0" + national) == _reference_e164("0" + national)
    assert normalize_phone("+81" + national) == _reference_e164("+81" + national)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ＴＡＲＯ@Example.JP ", "taro@example.jp"),
        ("  Hanako.Sato@EXAMPLE.co.jp", "hanako.sato@example.co.jp"),
        ("", ""),
        ("   ", ""),
    ],
)
def test_it_normalizes_emails(raw, expected):
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "090-1234-5678",
        "０９０１２３４５６７８",
        "０９０－１２３４－５６７８",
        "+81 90 1234 5678",
        "+81-90-1234-5678",
        "(090) 1234-5678",
        "+81 (0)90 1234 5678",
    ],
)
def test_it_reads_japanese_mobile_numbers_in_any_format(raw):
    assert normalize_phone(raw) == "+819012345678"


def test_it_reads_landlines_and_foreign_numbers():
    assert normalize_phone("03-1234-5678") == "+81312345678"
    assert normalize_phone("(03)1234-5678") == "+81312345678"
    assert normalize_phone("+1 650-253-0000") == "+16502530000"


@pytest.mark.parametrize("raw", ["", "abc", "123", "090-0000-0000-0000-0000", "0900-123-456"])
def test_it_gives_no_key_for_invalid_phone_numbers(raw):
    assert normalize_phone(raw) == ""


@pytest.mark.parametrize("raw", ["ヤマダ　タロウ", "やまだ たろう", "ﾔﾏﾀﾞ ﾀﾛｳ", "ヤマダ タロウ "])
def test_readings_fold_to_one_kana_key(raw):
    assert normalize_kana(raw) == "やまだたろう"


def test_it_folds_names_across_width_case_and_spaces():
    assert normalize_name("山田　太郎") == normalize_name("山田 太郎") == "山田太郎"
    assert normalize_name("ＹＡＭＡＤＡ Taro") == "yamadataro"
    assert normalize_name("ｼﾞｮﾝ・ｽﾐｽ") == normalize_name("ジョン スミス") == "ジョンスミス"
    assert normalize_name("山田\u200b太郎") == "山田太郎"
