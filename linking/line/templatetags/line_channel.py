"""{% line_binding %}: the customer's LINE binding and friendship, for the link centre."""

from allauth.socialaccount.models import SocialAccount
from django import template

from linking.line.models import LineFriend

register = template.Library()


@register.inclusion_tag("line/_binding.html", takes_context=True)
def line_binding(context) -> dict:
    customer = context["request"].user
    bound = LineFriend.objects.filter(customer=customer).first()
    signed_in_with = SocialAccount.objects.filter(user=customer, provider="line").values_list(
        "uid", flat=True
    )
    login_friend = (
        None if bound else LineFriend.objects.filter(line_user_id__in=list(signed_in_with)).first()
    )
    return {"bound": bound, "login_friend": login_friend}
