"""Links vouched for by a group service: its backend pushes a link request, the
customer confirms here, the return URL gets a one-time code and the backend
exchanges it for the result. Each defence has a test that fails without it."""

import json
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client as DjangoClient
from django.utils import timezone

from accounts.audit import AuditEvent
from linking import claims
from linking.api.models import LinkRequest
from linking.campaigns import content
from linking.models import LegacyAccount, LinkEvent
from tests.api_support import bearer, fetch_token
from tests.fixtures.mfa import stepped_up

pytest_plugins = ["tests.fixtures.api", "tests.fixtures.campaigns"]

RETURN_URL = "https://store.example.jp/unified-id/return"


@pytest.fixture
def shop(make_service):
    return make_service("shop", proofs=("vouched",), incentive_ja="連携で500ポイント")


@pytest.fixture
def shop_account(make_account, shop):
    return make_account("S0001234", service=shop, points=500)


@pytest.fixture
def backend(make_client, shop):
    """The shop's backend: a client that may see the shop, with its return URL."""
    registered = make_client("shop backend", services=[shop])
    registered.access.return_urls = [RETURN_URL]
    registered.access.save()
    return registered


@pytest.fixture
def api(backend) -> "Api":
    return Api(fetch_token(backend, "link_requests"))


class Api:
    def __init__(self, token: str) -> None:
        self.client, self.token = DjangoClient(), token

    def post(self, path: str, body: dict):
        return self.client.post(
            f"/api/v1/{path}",
            json.dumps(body),
            content_type="application/json",
            **bearer(self.token),
        )

    def push(self, external_id: str = "S0001234", **more):
        body = {"service": "shop", "external_id": external_id, "return_url": RETURN_URL}
        return self.post("link-requests", {**body, "state": "st-1", **more})

    def link_path(self, **more) -> str:
        response = self.push(**more)
        assert response.status_code == 201, response.content
        return urlsplit(response.json()["url"]).path

    def exchange(self, code: str):
        return self.post("link-results", {"code": code})


def signed_in(make_customer, email: str) -> DjangoClient:
    browser = DjangoClient()
    browser.force_login(make_customer(email))
    return stepped_up(browser)


def _code(response) -> str:
    assert response.status_code == 302, response.content
    location = response["Location"]
    assert location.startswith(RETURN_URL + "?")
    query = parse_qs(urlsplit(location).query)
    assert set(query) == {"code", "state"} and query["state"] == ["st-1"]
    return query["code"][0]


def test_a_vouched_link_is_confirmed_and_its_result_exchanged_once(
    api, backend, customer, customer_client, shop_account
):
    path = api.link_path()
    assert path.startswith("/link/from-service/")
    stepped_up(customer_client)
    page = customer_client.get(path).content.decode()
    assert "shop 会員" in page and "****1234" in page and "連携で500ポイント" in page
    assert "S0001234" not in page

    location = customer_client.post(path)
    code = _code(location)
    assert customer.unified_id not in location["Location"]

    result = api.exchange(code)
    assert result.status_code == 200
    assert result.json() == {
        "result": "linked",
        "service": "shop",
        "external_id": "S0001234",
        "unified_id": customer.unified_id,
        "reference": None,
        "state": "st-1",
    }
    shop_account.refresh_from_db()
    assert shop_account.owner == customer
    event = LinkEvent.objects.get(account=shop_account)
    request = LinkRequest.objects.get()
    assert event.proof == "vouched"
    assert event.reason == f"vouched by client {backend.client_id}, link request {request.pk}"
    proof = AuditEvent.objects.get(action="proof_succeeded", account=shop_account)
    assert proof.data == {"client_id": backend.client_id, "link_request": request.pk}
    # The code is single-use.
    assert api.exchange(code).status_code == 404


def test_a_link_url_cannot_be_used_twice(api, customer_client, shop_account):
    path = api.link_path()
    stepped_up(customer_client)
    _code(customer_client.post(path))
    again = customer_client.post(path)
    assert again.status_code == 410
    assert "この連携リンクはすでに使われています" in again.content.decode()
    assert customer_client.get(path).status_code == 410
    assert LinkEvent.objects.count() == 1


def test_an_expired_link_url_is_refused(api, customer_client, shop_account):
    path = api.link_path()
    LinkRequest.objects.update(expires_at=timezone.now())
    stepped_up(customer_client)
    refused = customer_client.post(path)
    assert refused.status_code == 410
    assert "有効期限が切れています" in refused.content.decode()
    shop_account.refresh_from_db()
    assert shop_account.owner is None


def test_a_link_url_belongs_to_the_first_customer_who_opens_it(
    api, customer, customer_client, make_customer, shop_account
):
    path = api.link_path()
    stepped_up(customer_client)
    assert customer_client.get(path).status_code == 200
    other = signed_in(make_customer, "taro@example.jp")
    assert other.get(path).status_code == 403
    refused = other.post(path)
    assert refused.status_code == 403
    assert "別の統合ID" in refused.content.decode()
    shop_account.refresh_from_db()
    assert shop_account.owner is None
    assert AuditEvent.objects.filter(action="proof_failed", method="vouched").count() == 2
    # The first customer still can.
    _code(customer_client.post(path))
    shop_account.refresh_from_db()
    assert shop_account.owner == customer


def test_an_altered_link_url_is_refused(api, customer_client, shop_account):
    path = api.link_path()
    handle = path.split("/")[3]
    altered = path.replace(handle, handle[:-1] + ("A" if handle[-1] != "A" else "B"))
    stepped_up(customer_client)
    refused = customer_client.post(altered)
    assert refused.status_code == 404
    assert "この連携リンクは無効です" in refused.content.decode()
    shop_account.refresh_from_db()
    assert shop_account.owner is None


def test_a_return_url_that_is_not_registered_is_refused(api, shop_account):
    for url in (RETURN_URL + "/", RETURN_URL + "?next=x", "https://evil.example/unified-id/return"):
        refused = api.push(return_url=url)
        assert refused.status_code == 403
        assert refused.json()["error"] == "return_url_not_registered"
    assert not LinkRequest.objects.exists()


def test_a_service_whose_policy_does_not_allow_vouching_is_refused(
    api, customer_client, shop, shop_account
):
    path = api.link_path()  # allowed when pushed, then the policy changed
    shop.accepted_proofs = ["code"]
    shop.save()
    refused = api.push()
    assert refused.status_code == 403
    assert refused.json()["error"] == "vouching_not_allowed"
    stepped_up(customer_client)
    assert customer_client.post(path).status_code == 403
    shop_account.refresh_from_db()
    assert shop_account.owner is None
    failed = AuditEvent.objects.get(action="proof_failed", account=shop_account)
    assert (failed.method, failed.reason) == ("vouched", "service does not accept vouching")


def test_vouching_is_off_by_default(make_service):
    assert not make_service("new", proofs=()).accepts("vouched")


def test_an_account_linked_elsewhere_stays_and_both_sides_hear_why(
    api, customer, customer_client, make_customer, shop_account
):
    owner = make_customer("taro@example.jp")
    claims.link(account=shop_account, customer=owner, proof="code", request=None)
    path = api.link_path()
    stepped_up(customer_client)
    page = customer_client.post(path)
    assert page.status_code == 409
    conflict = AuditEvent.objects.get(action="link_conflict")
    body = page.content.decode()
    assert "別の統合IDと連携している" in body and conflict.reference in body
    back = page.context["back"]
    code = parse_qs(urlsplit(back).query)["code"][0]
    result = api.exchange(code).json()
    assert result["result"] == "linked_elsewhere"
    assert result["unified_id"] is None and result["reference"] == conflict.reference
    assert owner.unified_id not in json.dumps(result)
    assert LegacyAccount.objects.get(pk=shop_account.pk).owner == owner
    assert LinkEvent.objects.count() == 1


def test_an_account_already_theirs_answers_already_linked(
    api, customer, customer_client, shop_account
):
    claims.link(account=shop_account, customer=customer, proof="code", request=None)
    path = api.link_path()
    stepped_up(customer_client)
    assert "すでにあなたの統合ID" in customer_client.get(path).content.decode()
    result = api.exchange(_code(customer_client.post(path))).json()
    assert (result["result"], result["unified_id"]) == ("already_linked", customer.unified_id)


def test_a_cancelled_request_links_nothing(api, customer_client, shop_account):
    path = api.link_path()
    code = _code(customer_client.post(path + "cancel/"))
    assert api.exchange(code).json()["result"] == "cancelled"
    shop_account.refresh_from_db()
    assert shop_account.owner is None
    assert customer_client.post(path).status_code == 302  # step-up first, then...
    stepped_up(customer_client)
    assert customer_client.post(path).status_code == 410


def test_another_client_cannot_exchange_the_code(
    api, make_client, shop, customer_client, shop_account
):
    path = api.link_path()
    stepped_up(customer_client)
    code = _code(customer_client.post(path))
    other = Api(fetch_token(make_client("app backend", services=[shop]), "link_requests"))
    assert other.exchange(code).status_code == 404
    assert api.exchange(code).status_code == 200


def test_a_visitor_signs_in_first_and_comes_back(api, client, shop_account):
    path = api.link_path()
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={path}"


def test_pushing_needs_the_scope_and_a_visible_account(backend, make_client, shop_account):
    resolve_only = Api(fetch_token(backend, "resolve"))
    assert resolve_only.push().status_code == 403
    api = Api(fetch_token(backend, "link_requests"))
    assert api.push(external_id="S9999999").json()["error"] == "not_found"
    assert api.push(state="\x00").status_code == 400
    blind = Api(fetch_token(make_client("blind", services=[]), "link_requests"))
    assert blind.push().status_code == 404


def test_campaign_mail_can_point_to_the_services_own_page(make_campaign, shop, shop_account):
    campaign = make_campaign(services=[shop])
    campaign.text_ja = "こちらから: {{ service_link }}"
    ours = content.render(
        campaign,
        shop_account,
        step=0,
        link="https://id.example/c/l/x/",
        unsubscribe_url="https://id.example/u/",
    )
    assert "こちらから: https://id.example/c/l/x/" in ours.text
    shop.link_page_url = "https://store.example.jp/mypage/unified-id"
    shop.save()
    shop_account.refresh_from_db()
    theirs = content.render(
        campaign,
        shop_account,
        step=0,
        link="https://id.example/c/l/x/",
        unsubscribe_url="https://id.example/u/",
    )
    assert "こちらから: https://store.example.jp/mypage/unified-id" in theirs.text
