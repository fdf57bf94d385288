"""The link center: customers see, link and unlink their legacy accounts. Views
only check input and call a proof module or linking.claims."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.humanize.templatetags.humanize import intcomma
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts import audit, consent, limits
from accounts.stepup import step_up_required
from linking import claims, selectors
from linking.forms import CodeForm, MemberNumberForm, PasswordProofForm, SendCodeForm, UnlinkForm
from linking.models import LegacyAccount, LegacyService, Proof
from linking.proofs import ProofRefused, ProofThrottled, email_match, oidc, password
from linking.proofs import code as code_proof

_PENDING = "linking_pending_account"


@login_required
def center(request: HttpRequest) -> HttpResponse:
    rows, total_points = selectors.link_center(request.user)
    return render(request, "linking/center.html", {"rows": rows, "total_points": total_points})


@login_required
@step_up_required(allow_get=True, sign_in_counts=True)
@consent.agreement_required
def service(request: HttpRequest, code: str) -> HttpResponse:
    """Start linking an account of one service: by legacy password, or by member
    number followed by a one-time code."""
    service = get_object_or_404(LegacyService, code=code)
    password_form = PasswordProofForm(prefix="pw")
    number_form = MemberNumberForm(prefix="num")
    if (
        request.method == "POST"
        and "pw-external_id" in request.POST
        and service.accepts(Proof.PASSWORD)
    ):
        password_form = PasswordProofForm(request.POST, prefix="pw")
        if password_form.is_valid():
            try:
                return _attempt(
                    request,
                    lambda: password.link_by_password(
                        customer=request.user,
                        service=service,
                        external_id=password_form.cleaned_data["external_id"],
                        password=password_form.cleaned_data["password"],
                        request=request,
                    ),
                    retry=request.path,
                    keep_form=True,
                )
            except ProofRefused as refused:
                # The form again, the member number kept, the error at the password.
                password_form.add_error("password", refused.message)
    elif (
        request.method == "POST"
        and "num-external_id" in request.POST
        and service.accepts(Proof.CODE)
    ):
        number_form = MemberNumberForm(request.POST, prefix="num")
        # Each lookup counts, so member numbers cannot be enumerated for contact hints.
        if number_form.is_valid() and not limits.attempt(_lookup_keys(request)):
            messages.error(request, str(ProofThrottled().message))
        elif number_form.is_valid():
            account = LegacyAccount.objects.filter(
                service=service, external_id=number_form.cleaned_data["external_id"]
            ).first()
            if account is None or not code_proof.channels_for(account):
                messages.error(
                    request, _("We cannot send a code for this member number. Please check it.")
                )
            else:
                request.session[_PENDING] = account.pk
                return redirect("linking:code", pk=account.pk)
    return render(
        request,
        "linking/service.html",
        {
            "service": service,
            "password_form": password_form if service.accepts(Proof.PASSWORD) else None,
            "number_form": number_form if service.accepts(Proof.CODE) else None,
            "offers_oidc": service.accepts(Proof.OIDC) and bool(service.oidc_server_url),
        },
    )


@login_required
@step_up_required(allow_get=True, sign_in_counts=True)
@consent.agreement_required
def suggested(request: HttpRequest, pk: int) -> HttpResponse:
    """A suggested account ("this may be yours"): link it by verified email where
    the service allows, else by a code sent to the contact on record."""
    account = get_object_or_404(selectors.suggestions(request.user), pk=pk)
    if request.method == "POST" and account.service.accepts(Proof.EMAIL_MATCH):
        return _attempt(
            request,
            lambda: email_match.link_by_email_match(
                customer=request.user, account=account, request=request
            ),
            retry=request.path,
            account=account,
        )
    if not account.service.accepts(Proof.EMAIL_MATCH):
        request.session[_PENDING] = account.pk
        return redirect("linking:code", pk=account.pk)
    return render(request, "linking/suggested.html", {"account": account})


@login_required
@step_up_required(allow_get=True, sign_in_counts=True)
@consent.agreement_required
def code(request: HttpRequest, pk: int) -> HttpResponse:
    """Send a one-time code to the record's contact, then check it."""
    if request.session.get(_PENDING) != pk:
        return redirect("linking:center")
    account = get_object_or_404(LegacyAccount.objects.select_related("service"), pk=pk)
    if not account.service.accepts(Proof.CODE):
        return redirect("linking:service", code=account.service.code)
    channels = code_proof.channels_for(account)
    send_form = SendCodeForm(channels=channels)
    code_form = CodeForm()
    if request.method == "POST" and "channel" in request.POST:
        send_form = SendCodeForm(request.POST, channels=channels)
        if send_form.is_valid():
            try:
                code_proof.send_code(
                    customer=request.user,
                    account=account,
                    channel=send_form.cleaned_data["channel"],
                    request=request,
                )
                messages.success(
                    request,
                    _("We sent a code to %(hint)s.")
                    % {"hint": channels[send_form.cleaned_data["channel"]]},
                )
            except ProofRefused as refused:
                messages.error(request, refused.message)
            return redirect("linking:code", pk=pk)
    elif request.method == "POST":
        code_form = CodeForm(request.POST)
        if code_form.is_valid():
            response = _attempt(
                request,
                lambda: code_proof.link_by_code(
                    customer=request.user,
                    account=account,
                    entered=code_form.cleaned_data["code"],
                    request=request,
                ),
                retry=request.path,
                account=account,
            )
            if response.url != request.path:
                request.session.pop(_PENDING, None)
            return response
    return render(
        request,
        "linking/code.html",
        {"account": account, "send_form": send_form, "code_form": code_form},
    )


@login_required
@require_POST
@step_up_required(sign_in_counts=True)
@consent.agreement_required
def oidc_start(request: HttpRequest, code: str) -> HttpResponse:
    service = get_object_or_404(LegacyService, code=code)
    try:
        return redirect(oidc.start(service=service, request=request))
    except ProofRefused as refused:
        messages.error(request, refused.message)
        return redirect("linking:service", code=code)


@login_required
def oidc_callback(request: HttpRequest) -> HttpResponse:
    return _attempt(request, lambda: oidc.finish(request=request), retry=reverse("linking:center"))


@login_required
@step_up_required
def unlink(request: HttpRequest, pk: int) -> HttpResponse:
    account = get_object_or_404(
        LegacyAccount.objects.select_related("service"), pk=pk, owner=request.user
    )
    form = UnlinkForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        claims.unlink(
            account=account, customer=request.user, request=request, reason="customer unlinked"
        )
        messages.success(request, _("The account is no longer linked to your unified ID."))
        return redirect("linking:center")
    return render(request, "linking/unlink.html", {"account": account, "form": form})


def _lookup_keys(request: HttpRequest) -> dict:
    return {"lookup.customer": request.user.pk, "lookup.ip": audit.client_ip(request)}


def _attempt(
    request: HttpRequest,
    prove,
    *,
    retry: str,
    account: LegacyAccount | None = None,
    keep_form: bool = False,
) -> HttpResponse:
    """Run a proof; translate its outcome into a message and a redirect. With
    keep_form, a refused proof is raised for the view to show on its form."""
    try:
        linked = prove() or account
    except ProofRefused as refused:
        if keep_form:
            raise
        messages.error(request, refused.message)
        return redirect(retry)
    except claims.AccountTaken as taken:
        messages.error(
            request,
            _(
                "This account is already linked to another unified ID, so it was not linked. "
                "If you think this is a mistake, contact support with reference %(reference)s."
            )
            % {"reference": taken.reference},
        )
        return redirect(retry)
    messages.success(request, linked_message(linked))
    return redirect("linking:center")


def linked_message(account: LegacyAccount | None) -> str:
    """What linking gave: the account, and its points now counted with the others."""
    done = _("Linked. The account now belongs to your unified ID.")
    if account is None or not account.points:
        return done
    points = _("%(points)s points of %(service)s now count toward your unified ID.") % {
        "points": intcomma(account.points),
        "service": account.service.name,
    }
    return f"{done} {points}"
