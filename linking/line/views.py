"""LINE's webhook, the page where a signed-in customer confirms binding their LINE,
and unbinding it. The flows live in webhook.py and account_link.py."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts.stepup import step_up_required
from linking.line import account_link, client, webhook
from linking.line.models import LineFriend


@csrf_exempt
@require_POST
def receive(request: HttpRequest) -> HttpResponse:
    try:
        webhook.receive(
            body=request.body,
            signature=request.headers.get("x-line-signature", ""),
            request=request,
        )
    except webhook.Refused as refused:
        return HttpResponse(str(refused), status=refused.status, content_type="text/plain")
    return HttpResponse(status=200)


@login_required
def link(request: HttpRequest) -> HttpResponse:
    """Confirm binding the LINE account that asked the bot (its link token)."""
    link_token = request.GET.get("linkToken", "")
    try:
        line_user_id = account_link.line_user_for(link_token)
        if request.method == "POST":
            return HttpResponseRedirect(
                account_link.start(customer=request.user, link_token=link_token, request=request)
            )
    except account_link.LinkExpired:
        return render(request, "line/link_expired.html", status=400)
    try:
        name = client.profile(line_user_id=line_user_id).display_name
    except client.LineError:
        name = ""
    current = LineFriend.objects.filter(customer=request.user).first()
    return render(
        request,
        "line/link.html",
        {"line_name": name, "replaces": current and current.line_user_id != line_user_id},
    )


@login_required
@step_up_required
def unlink(request: HttpRequest) -> HttpResponse:
    current = LineFriend.objects.filter(customer=request.user).first()
    if current is None:
        return redirect("linking:center")
    if request.method == "POST":
        account_link.unlink(customer=request.user, request=request)
        messages.success(request, _("LINE is no longer linked to your unified ID."))
        return redirect("linking:center")
    return render(request, "line/unlink.html")
