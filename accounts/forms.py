"""Forms for consent: the agreement at sign-up (ACCOUNT_SIGNUP_FORM_CLASS), before
the first link, and the marketing email choice."""

from django import forms
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from accounts import consent
from accounts.models import ConsentRecord


class _AgreementMixin:
    """A required "I agree" box for the current notice, and the version shown, so a
    notice published while the form was open is not agreed to unseen."""

    def _add_agreement(self) -> None:
        self.notice = consent.current_notice()
        if self.notice is None:
            return
        self.fields["agree"] = forms.BooleanField(
            label=_("I have read and agree to the purpose of use and the joint use notice."),
            help_text=format_html(
                '<a href="{}">{}</a>',
                reverse("notice"),
                _("Read the privacy notice (version %(version)s)")
                % {"version": self.notice.version},
            ),
            required=True,
        )
        self.fields["notice_version"] = forms.IntegerField(
            widget=forms.HiddenInput, initial=self.notice.version
        )

    def _check_version(self, cleaned: dict) -> None:
        if self.notice is not None and cleaned.get("notice_version") != self.notice.version:
            raise forms.ValidationError(
                _("The notice has just been updated. Please read it again before agreeing.")
            )


class SignupConsentForm(_AgreementMixin, forms.Form):
    """Base of allauth's sign-up forms (email and social)."""

    marketing_email = forms.BooleanField(
        label=_("Send me news and offers from the group by email (optional)."),
        required=False,
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._add_agreement()

    def clean(self) -> dict:
        cleaned = super().clean()
        self._check_version(cleaned)
        return cleaned

    def signup(self, request: HttpRequest, user) -> None:
        if self.notice is not None:
            consent.agree(customer=user, notice=self.notice, source=ConsentRecord.Source.SIGNUP)
        consent.set_marketing_email(
            customer=user,
            granted=self.cleaned_data.get("marketing_email", False),
            source=ConsentRecord.Source.SIGNUP,
        )


class AgreementForm(_AgreementMixin, forms.Form):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._add_agreement()

    def clean(self) -> dict:
        cleaned = super().clean()
        self._check_version(cleaned)
        return cleaned


class MarketingEmailForm(forms.Form):
    marketing_email = forms.BooleanField(
        label=_("Send me news and offers from the group by email."), required=False
    )


class DeletionForm(forms.Form):
    confirm = forms.BooleanField(
        label=_(
            "I understand that my unified ID and its data are deleted for good and "
            "cannot be restored."
        ),
        required=True,
    )
