from datetime import date, timedelta

from allauth.account.adapter import get_adapter
from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts import backends
from linking.models import LegacyService

MAX_RANGE_DAYS = 731


class StaffSignInForm(AdminAuthenticationForm):
    """Django's admin sign-in. The limits are in accounts.backends; while they hold
    this email or address, the form says so, as the customer sign-in does."""

    def get_invalid_login_error(self) -> ValidationError:
        if backends.locked(self.request, self.cleaned_data.get("username")):
            message = get_adapter().error_messages["too_many_login_attempts"]
            return ValidationError(message, code="too_many_login_attempts")
        return super().get_invalid_login_error()

    def confirm_login_allowed(self, user) -> None:
        if not (user.is_active and user.is_staff):
            backends.count_as_failure(self.request, self.cleaned_data.get("username"))
        super().confirm_login_allowed(user)


class TokenForm(forms.Form):
    token = forms.CharField(
        label=_("Code from your authenticator app, or a backup code"),
        max_length=32,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True}),
    )


class RangeForm(forms.Form):
    start = forms.DateField(
        label=pgettext_lazy("date range", "From"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    end = forms.DateField(
        label=pgettext_lazy("date range", "To"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def clean(self) -> dict:
        data = super().clean()
        end = data.get("end") or timezone.localdate()
        start = data.get("start") or end - timedelta(days=29)
        if start > end:
            raise forms.ValidationError(_("The start is after the end."))
        if (end - start).days >= MAX_RANGE_DAYS:
            raise forms.ValidationError(_("Choose at most two years."))
        data["start"], data["end"] = start, end
        return data

    def period(self) -> tuple[date, date]:
        if self.is_valid():
            return self.cleaned_data["start"], self.cleaned_data["end"]
        end = timezone.localdate()
        return end - timedelta(days=29), end


class SearchForm(forms.Form):
    q = forms.CharField(
        label=_("Unified ID, email, phone, member number or name"), max_length=200, required=False
    )
    service = forms.ModelChoiceField(
        label=_("Service (for a member number)"),
        queryset=LegacyService.objects.order_by("code"),
        required=False,
    )


class LinkForm(forms.Form):
    service = forms.ModelChoiceField(
        label=_("Service"), queryset=LegacyService.objects.order_by("code")
    )
    external_id = forms.CharField(label=_("Member number"), max_length=64)
    reason = forms.CharField(
        label=_("Reason"), max_length=1000, min_length=5, widget=forms.Textarea(attrs={"rows": 2})
    )


class UnlinkForm(forms.Form):
    account = forms.IntegerField(widget=forms.HiddenInput)
    reason = forms.CharField(
        label=_("Reason"), max_length=1000, min_length=5, widget=forms.Textarea(attrs={"rows": 2})
    )
