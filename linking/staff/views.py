"""Staff pages inside the admin. Thin: they check input and call the flows in
linking.staff (otp, stats, search, matching) and linking.claims."""

from functools import wraps
from urllib.parse import urlencode

from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.contrib import admin, messages
from django.contrib.auth import logout
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_POST

from accounts.audit import ActorKind, AuditEvent
from accounts.models import ConsentRecord, Customer
from linking import claims
from linking.campaigns.models import Delivery
from linking.models import LegacyAccount, LinkEvent, Proof
from linking.normalize import EXACT_RULES
from linking.staff import charts, export, matching, otp, stats
from linking.staff import search as search_flow
from linking.staff.forms import LinkForm, RangeForm, SearchForm, TokenForm, UnlinkForm
from linking.staff.otp import safe_next


def requires(permission: str):
    """403 unless the signed-in, verified staff member has the permission."""

    def decorator(view):
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.has_perm(permission):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def _context(request: HttpRequest, title: str, **extra) -> dict:
    return {**admin.site.each_context(request), "title": title, **extra}


def _factor_context(request: HttpRequest, title: str, **extra) -> dict:
    """The second-factor pages show no admin menu: the person is not verified yet."""
    site = admin.site
    return {
        "site_title": site.site_title,
        "site_header": site.site_header,
        "site_url": site.site_url,
        "has_permission": False,
        "is_nav_sidebar_enabled": False,
        "is_popup": False,
        "title": title,
        **extra,
    }


def _staff_awaiting_factor(request: HttpRequest) -> bool:
    user = request.user
    return user.is_authenticated and user.is_active and user.is_staff


def _to_login(request: HttpRequest) -> HttpResponseRedirect:
    return HttpResponseRedirect(
        reverse("admin:login")
        + "?"
        + urlencode({"next": safe_next(request) or reverse("admin:index")})
    )


def _onward(request: HttpRequest) -> HttpResponseRedirect:
    return HttpResponseRedirect(safe_next(request) or reverse("admin:index"))


# Second factor


@never_cache
@csrf_protect
def verify(request: HttpRequest) -> HttpResponse:
    if not _staff_awaiting_factor(request):
        return _to_login(request)
    if request.user.is_verified():
        return _onward(request)
    if otp.confirmed_device(request.user) is None:
        return HttpResponseRedirect(reverse("admin:staff_enroll") + _next_query(request))
    form = TokenForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        if otp.verify(request=request, token=form.cleaned_data["token"]):
            return _onward(request)
        error = _too_many() if otp.is_locked(request.user) else _("That code is not right.")
    return render(
        request,
        "admin/staff/verify.html",
        _factor_context(
            request, _("Second factor"), form=form, error=error, next=safe_next(request)
        ),
    )


@never_cache
@csrf_protect
def enroll(request: HttpRequest) -> HttpResponse:
    """First sign-in: set up an authenticator app. Only for a signed-in staff member
    without a confirmed device; anyone else is sent on."""
    if not _staff_awaiting_factor(request):
        return _to_login(request)
    if otp.confirmed_device(request.user) is not None:
        return (
            _onward(request)
            if request.user.is_verified()
            else HttpResponseRedirect(reverse("admin:staff_verify") + _next_query(request))
        )
    device = otp.pending_device(request.user)
    form = TokenForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        codes = otp.confirm_enrollment(
            request=request, device=device, token=form.cleaned_data["token"]
        )
        if codes:
            return render(
                request,
                "admin/staff/backup_codes.html",
                _context(request, _("Backup codes"), codes=codes, next=safe_next(request)),
            )
        error = _too_many() if otp.is_locked(request.user) else _("That code is not right.")
    return render(
        request,
        "admin/staff/enroll.html",
        _factor_context(
            request,
            _("Set up your authenticator app"),
            form=form,
            error=error,
            qr=otp.qr_svg(device),
            key=otp.manual_key(device),
            next=safe_next(request),
        ),
    )


@require_POST
@csrf_protect
def sign_out(request: HttpRequest) -> HttpResponse:
    """Sign out from the second-factor pages, where the admin's own sign-out does not
    answer yet (it is behind the second factor too)."""
    logout(request)
    return HttpResponseRedirect(reverse("admin:login"))


def backup_codes(request: HttpRequest) -> HttpResponse:
    """How many backup codes are left; POST replaces them all."""
    codes = otp.new_backup_codes(request.user) if request.method == "POST" else None
    return render(
        request,
        "admin/staff/backup_codes.html",
        _context(
            request,
            _("Backup codes"),
            codes=codes,
            unused=otp.unused_backup_codes(request.user),
        ),
    )


def _next_query(request: HttpRequest) -> str:
    target = safe_next(request)
    return "?" + urlencode({"next": target}) if target else ""


def _too_many() -> str:
    return _("Too many wrong codes. Wait 15 minutes and try again.")


# Dashboard


def dashboard(request: HttpRequest) -> HttpResponse:
    form = RangeForm(request.GET or None)
    start, end = form.period()
    board = stats.dashboard(start, end)
    proofs = dict(Proof.choices)
    return render(
        request,
        "admin/staff/dashboard.html",
        _context(
            request,
            _("Link rate"),
            form=form,
            board=board,
            daily_chart=charts.trend(board.days, title=_("Link rate and links per day")),
            weekly_chart=charts.trend(
                board.weeks, title=_("Link rate and links per week"), weekly=True
            ),
            proofs=[(proofs.get(key, key), count) for key, count in board.proofs.items()],
            csv_query=urlencode({"start": start.isoformat(), "end": end.isoformat()}),
        ),
    )


def dashboard_csv(request: HttpRequest) -> HttpResponse:
    start, end = RangeForm(request.GET or None).period()
    board = stats.dashboard(start, end)
    response = HttpResponse(
        "\ufeff" + export.dashboard_csv(board), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = (
        f'attachment; filename="link-rate-{start.isoformat()}-{end.isoformat()}.csv"'
    )
    return response


@require_POST
def dashboard_refresh(request: HttpRequest) -> HttpResponse:
    stats.refresh()
    messages.success(request, _("The figures were recomputed."))
    return HttpResponseRedirect(reverse("admin:staff_dashboard"))


# Search and the customer page


def search(request: HttpRequest) -> HttpResponse:
    form = SearchForm(request.GET or None)
    results = None
    if form.is_valid() and form.cleaned_data["q"]:
        results = search_flow.search(form.cleaned_data["q"], service=form.cleaned_data["service"])
    return render(
        request,
        "admin/staff/search.html",
        _context(request, _("Find a customer"), form=form, results=results),
    )


def customer(request: HttpRequest, pk: int) -> HttpResponse:
    person = get_object_or_404(Customer, pk=pk)
    accounts = list(
        LegacyAccount.objects.filter(owner=person)
        .select_related("service")
        .order_by("service__code")
    )
    history = list(
        LinkEvent.objects.filter(customer=person)
        .select_related("account__service", "actor")
        .order_by("-created_at", "-id")[:100]
    )
    deliveries = list(
        Delivery.objects.filter(
            Q(account__owner=person) | (Q(email_key=person.email) if person.email else Q(pk__in=[]))
        )
        .select_related("campaign", "account__service")
        .order_by("-pk")[:50]
    )
    may_link = request.user.has_perm("linking.assist_link")
    return render(
        request,
        "admin/staff/customer.html",
        _context(
            request,
            person.unified_id_display,
            person=person,
            social=list(SocialAccount.objects.filter(user=person).order_by("provider")),
            emails=list(EmailAddress.objects.filter(user=person).order_by("-primary", "email")),
            accounts=accounts,
            history=history,
            audit=list(AuditEvent.objects.filter(customer=person).order_by("-created_at")[:20]),
            consents=list(
                ConsentRecord.objects.filter(customer=person)
                .select_related("notice")
                .order_by("-created_at", "-id")[:50]
            ),
            deliveries=deliveries,
            may_link=may_link,
            link_form=LinkForm() if may_link else None,
        ),
    )


@require_POST
def link(request: HttpRequest, pk: int) -> HttpResponse:
    person = get_object_or_404(Customer, pk=pk)
    form = LinkForm(request.POST)
    if not form.is_valid():
        messages.error(
            request, _("Give the service, the member number and a reason (at least 5 characters).")
        )
        return _back(person)
    account = LegacyAccount.objects.filter(
        service=form.cleaned_data["service"], external_id=form.cleaned_data["external_id"].strip()
    ).first()
    if account is None:
        messages.error(request, _("No such member number at that service."))
        return _back(person)
    try:
        linked = claims.link(
            account=account,
            customer=person,
            proof=Proof.STAFF,
            request=request,
            actor=request.user,
            actor_kind=ActorKind.STAFF,
            reason=form.cleaned_data["reason"],
        )
    except claims.AccountTaken as taken:
        messages.error(
            request,
            _("That account is linked to another unified ID (reference %(ref)s).")
            % {"ref": taken.reference},
        )
        return _back(person)
    if linked:
        messages.success(request, _("Linked."))
    else:
        messages.info(request, _("That account was already linked to this customer."))
    return _back(person)


@require_POST
def unlink(request: HttpRequest, pk: int) -> HttpResponse:
    person = get_object_or_404(Customer, pk=pk)
    form = UnlinkForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Give a reason (at least 5 characters)."))
        return _back(person)
    account = LegacyAccount.objects.filter(pk=form.cleaned_data["account"]).first()
    if account is None:
        raise Http404
    if claims.unlink(
        account=account,
        customer=person,
        request=request,
        actor=request.user,
        actor_kind=ActorKind.STAFF,
        reason=form.cleaned_data["reason"],
    ):
        messages.success(request, _("Unlinked."))
    else:
        messages.error(request, _("That account is not linked to this customer."))
    return _back(person)


def _back(person: Customer) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("admin:staff_customer", args=[person.pk]))


# Matching report (名寄せ)


def matching_report(request: HttpRequest) -> HttpResponse:
    rule = request.GET.get("rule", "email")
    if rule not in EXACT_RULES:
        rule = "email"
    labels = {
        "email": _("Same email"),
        "phone": _("Same phone"),
        "name_birth": _("Same name and birth date"),
    }
    summary = matching.summary()
    return render(
        request,
        "admin/staff/matching.html",
        _context(
            request,
            _("Matching report (名寄せ)"),
            rule=rule,
            rules=[(key, labels[key], summary[key]) for key in EXACT_RULES],
            groups=matching.groups(rule),
        ),
    )
