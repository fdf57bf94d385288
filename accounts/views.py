import segno
from allauth.account import views as allauth_views
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount, SocialApp
from allauth.socialaccount.views import connections as allauth_connections
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache

from accounts import consent, deletion, export
from accounts.forms import AgreementForm, DeletionForm, MarketingEmailForm
from accounts.models import ConsentRecord
from accounts.reauth import (
    code_allowed,
    needs_idp_reauthentication,
    reauthentication_url,
)
from accounts.stepup import step_up_required
from linking import selectors


def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("me")
    return render(request, "home.html")


@never_cache
@login_required
def me(request: HttpRequest) -> HttpResponse:
    customer = request.user
    identities = SocialAccount.objects.filter(user=customer).order_by("date_joined")
    emails = EmailAddress.objects.filter(user=customer).order_by("-primary", "email")
    linked = list(selectors.linked_accounts(customer))
    return render(
        request,
        "accounts/me.html",
        {
            "customer": customer,
            "identities": [
                (identity, _provider_name(request, identity)) for identity in identities
            ],
            "emails": emails,
            "has_password": customer.has_usable_password(),
            "card_qr": _card_qr_svg(customer.unified_id),
            "linked": linked,
            "total_points": sum(account.points for account in linked),
        },
    )


def _provider_name(request: HttpRequest, identity: SocialAccount) -> str:
    try:
        return identity.get_provider(request).name
    except SocialApp.DoesNotExist:  # configured once, since removed: still show the identity
        return identity.provider


def _card_qr_svg(unified_id: str) -> str:
    """The member card's QR code as inline SVG: sharp on any screen and on paper."""
    qr = segno.make(unified_id, error="m", micro=False)
    return qr.svg_inline(scale=8, border=4, dark="#000", light="#fff", omitsize=True)


@login_required
def connections(request: HttpRequest) -> HttpResponse:
    """allauth's sign-in methods page, after a recent sign-in for customers who have
    no password (allauth asks password customers itself)."""
    if needs_idp_reauthentication(request):
        return redirect(reauthentication_url(request.get_full_path()))
    return allauth_connections(request)


@never_cache
@login_required
def reauthenticate_idp(request: HttpRequest) -> HttpResponse:
    """Sign in again at one of your own IdPs before something sensitive
    (accounts.reauth: this signs nobody in, it proves a new sign-in)."""
    next_url = request.GET.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure()):
        next_url = "/me/"
    identities = SocialAccount.objects.filter(user=request.user).order_by("date_joined")
    providers = []
    for identity in identities:
        try:
            provider = identity.get_provider(request)
        except SocialApp.DoesNotExist:  # the IdP is no longer configured here
            continue
        providers.append(
            (
                provider,
                provider.get_login_url(
                    request, process="redirect", action="reauthenticate", next=next_url
                ),
            )
        )
    return render(request, "accounts/reauthenticate_idp.html", {"providers": providers})


@login_required
def request_reauthentication_code(request: HttpRequest) -> HttpResponse:
    """allauth's re-authentication by mailed code, only as the fallback of
    accounts.reauth: never for a customer with a password."""
    if not code_allowed(request):
        raise PermissionDenied
    return allauth_views.request_reauthentication_code(request)


@login_required
def confirm_reauthentication_code(request: HttpRequest) -> HttpResponse:
    if not code_allowed(request):
        raise PermissionDenied
    return allauth_views.confirm_reauthentication_code(request)


def notice(request: HttpRequest) -> HttpResponse:
    """The current notice on purpose of use and joint use, for anyone to read."""
    return render(request, "accounts/notice.html", {"notice": consent.current_notice()})


def terms(request: HttpRequest) -> HttpResponse:
    """The terms of membership, linked from sign-up."""
    return render(request, "accounts/terms.html")


@never_cache
@login_required
def agreement(request: HttpRequest) -> HttpResponse:
    """Agree to the current notice (asked before the first link)."""
    next_url = _safe_next(request, reverse("me"))
    form = AgreementForm(request.POST if request.method == "POST" else None)
    if form.notice is None or not consent.needs_agreement(request.user):
        return redirect(next_url)
    if request.method == "POST" and form.is_valid():
        source = (
            ConsentRecord.Source.LINK
            if next_url.startswith(reverse("linking:center"))
            else ConsentRecord.Source.SETTINGS
        )
        consent.agree(customer=request.user, notice=form.notice, source=source)
        return redirect(next_url)
    return render(
        request, "accounts/agreement.html", {"form": form, "notice": form.notice, "next": next_url}
    )


@never_cache
@login_required
def marketing(request: HttpRequest) -> HttpResponse:
    """Marketing email consent, given or withdrawn at any time."""
    customer = request.user
    form = MarketingEmailForm(
        request.POST if request.method == "POST" else None,
        initial={"marketing_email": bool(customer.marketing_email_consent)},
    )
    if request.method == "POST" and form.is_valid():
        granted = form.cleaned_data["marketing_email"]
        if granted != customer.marketing_email_consent:
            consent.set_marketing_email(
                customer=customer, granted=granted, source=ConsentRecord.Source.SETTINGS
            )
        messages.success(
            request,
            _("You will receive news and offers by email.")
            if granted
            else _("You will no longer receive news and offers by email."),
        )
        return redirect("marketing")
    history = ConsentRecord.objects.filter(customer=customer).select_related("notice")
    return render(
        request,
        "accounts/marketing.html",
        {
            "form": form,
            "consent_given": customer.marketing_email_consent,
            "history": history,
            "agreed_version": consent.agreed_version(customer),
            "notice": consent.current_notice(),
        },
    )


@never_cache
@step_up_required
def export_data(request: HttpRequest) -> HttpResponse:
    """Page with the download button; ?download=1 downloads the JSON file."""
    if request.GET.get("download") != "1":
        return render(request, "accounts/export.html")
    response = HttpResponse(export.as_json(request.user), content_type="application/json")
    filename = f"unified-id-{request.user.unified_id}.json"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@never_cache
@step_up_required
def delete_account(request: HttpRequest) -> HttpResponse:
    form = DeletionForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        deletion.delete_customer(customer=request.user)
        logout(request)
        return render(request, "accounts/deleted.html")
    linked = list(selectors.linked_accounts(request.user))
    return render(request, "accounts/delete.html", {"form": form, "linked": linked})


def _safe_next(request: HttpRequest, default: str) -> str:
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure()):
        return next_url
    return default
