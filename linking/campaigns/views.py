"""Pages a campaign email leads to: the landing page of the personal link, the one
confirmation that links the account, and unsubscribing (RFC 8058 one-click).
Views check input and call links and unsubscribe."""

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from accounts import consent
from accounts.stepup import step_up_required
from linking import claims
from linking.campaigns import content, links, unsubscribe
from linking.campaigns.models import Delivery
from linking.views import linked_message


def landing(request: HttpRequest, token: str) -> HttpResponse:
    """What the unified ID is, what the customer gets, and the way on: sign in or
    sign up, then confirm."""
    try:
        delivery = links.find(token)
    except links.LinkInvalid:
        return render(request, "campaigns/link_invalid.html", status=404)
    links.record_click(delivery, request)
    return render(request, "campaigns/landing.html", _context(request, delivery))


@login_required
@step_up_required(allow_get=True, sign_in_counts=True)
@consent.agreement_required
def confirm(request: HttpRequest) -> HttpResponse:
    delivery = links.pending(request)
    if delivery is None:
        return render(request, "campaigns/link_invalid.html", status=404)
    if request.method == "POST":
        if not links.accepts_campaign_proof(delivery):
            return redirect("linking:service", code=delivery.account.service.code)
        try:
            links.link_through(delivery, customer=request.user, request=request)
        except claims.AccountTaken as taken:
            messages.error(
                request,
                _(
                    "This account is already linked to another unified ID, so it was not "
                    "linked. If you think this is a mistake, contact support with reference "
                    "%(reference)s."
                )
                % {"reference": taken.reference},
            )
            links.forget(request)
            return redirect("linking:center")
        links.forget(request)
        delivery.account.refresh_from_db()
        messages.success(request, linked_message(delivery.account))
        return redirect("linking:center")
    return render(request, "campaigns/landing.html", _context(request, delivery))


def _context(request: HttpRequest, delivery: Delivery) -> dict:
    account = delivery.account
    return {
        "delivery": delivery,
        "account": account,
        "service": account.service,
        "accepts_campaign_proof": links.accepts_campaign_proof(delivery),
        "already_mine": request.user.is_authenticated and account.owner_id == request.user.pk,
        "taken": account.owner_id is not None
        and not (request.user.is_authenticated and account.owner_id == request.user.pk),
        # Sign-up starts with the address the mail went to (allauth reads ?email=).
        "signup_query": urlencode(
            {"next": reverse("campaigns:confirm"), "email": delivery.email}, safe="/"
        ),
    }


@csrf_exempt
def unsubscribe_view(request: HttpRequest, code: str) -> HttpResponse:
    """GET: a page asking to confirm, which changes nothing. POST: unsubscribe; this
    is also RFC 8058's one-click POST from the mail client, which carries no cookie
    and no CSRF token, so this view alone is exempt from CSRF."""
    delivery_id = content.delivery_id_from_unsubscribe_code(code)
    delivery = Delivery.objects.filter(pk=delivery_id).first() if delivery_id else None
    if delivery is None:
        return render(request, "campaigns/link_invalid.html", status=404)
    if request.method == "POST":
        unsubscribe.unsubscribe(delivery, detail="one-click" if _one_click(request) else "page")
        return render(request, "campaigns/unsubscribed.html", {"delivery": delivery})
    if request.method not in ("GET", "HEAD"):
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD, POST"})
    return render(
        request,
        "campaigns/unsubscribe.html",
        {"delivery": delivery, "suppressed": unsubscribe.is_suppressed(delivery.email_key)},
    )


def _one_click(request: HttpRequest) -> bool:
    return request.POST.get("List-Unsubscribe") == "One-Click"
