from django import forms
from django.utils.translation import gettext_lazy as _

from linking.models import OwnershipCode


class MemberNumberForm(forms.Form):
    external_id = forms.CharField(label=_("Member number"), max_length=64, strip=True)


class PasswordProofForm(MemberNumberForm):
    password = forms.CharField(
        label=_("Password at that service"), max_length=200, widget=forms.PasswordInput
    )


class SendCodeForm(forms.Form):
    channel = forms.ChoiceField(label=_("Send the code to"), widget=forms.RadioSelect)

    def __init__(self, *args, channels: dict[str, str], **kwargs) -> None:
        """channels: {"email": "t***@example.jp", "sms": "***-****-5678"}"""
        super().__init__(*args, **kwargs)
        labels = dict(OwnershipCode.Channel.choices)
        self.fields["channel"].choices = [
            (key, f"{labels[key]}: {hint}") for key, hint in channels.items()
        ]
        self.fields["channel"].initial = next(iter(channels), None)


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code"),
        max_length=12,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code"}),
    )


class UnlinkForm(forms.Form):
    confirm = forms.BooleanField(label=_("Yes, unlink this account"), required=True)
