"""A link request from a group service (linking.proofs.vouched): the customer signs
in or up, sees which account of which service will be linked, confirms (with the
usual step-up) or cancels, and goes back to the service with a one-time code."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts import consent
from accounts.stepup import step_up_required
from linking.api.models import LinkRequest
from linking.proofs import vouched


@login_required
@step_up_required(allow_get=True, sign_in_counts=True)
@consent.agreement_required
def confirm(request: HttpRequest, handle: str) -> HttpResponse:
    try:
        link_request = vouched.open_request(handle=handle, customer=request.user, request=request)
        if request.method != "POST":
            return render(request, "linking/vouched.html", _context(link_request, handle))
        code = vouched.confirm(link_request=link_request, customer=request.user, request=request)
    except vouched.VouchRefused as refused:
        return _refused(request, refused)
    back = vouched.return_url(link_request, code)
    if link_request.result == LinkRequest.Result.LINKED_ELSEWHERE:
        return render(
            request,
            "linking/vouched_taken.html",
            {**_context(link_request, handle), "back": back, "reference": link_request.reference},
            status=409,
        )
    return redirect(back)


@login_required
@require_POST
def cancel(request: HttpRequest, handle: str) -> HttpResponse:
    try:
        link_request = vouched.open_request(handle=handle, customer=request.user, request=request)
        code = vouched.cancel(link_request=link_request, customer=request.user)
    except vouched.VouchRefused as refused:
        return _refused(request, refused)
    return redirect(vouched.return_url(link_request, code))


def _context(link_request: LinkRequest, handle: str) -> dict:
    account = link_request.account
    return {
        "account": account,
        "service": account.service,
        "handle": handle,
        "already_mine": account.owner_id == link_request.customer_id,
    }


def _refused(request: HttpRequest, refused: vouched.VouchRefused) -> HttpResponse:
    return render(
        request, "linking/vouched_refused.html", {"message": refused.message}, status=refused.status
    )
