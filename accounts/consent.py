"""Consent (APPI): agreeing to the notice on purpose of use and joint use, and
marketing email consent, which is separate and can be withdrawn at any time.

The notice a customer must agree to is the latest published ConsentNotice. Every
answer is a ConsentRecord (append-only) with the notice version and the time.
"""

from collections.abc import Callable
from functools import wraps
from urllib.parse import urlencode

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone

from accounts.models import ConsentNotice, ConsentRecord, Customer


def current_notice() -> ConsentNotice | None:
    return (
        ConsentNotice.objects.filter(published_at__lte=timezone.now()).order_by("-version").first()
    )


def agreed_version(customer: Customer) -> int | None:
    """The latest notice version the customer agreed to, if any."""
    record = (
        ConsentRecord.objects.filter(customer=customer, kind=ConsentRecord.Kind.NOTICE)
        .order_by("-notice__version")
        .values_list("notice__version", flat=True)
        .first()
    )
    return record


def needs_agreement(customer: Customer) -> bool:
    """Is there a published notice this customer has not agreed to yet?"""
    notice = current_notice()
    if notice is None:
        return False
    agreed = agreed_version(customer)
    return agreed is None or agreed < notice.version


def agree(*, customer: Customer, notice: ConsentNotice, source: str) -> ConsentRecord:
    if not notice.is_published:
        raise ValueError("only a published notice can be agreed to")
    return ConsentRecord.objects.create(
        customer=customer,
        customer_unified_id=customer.unified_id,
        kind=ConsentRecord.Kind.NOTICE,
        notice=notice,
        source=source,
    )


def set_marketing_email(*, customer: Customer, granted: bool, source: str) -> ConsentRecord:
    """Record the customer's answer; campaigns read it from the customer row."""
    with transaction.atomic():
        Customer.objects.filter(pk=customer.pk).update(marketing_email_consent=granted)
        customer.marketing_email_consent = granted
        return ConsentRecord.objects.create(
            customer=customer,
            customer_unified_id=customer.unified_id,
            kind=(
                ConsentRecord.Kind.MARKETING_GRANTED
                if granted
                else ConsentRecord.Kind.MARKETING_WITHDRAWN
            ),
            source=source,
        )


def agreement_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Before the first link: send a customer who has not agreed to the current
    notice to the notice first, then back."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.user.is_authenticated and needs_agreement(request.user):
            query = urlencode({"next": request.get_full_path()})
            return redirect(f"{reverse('consent')}?{query}")
        return view(request, *args, **kwargs)

    return wrapped
