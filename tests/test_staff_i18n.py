"""Every admin page, as staff reading Japanese: no model, field, column, filter or
app name is left in English. The test renders each registered model's list, add
form and change form, and the staff pages, and reads what names things there
(titles, headings, labels, column headers, filters, help, buttons, menus)."""

import re
from html.parser import HTMLParser

import pytest
from allauth.idp.oidc.models import Token
from allauth.socialaccount.models import SocialAccount
from allauth.usersessions.models import UserSession
from django.contrib import admin
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import audit
from accounts.audit import ActorKind, AuditEvent
from accounts.models import BackchannelLogout, ConsentNotice, ConsentRecord
from linking import claims
from linking.api.models import ApiCall, WebhookDelivery
from linking.campaigns.models import Delivery, Suppression
from linking.line.models import AccountLinkNonce, LineFriend, WebhookEvent
from linking.matching.models import CandidateGroup, MatchRun, ModelVersion
from linking.models import ImportJob, LegacyService
from tests.fixtures.staff import verified_login

pytest_plugins = ["tests.fixtures.campaigns", "tests.fixtures.api"]

# Words that stay as they are in Japanese text.
ALLOWED = {
    "ID", "IDs", "URL", "URLs", "URI", "URIs", "CSV", "API", "TOTP", "OTP", "HTML", "UTF",
    "JIS", "CP", "OIDC", "OpenID", "Connect", "IdP", "LINE", "Google", "Webhook", "JSON",
    "CORS", "IP", "SMS", "QR", "OAuth", "PKCE", "Control", "Mac", "Command", "Shift", "ping",
    "YYYY", "MM", "DD", "CSRF", "HTTP", "HTTPS", "JA", "Splink",
}  # fmt: skip
# Where a page names things. Data (table cells, read-only values, objects to pick,
# the rows of a list) is not read.
NAMING = {"title", "h1", "h2", "h3", "legend", "label", "th", "caption", "button", "summary"}
NAMING_CLASSES = {"help", "helptext", "breadcrumbs", "paginator", "object-tools", "errornote"}
NAMING_IDS = {"nav-sidebar", "changelist-filter"}
SKIPPED = {"script", "style", "textarea", "code", "pre", "svg", "iframe", "td", "tbody"}
SKIPPED_CLASSES = {"readonly", "related-widget-wrapper", "mail-preview-text"}
SKIPPED_IDS = {"user-tools"}
VOID = {"area", "br", "col", "hr", "img", "input", "link", "meta", "source", "wbr"}
DATA = re.compile(
    r"[\w.+-]+@[\w.-]+"  # email addresses
    r"|https?://\S+"
    r"|\{\{ *\w+ *\}\}"  # campaign placeholders
    r"|\b(?:[A-Z0-9]+(?:_[A-Z0-9]+)+|[a-z0-9]+(?:_[a-z0-9]+)+)\b"  # settings, identifiers
    r"|[(（]例[:：].*[)）]|\"[^\"]*\""  # examples of values
)


class _Names(HTMLParser):
    """The texts of a page that name things, each with the element it is in."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, set[str], str]] = []
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        values = dict(attrs)
        if tag == "input" and values.get("type") in ("submit", "button"):
            self._data("input", values.get("value") or "")
        if tag not in VOID:
            classes = set((values.get("class") or "").split())
            if (values.get("lang") or "ja") != "ja":  # on purpose: the English email
                classes.add("readonly")
            self.stack.append((tag, classes, values.get("id") or ""))

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index][0] == tag:
                del self.stack[index:]
                return

    def handle_data(self, data: str) -> None:
        for tag, classes, ident in self.stack:
            if tag in SKIPPED or classes & SKIPPED_CLASSES or ident in SKIPPED_IDS:
                return
        for tag, classes, ident in reversed(self.stack):
            if tag in NAMING or tag == "option" or classes & NAMING_CLASSES:
                self._data(tag, data)
                return
            if ident in NAMING_IDS:
                self._data(ident, data)
                return

    def _data(self, where: str, data: str) -> None:
        text = " ".join(data.split())
        if text:
            self.found.append((where, text))


def english_words(text: str) -> list[str]:
    words = re.findall(r"[A-Za-z][A-Za-z']+", DATA.sub(" ", text))
    return [word for word in words if word not in ALLOWED]


def untranslated(html: str, data: tuple[str, ...] = ()) -> set[tuple[str, str]]:
    """(element, text) of every naming text with an English word; `data` (the
    names of the objects on the page) is taken out first."""
    names = _Names()
    names.feed(html)
    found = set()
    for where, text in names.found:
        for value in sorted(data, key=len, reverse=True):
            text = text.replace(value, " ")
        if english_words(text):
            found.add((where, text))
    return found


@pytest.fixture
def world(
    make_staff, make_customer, make_account, make_campaign, make_client, service, tmp_path, settings
):
    """One row of each kind, so every list has rows and every change form has
    something to show."""
    settings.MEDIA_ROOT = tmp_path / "media"
    staff = make_staff("admin@example.jp", superuser=True)
    hanako = make_customer("hanako@example.jp", name="山田 花子")
    account = make_account("S0001234", email="hanako@example.jp", name="山田 花子")
    claims.link(account=account, customer=hanako, proof="code", request=None)
    claims.unlink(account=account, customer=hanako, request=None, reason="customer unlinked")
    audit.record(
        AuditEvent.Action.PROOF_FAILED,
        request=None,
        customer=hanako,
        method="password",
        reason="wrong password",
    )
    audit.record(
        "staff_otp_verified",
        request=None,
        customer=staff,
        actor_kind=ActorKind.STAFF,
        method="totp",
    )
    campaign = make_campaign()
    Delivery.objects.create(
        campaign=campaign, step=0, account=account, email="hanako@example.jp",
        email_key="hanako@example.jp", language="ja",
    )  # fmt: skip
    Suppression.objects.create(email_key="gone@example.jp", reason="bounced", campaign=campaign)
    job = ImportJob(service=service, created_by=staff, status="done")
    job.file.save("pos.csv", ContentFile(b"external_id\n"), save=True)
    notice = ConsentNotice.objects.create(
        purpose_ja="目的", joint_companies_ja="各社", joint_data_ja="氏名",
        joint_purposes_ja="目的", responsible_company_ja="統合ID株式会社",
    )  # fmt: skip
    ConsentRecord.objects.create(
        customer=hanako, customer_unified_id=hanako.unified_id, kind="notice", notice=notice,
        source="signup",
    )  # fmt: skip
    registered = make_client("店舗システム", services=[service])
    WebhookDelivery.objects.create(
        event_type="account.linked",
        client=registered.access,
        url="https://example.jp/hook",
        body="{}",
    )
    ApiCall.objects.create(client_id=registered.client.id, endpoint="resolve", status=200)
    Token.objects.create(
        type=Token.Type.ACCESS_TOKEN, hash="h", client=registered.client, user=hanako
    )
    UserSession.objects.create(
        user=hanako, ip="192.0.2.1", session_key="k" * 32, user_agent="Mozilla/5.0"
    )
    SocialAccount.objects.create(user=hanako, provider="line", uid="U1234567890")
    BackchannelLogout.objects.create(client=registered.client, uri="https://example.jp/logout")
    run = MatchRun.objects.create(
        status=MatchRun.Status.DONE, model_version=ModelVersion.objects.create(splink_settings={})
    )
    group = CandidateGroup.objects.create(
        run=run,
        probability=0.99,
        evidence=[{"a": account.pk, "b": account.pk, "probability": 0.99, "weights": {}}],
    )
    group.members.create(account=account)
    now = timezone.now()
    LineFriend.objects.create(
        line_user_id="U" + "1" * 32, customer=hanako, is_friend=True, linked_at=now
    )
    AccountLinkNonce.objects.create(
        nonce_hash="n" * 64, customer=hanako, link_token="t", expires_at=now
    )
    WebhookEvent.objects.create(webhook_event_id="e1", event_type="follow", occurred_at=now)
    return {"staff": staff, "customer": hanako, "campaign": campaign, "job": job}


def _names_of_things() -> tuple[str, ...]:
    """What staff or the code named (services, API endpoints, IdP IDs): shown in
    filters and pickers as named. Roles are not: the three the code creates are
    shown by their Japanese names."""
    return (
        *(str(service) for service in LegacyService.objects.all()),
        *ApiCall.objects.values_list("endpoint", flat=True),
        *SocialAccount.objects.values_list("provider", flat=True),
    )


def _pages(world) -> list[tuple[str, tuple[str, ...]]]:
    """(URL, names of objects it shows) of every admin page: of each model its list,
    add form and the change form, history and deletion of a row."""
    pages = [("/admin/", ()), (reverse("admin:password_change"), ())]
    for model in admin.site._registry:
        info = (model._meta.app_label, model._meta.model_name)
        rows = tuple(str(row) for row in model._default_manager.all()[:20])
        pages.append((reverse("admin:{}_{}_changelist".format(*info)), rows))
        pages.append((reverse("admin:{}_{}_add".format(*info)), ()))
        first = model._default_manager.order_by("pk").first()
        assert first is not None, f"no {model._meta.label} in the world: its pages go untested"
        for view in ("change", "history", "delete"):
            url = reverse("admin:{}_{}_{}".format(*info, view), args=[first.pk])
            pages.append((url, (str(first),)))
    campaign = world["campaign"]
    for name in ("preview", "progress"):
        url = reverse(f"admin:campaigns_campaign_{name}", args=[campaign.pk])
        pages.append((url, (str(campaign),)))
    customer = world["customer"]
    for name in ("dashboard", "matching", "backup_codes"):
        pages.append((reverse(f"admin:staff_{name}"), ()))
    pages.append((reverse("admin:staff_search") + "?q=山田花子", ()))
    pages.append(
        (reverse("admin:staff_customer", args=[customer.pk]), (customer.unified_id_display,))
    )
    return pages


def test_every_admin_page_names_things_in_japanese(client, world):
    verified_login(client, world["staff"])
    found = {}
    names = _names_of_things()
    for url, data in _pages(world):
        data = (*data, *names)
        response = client.get(url, HTTP_ACCEPT_LANGUAGE="ja")
        if response.status_code == 403:
            continue  # no add form or deletion (append-only records)
        assert response.status_code == 200, url
        for where, text in untranslated(response.content.decode(), data):
            found.setdefault((where, text), url)
    report = sorted(f"{url}  <{where}> {text}" for (where, text), url in found.items())
    assert not report, "\n".join(report)


def test_roles_and_staff_are_given_permissions_named_in_japanese(client, world):
    """Django keeps permission names in English ("Can add customer"); the pickers of
    the role and staff forms name them in Japanese, and offer only those that grant
    something in the admin."""
    verified_login(client, world["staff"])
    for url in ("/admin/auth/group/add/", f"/admin/accounts/customer/{world['staff'].pk}/change/"):
        page = client.get(url, HTTP_ACCEPT_LANGUAGE="ja").content.decode()
        checkbox = r'<label for="id_(?:user_)?permissions_\d+"><input type="checkbox"[^>]*>'
        options = re.findall(checkbox + r"\s*([^<]*?)\s*</label>", page)
        assert "顧客 | 顧客を閲覧できる" in options, options
        assert "ID連携 | ID連携率ダッシュボードを閲覧できる" in options
        assert [option for option in options if english_words(option)] == []
    role = client.get("/admin/auth/group/add/", HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert re.search(r'<label[^>]*for="id_name"[^>]*>ロール名', role)


def test_roles_are_named_in_japanese_and_keep_their_stored_names(client, world):
    """The groups keep the names code looks up (admin, analyst, support); the staff
    list's filter, the staff form, the role list and a role's page name them in
    Japanese. A role staff create is shown as they named it."""
    Group.objects.create(name="店舗スタッフ")
    verified_login(client, world["staff"])
    japanese = ["管理者", "分析担当", "サポート担当", "店舗スタッフ"]

    staff_list = client.get("/admin/accounts/customer/", HTTP_ACCEPT_LANGUAGE="ja")
    (filters,) = re.findall(r'id="changelist-filter".*?</nav>', staff_list.content.decode(), re.S)
    shown = re.findall(r'<a href="\?groups__id__exact=\d+"[^>]*>\s*([^<]*?)\s*</a>', filters)
    assert sorted(shown) == sorted(japanese)

    url = f"/admin/accounts/customer/{world['staff'].pk}/change/"
    form = client.get(url, HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    checkbox = r'<label for="id_groups_\d+"><input type="checkbox"[^>]*>\s*([^<]*?)\s*</label>'
    assert sorted(re.findall(checkbox, form)) == sorted(japanese)

    roles = client.get("/admin/auth/group/", HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    listed = re.findall(r'<th class="field-role"><a [^>]*>([^<]*)</a></th>', roles)
    assert sorted(listed) == sorted(japanese)
    admin_role = Group.objects.get(name="admin")
    page = client.get(f"/admin/auth/group/{admin_role.pk}/change/", HTTP_ACCEPT_LANGUAGE="ja")
    assert "<h2>管理者</h2>" in page.content.decode()

    stored = set(Group.objects.values_list("name", flat=True))
    assert stored == {"admin", "analyst", "support", "店舗スタッフ"}


@pytest.mark.parametrize("device", [True, False], ids=["verify", "enroll"])
def test_the_second_factor_pages_are_japanese(make_staff, device):
    client = Client()
    client.force_login(make_staff(device=device))
    page = client.get("/admin/verify/" if device else "/admin/enroll/", HTTP_ACCEPT_LANGUAGE="ja")
    assert page.status_code == 200
    assert not untranslated(page.content.decode())


def test_things_have_names_not_a_persons_name_and_the_dashboard_a_date_range(
    otp_admin_client,
):
    form = otp_admin_client.get("/admin/campaigns/campaign/add/").content.decode()
    assert re.search(r'<label[^>]*for="id_name"[^>]*>キャンペーン名', form)
    assert "氏名" not in form
    client = otp_admin_client.get("/admin/allauth_idp_oidc/client/add/").content.decode()
    assert re.search(r'<label[^>]*for="id_name"[^>]*>クライアント名', client)
    apps = otp_admin_client.get("/admin/mfa/authenticatorapp/").content.decode()
    assert "デバイス名" in apps and "氏名" not in apps
    board = otp_admin_client.get("/admin/dashboard/").content.decode()
    assert re.search(r'for="id_start"[^>]*>開始日', board)
    assert re.search(r'for="id_end"[^>]*>終了日', board)
    assert "宛先" not in board


def test_stored_actions_methods_and_reasons_read_in_japanese(client, world):
    verified_login(client, world["staff"])
    trail = client.get("/admin/accounts/auditevent/").content.decode()
    for shown in (
        "お客様が連携を解除",
        "パスワードの誤り",
        "スタッフの2段階認証に成功",
        "認証アプリ",
    ):
        assert shown in trail
    for stored in (">customer unlinked<", ">wrong password<", ">staff_otp_verified<", ">totp<"):
        assert stored not in trail
    history = client.get(f"/admin/customer/{world['customer'].pk}/").content.decode()
    assert "<td>お客様が連携を解除</td>" in history
    record = ConsentRecord.objects.get()
    consent = client.get(f"/admin/accounts/consentrecord/{record.pk}/change/").content.decode()
    assert f"<h2>{record.customer_unified_id} 通知に同意</h2>" in consent
    english = client.get("/admin/accounts/auditevent/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "unlinked by the customer" in english
