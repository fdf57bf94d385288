"""Proof by the service's own session: a group service's backend pushes a link
request for its signed-in customer (like RFC 9126: the parameters go backend to
backend, the browser carries an opaque handle), the customer confirms here, and the
service exchanges a one-time code for the result. Nothing here signs anyone in."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts import audit
from accounts.audit import AuditEvent
from linking import claims
from linking.api.models import LinkRequest, ServiceClient
from linking.models import LegacyAccount, Proof

REQUEST_SECONDS = 10 * 60
CODE_SECONDS = 10 * 60
REQUEST_URI_PREFIX = "urn:unified-id:link-request:"


class PushRefused(Exception):
    """The service may not push this request; `why` is the API's problem code."""

    def __init__(self, why: str, detail: str) -> None:
        super().__init__(detail)
        self.why, self.detail = why, detail


class VouchRefused(Exception):
    """The customer cannot use this link; `message` is safe to show them."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message, self.status = message, status


@dataclass(frozen=True)
class Pushed:
    handle: str
    expires_in: int

    @property
    def request_uri(self) -> str:
        return REQUEST_URI_PREFIX + self.handle

    @property
    def path(self) -> str:
        return reverse("linking:vouched", args=[self.handle])


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def push(
    *, client_id: str, service_id: int, external_id: str, return_url: str, state: str
) -> Pushed:
    """Record a link request for a service the client may see (the caller checked)."""
    access = ServiceClient.objects.get(pk=client_id)
    if return_url not in (access.return_urls or []):
        raise PushRefused("return_url_not_registered", "return_url is not registered")
    account = (
        LegacyAccount.objects.select_related("service")
        .filter(service_id=service_id, external_id=external_id)
        .first()
    )
    if account is None:
        raise PushRefused("not_found", "no such account at this service")
    if not account.service.accepts(Proof.VOUCHED):
        raise PushRefused("vouching_not_allowed", "this service's policy does not allow it")
    handle = secrets.token_urlsafe(32)
    now = timezone.now()
    LinkRequest.objects.create(
        client=access,
        account=account,
        return_url=return_url,
        state=state,
        handle_hash=_digest(handle),
        created_at=now,
        expires_at=now + timedelta(seconds=REQUEST_SECONDS),
    )
    return Pushed(handle=handle, expires_in=REQUEST_SECONDS)


def open_request(*, handle: str, customer, request: HttpRequest) -> LinkRequest:
    """The request behind a handle, bound to the first customer who opens it."""
    found = (
        LinkRequest.objects.select_related("account__service", "client__client")
        .filter(handle_hash=_digest(handle))
        .first()
    )
    if found is None:
        raise VouchRefused(_("This link is not valid. Please start again from the service."), 404)
    if found.finished_at is not None:
        raise VouchRefused(_("This link has already been used. Please start again."), 410)
    if found.expires_at <= timezone.now():
        raise VouchRefused(_("This link has expired. Please start again from the service."), 410)
    if found.customer_id is None:
        LinkRequest.objects.filter(pk=found.pk, customer__isnull=True).update(customer=customer)
        found.customer_id = (
            LinkRequest.objects.filter(pk=found.pk).values_list("customer_id", flat=True).get()
        )
    if found.customer_id != customer.pk:
        audit.record(
            AuditEvent.Action.PROOF_FAILED,
            request=request,
            customer=customer,
            account=found.account,
            method=Proof.VOUCHED,
            reason="link request opened by another customer",
            data=_data(found),
        )
        raise VouchRefused(
            _("This link was opened by another unified ID. Please start again from the service."),
            403,
        )
    return found


def confirm(*, link_request: LinkRequest, customer, request: HttpRequest) -> str:
    """Link the account (through claims) and spend the request; the code to send back."""
    account = link_request.account
    if not account.service.accepts(Proof.VOUCHED):
        audit.record(
            AuditEvent.Action.PROOF_FAILED,
            request=request,
            customer=customer,
            account=account,
            method=Proof.VOUCHED,
            reason="service does not accept vouching",
            data=_data(link_request),
        )
        raise VouchRefused(_("This service does not offer linking this way."), 403)
    with transaction.atomic():
        _spend(link_request, customer)
        audit.record(
            AuditEvent.Action.PROOF_SUCCEEDED,
            request=request,
            customer=customer,
            account=account,
            method=Proof.VOUCHED,
            data=_data(link_request),
        )
        try:
            linked = claims.link(
                account=account,
                customer=customer,
                proof=Proof.VOUCHED,
                request=request,
                reason=f"vouched by client {link_request.client_id}, "
                f"link request {link_request.pk}",
            )
        except claims.AccountTaken as taken:
            return _finish(link_request, LinkRequest.Result.LINKED_ELSEWHERE, taken.reference)
        result = LinkRequest.Result.LINKED if linked else LinkRequest.Result.ALREADY_LINKED
        return _finish(link_request, result, "")


def cancel(*, link_request: LinkRequest, customer) -> str:
    with transaction.atomic():
        _spend(link_request, customer)
        return _finish(link_request, LinkRequest.Result.CANCELLED, "")


def return_url(link_request: LinkRequest, code: str) -> str:
    """The registered return URL with the code and the service's state added."""
    parts = urlsplit(link_request.return_url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query.append(("code", code))
    if link_request.state:
        query.append(("state", link_request.state))
    return urlunsplit(parts._replace(query=urlencode(query)))


def exchange(*, client_id: str, code: str) -> LinkRequest | None:
    """The result behind a code, once, for the client that pushed the request."""
    now, code_hash = timezone.now(), _digest(code)
    spent = LinkRequest.objects.filter(
        code_hash=code_hash,
        client_id=client_id,
        exchanged_at__isnull=True,
        code_expires_at__gt=now,
    ).update(exchanged_at=now)
    if not spent:
        return None
    return LinkRequest.objects.select_related("account__service", "customer").get(
        code_hash=code_hash
    )


def _spend(link_request: LinkRequest, customer) -> None:
    """Finish the request once: a second confirm (or a cancel) finds nothing to spend."""
    now = timezone.now()
    spent = LinkRequest.objects.filter(
        pk=link_request.pk, customer=customer, finished_at__isnull=True, expires_at__gt=now
    ).update(finished_at=now)
    if not spent:
        raise VouchRefused(_("This link has already been used. Please start again."), 410)
    link_request.finished_at = now


def _finish(link_request: LinkRequest, result: str, reference: str) -> str:
    code = secrets.token_urlsafe(32)
    link_request.result, link_request.reference = result, reference
    link_request.code_hash = _digest(code)
    link_request.code_expires_at = timezone.now() + timedelta(seconds=CODE_SECONDS)
    link_request.save(update_fields=["result", "reference", "code_hash", "code_expires_at"])
    return code


def _data(link_request: LinkRequest) -> dict:
    return {"client_id": link_request.client_id, "link_request": link_request.pk}
