"""Customer pages for the second factor: the overview, adding an authenticator app
or a passkey, backup codes, removing a device (all changes after step-up), and the
verification page every sign-in leads to. Views are thin: they call flows,
totp, backup_codes."""

from urllib.parse import quote

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from accounts import audit, notifications
from accounts.allauth_compat import resume_request
from accounts.mfa import backup_codes, flows, passkeys, totp
from accounts.mfa.forms import ConfirmForm, EnrollTOTPForm, NameForm, TokenForm
from accounts.stepup import step_up_required

DEVICE_KINDS = {"totp": TOTPDevice, "passkey": WebAuthnCredential}


@never_cache
@login_required
def overview(request: HttpRequest) -> HttpResponse:
    user = request.user
    return render(
        request,
        "mfa/overview.html",
        {
            "authenticators": TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk"),
            "passkeys": WebAuthnCredential.objects.filter(user=user, confirmed=True).order_by("pk"),
            "enrolled": flows.is_enrolled(user),
            "unused_backup_codes": backup_codes.unused(user),
            "passkeys_enabled": settings.PASSKEYS_ENABLED,
            "site_url": settings.SITE_URL,
        },
    )


@never_cache
@step_up_required
def add_totp(request: HttpRequest) -> HttpResponse:
    device = totp.pending_device(request.user, name="authenticator app")
    form = EnrollTOTPForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        codes = flows.confirm_totp(request=request, device=device, token=form.cleaned_data["token"])
        if codes is not None:
            _changed(request, "totp_added", "mfa_device_added", "totp")
            if codes:
                _changed(request, "backup_codes_generated", "mfa_backup_codes_replaced", "")
                return _show_backup_codes(request, codes)
            messages.success(request, _("The authenticator app was added."))
            return redirect("mfa_overview")
        form.add_error("token", _locked_or_wrong(request))
    return render(
        request,
        "mfa/add_totp.html",
        {"form": form, "qr": totp.qr_svg(device), "key": totp.manual_key(device)},
    )


@never_cache
@step_up_required
def add_passkey(request: HttpRequest) -> HttpResponse:
    if not settings.PASSKEYS_ENABLED:
        return redirect("mfa_overview")  # which says why
    return render(
        request,
        "mfa/add_passkey.html",
        {"passkey_config": passkeys.configuration_json(request)},
    )


@never_cache
@step_up_required
def regenerate_backup_codes(request: HttpRequest) -> HttpResponse:
    if not flows.is_enrolled(request.user):
        return redirect("mfa_overview")
    form = ConfirmForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        codes = backup_codes.replace(request.user)
        _changed(request, "backup_codes_generated", "mfa_backup_codes_replaced", "")
        return _show_backup_codes(request, codes)
    return render(
        request,
        "mfa/regenerate_backup_codes.html",
        {"form": form, "unused": backup_codes.unused(request.user)},
    )


@never_cache
@step_up_required
def remove_device(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    model = DEVICE_KINDS.get(kind)
    if model is None:
        raise Http404
    device = get_object_or_404(model, pk=pk, user=request.user, confirmed=True)
    form = ConfirmForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        device.delete()
        if not flows.is_enrolled(request.user):
            backup_codes.discard(request.user)  # they stood in for the devices now gone
        _changed(request, f"{kind}_removed", "mfa_device_removed", kind)
        messages.success(request, _("The second factor was removed."))
        return redirect("mfa_overview")
    return render(request, "mfa/remove_device.html", {"form": form, "device": device, "kind": kind})


@login_required
@require_POST
def rename_passkey(request: HttpRequest, pk: int) -> HttpResponse:
    """A name the customer recognises ("iPhone", "仕事用PC"); the name is all that
    changes, so no step-up."""
    device = get_object_or_404(WebAuthnCredential, pk=pk, user=request.user, confirmed=True)
    form = NameForm(request.POST)
    if form.is_valid():
        device.name = form.cleaned_data["name"]
        device.save(update_fields=["name"])
        messages.success(request, _("The passkey was renamed."))
    else:
        messages.error(request, _("Please enter a name of up to 64 characters."))
    return redirect("mfa_overview")


@never_cache
@login_required
def verify(request: HttpRequest) -> HttpResponse:
    """The second step after signing in, and step-up's fresh code."""
    user = request.user
    if not flows.is_enrolled(user):
        return _onward(request)
    if request.method == "GET" and flows.is_fresh(request):
        return _onward(request)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if flows.verify(request=request, token=form.cleaned_data["token"]):
            return _onward(request)
        form.add_error("token", _locked_or_wrong(request))
    has_passkey = (
        settings.PASSKEYS_ENABLED
        and WebAuthnCredential.objects.filter(user=user, confirmed=True).exists()
    )
    return render(
        request,
        "mfa/verify.html",
        {
            "form": form,
            "next": _safe_next(request),
            "has_totp": TOTPDevice.objects.filter(user=user, confirmed=True).exists(),
            "has_passkey": has_passkey,
            "passkey_config": passkeys.configuration_json(request) if has_passkey else "",
        },
    )


def _show_backup_codes(request: HttpRequest, codes: list[str]) -> HttpResponse:
    """The codes, shown once: to copy, to print, or to download as a text file built
    in the page itself (a data: link), since only their hashes are kept."""
    text = "\n".join(
        [
            _("Unified ID backup codes"),
            request.user.unified_id_display,
            timezone.localtime().strftime("%Y-%m-%d %H:%M"),
            "",
            *codes,
            "",
            _("Each code works once."),
            "",
        ]
    )
    return render(
        request,
        "mfa/backup_codes.html",
        {
            "codes": codes,
            "text": text,
            "download_url": "data:text/plain;charset=utf-8," + quote(text),
            "filename": f"unified-id-backup-codes-{timezone.localdate():%Y%m%d}.txt",
        },
    )


def _onward(request: HttpRequest) -> HttpResponse:
    """Where the person was going: a request suspended by step-up is replayed."""
    return resume_request(request) or redirect("me")


def _safe_next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return ""


def _locked_or_wrong(request: HttpRequest) -> str:
    if flows.is_locked(request.user):
        return _(
            "Too many wrong codes. For your security, codes are refused for %(minutes)d "
            "minutes. Please try again later."
        ) % {"minutes": flows.lock_minutes()}
    return _("That code is not right. Please check it and try again.")


def _changed(request: HttpRequest, change: str, action: str, method: str) -> None:
    audit.record(action, request=request, customer=request.user, method=method)
    notifications.notify_mfa_changed(request.user, change=change, request=request)
