"""Pages a campaign email leads to: the landing page of the personal link, the one
confirmation that links the account, unsubscribing (RFC 8058 one-click), and the
bounce webhook for an ESP. Views check input and call links, unsubscribe, bounces."""

import hmac
import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts import consent
from accounts.stepup import step_up_required
from linking import claims
from linking.campaigns import bounces, content, links, unsubscribe
from linking.campaigns.models import Delivery


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
        messages.success(request, _("Linked. The account now belongs to your unified ID."))
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


@csrf_exempt
@require_POST
def bounce_webhook(request: HttpRequest) -> HttpResponse:
    """An ESP reports bounces: JSON {"email", "type": "hard"|"soft", "message_id"} or a
    list of them, with "Authorization: Bearer <CAMPAIGN_BOUNCE_WEBHOOK_SECRET>"."""
    secret = settings.CAMPAIGN_BOUNCE_WEBHOOK_SECRET
    if not secret:
        raise Http404
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), secret.encode()):
        return JsonResponse({"error": "unauthorized"}, status=401)
    try:
        payload = json.loads(request.body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return JsonResponse({"error": "invalid JSON"}, status=400)
    items = payload if isinstance(payload, list) else [payload]
    if not items or not all(_is_bounce(item) for item in items):
        return JsonResponse({"error": "expected objects with an email"}, status=400)
    suppressed = 0
    for item in items:
        bounce = bounces.Bounce(
            email=item["email"][:254],
            hard=item.get("type") in ("hard", "complaint"),
            message_id=str(item.get("message_id") or "")[:300],
            detail=str(item.get("detail") or item.get("type") or "")[:1000],
        )
        suppressed += bounces.record(bounce)
    return JsonResponse({"received": len(items), "suppressed": suppressed})


def _is_bounce(item) -> bool:
    return isinstance(item, dict) and isinstance(item.get("email"), str)
