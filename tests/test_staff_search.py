"""Staff find a customer by any identifier, normalized, and see the whole picture."""

import pytest
from allauth.socialaccount.models import SocialAccount

from accounts.audit import ActorKind
from linking import claims
from tests.fixtures.staff import verified_login


@pytest.fixture
def analyst_client(client, make_staff):
    return verified_login(client, make_staff(role="analyst"))


@pytest.fixture
def world(make_customer, make_service, make_account, service):
    hanako = make_customer("hanako@example.jp", name="山田 花子")
    app = make_service("app")
    store_account = make_account(
        "S0001234", email="Hanako@Example.jp", phone="090-1234-5678", name="山田　花子"
    )
    app_account = make_account("A77", service=app, name="ヤマダ ハナコ")
    make_account("S0009999", email="other@example.jp")
    claims.link(account=store_account, customer=hanako, proof="code", request=None)
    SocialAccount.objects.create(user=hanako, provider="line", uid="U1234567890")
    return {"hanako": hanako, "store": service, "app": app, "app_account": app_account}


def _found(client, query, **extra) -> str:
    response = client.get("/admin/search/", {"q": query, **extra})
    assert response.status_code == 200
    return response.content.decode()


def test_by_unified_id_with_spaces(analyst_client, world):
    page = _found(analyst_client, world["hanako"].unified_id_display)
    assert f"/admin/customer/{world['hanako'].pk}/" in page


def test_the_headings_name_lists_not_counts(analyst_client, world):
    page = _found(analyst_client, "山田花子")
    assert "<h2>該当する顧客</h2>" in page
    assert "<h2>該当する既存アカウント</h2>" in page
    assert "既存アカウント数" not in page


def test_by_email_in_any_case(analyst_client, world):
    page = _found(analyst_client, " HANAKO@example.JP ")
    assert f"/admin/customer/{world['hanako'].pk}/" in page
    assert "S0001234" in page
    assert "S0009999" not in page


def test_by_phone_in_another_format(analyst_client, world):
    assert "S0001234" in _found(analyst_client, "+81 90 1234 5678")
    assert "S0001234" in _found(analyst_client, "０９０１２３４５６７８")


def test_by_service_and_member_number(analyst_client, world):
    assert "<td>A77</td>" in _found(analyst_client, "A77", service=world["app"].pk)
    assert "<td>A77</td>" not in _found(analyst_client, "A77", service=world["store"].pk)


def test_by_name_normalized(analyst_client, world):
    page = _found(analyst_client, "山田花子")
    assert "S0001234" in page


def _results(client, query: str) -> tuple[set[int], set[str]]:
    """The customers (pks) and legacy accounts (member numbers) found."""
    response = client.get("/admin/search/", {"q": query})
    assert response.status_code == 200
    results = response.context["results"]
    if results is None:
        return set(), set()
    return {c.pk for c in results.customers}, {a.external_id for a in results.accounts}


FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def test_by_full_width_digits(analyst_client, world, make_account):
    make_account("20001234567", name="鈴木 一郎")
    hanako = world["hanako"]
    customers, _ = _results(analyst_client, hanako.unified_id.translate(FULL_WIDTH))
    assert customers == {hanako.pk}
    _, accounts = _results(analyst_client, "２０００１２３４５６７")
    assert accounts == {"20001234567"}


def test_by_katakana_without_spaces(analyst_client, world, make_account, make_customer):
    make_account("S0005555", name="山田 花子", name_kana="ヤマダ ハナコ")
    make_account("S0006666", name="山田　花子", name_kana="ﾔﾏﾀﾞ ﾊﾅｺ")
    make_account("S0007777", name="山田 花", name_kana="ヤマダ ハナ")
    kana_customer = make_customer("kana@example.jp", name="ヤマダ　ハナコ")
    for query in ("ヤマダハナコ", "やまだはなこ", "ﾔﾏﾀﾞﾊﾅｺ"):
        customers, accounts = _results(analyst_client, query)
        assert customers == {kana_customer.pk}, query
        # A77's name itself is in katakana.
        assert accounts == {"S0005555", "S0006666", "A77"}, query


def test_a_customer_by_name_without_a_space(analyst_client, world, make_customer):
    make_customer("taro@example.jp", name="山田 太郎")
    customers, accounts = _results(analyst_client, "山田花子")
    assert customers == {world["hanako"].pk}
    assert accounts == {"S0001234"}
    customers, _ = _results(analyst_client, "山田　花子")
    assert customers == {world["hanako"].pk}


@pytest.mark.parametrize("query", ["", "x" * 500, "%", "' OR 1=1 --", "@", "0"])
def test_odd_input_never_fails(analyst_client, world, query):
    _found(analyst_client, query)
    assert analyst_client.get("/admin/search/", {"service": "nope"}).status_code == 200


def test_the_customer_page_shows_everything(analyst_client, world, make_staff):
    hanako = world["hanako"]
    support = make_staff("support@example.jp", role="support")
    claims.link(
        account=world["app_account"],
        customer=hanako,
        proof="staff",
        request=None,
        actor=support,
        actor_kind=ActorKind.STAFF,
        reason="窓口で本人確認",
    )
    page = analyst_client.get(f"/admin/customer/{hanako.pk}/").content.decode()
    assert hanako.unified_id_display in page
    assert "U1234567890" in page  # sign-in identity
    assert "S0001234" in page and "A77" in page  # linked accounts
    assert "窓口で本人確認" in page  # history with the reason
    assert 'data-testid="consents"' in page
    assert analyst_client.get("/admin/customer/999999/").status_code == 404
