"""Data export: everything this site holds about one customer, as JSON.

Profile, email addresses, sign-in identities (with what each IdP told us),
sessions, linked accounts, link history, the LINE account bound to the unified ID,
consents, campaign deliveries to the accounts they own, and the audit entries about
them.
"""

import json

from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from allauth.usersessions.models import UserSession
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from accounts.audit import AuditEvent
from accounts.models import ConsentRecord, Customer
from linking.campaigns.models import Delivery
from linking.line.models import LineFriend
from linking.models import LegacyAccount, LinkEvent

FORMAT_VERSION = 1


def customer_data(customer: Customer) -> dict:
    accounts = LegacyAccount.objects.filter(owner=customer).select_related("service")
    return {
        "format_version": FORMAT_VERSION,
        "exported_at": timezone.now(),
        "profile": {
            "unified_id": customer.unified_id,
            "email": customer.email,
            "name": customer.name,
            "date_joined": customer.date_joined,
            "last_login": customer.last_login,
            "has_password": customer.has_usable_password(),
            "marketing_email_consent": customer.marketing_email_consent,
        },
        "email_addresses": [
            {"email": a.email, "verified": a.verified, "primary": a.primary}
            for a in EmailAddress.objects.filter(user=customer).order_by("email")
        ],
        "sign_in_identities": [
            {
                "provider": s.provider,
                "subject": s.uid,
                "connected_at": s.date_joined,
                "last_login": s.last_login,
                "claims": s.extra_data,
            }
            for s in SocialAccount.objects.filter(user=customer).order_by("date_joined")
        ],
        "sessions": [
            {
                "started_at": s.created_at,
                "last_seen_at": s.last_seen_at,
                "ip": s.ip,
                "user_agent": s.user_agent,
            }
            for s in UserSession.objects.filter(user=customer).order_by("created_at")
        ],
        "linked_accounts": [
            {
                "service": a.service.code,
                "service_name": a.service.name,
                "member_number": a.external_id,
                "email": a.email,
                "phone": a.phone,
                "name": a.name,
                "name_kana": a.name_kana,
                "birth_date": a.birth_date,
                "points": a.points,
                "linked_at": a.linked_at,
            }
            for a in accounts.order_by("service__code", "external_id")
        ],
        "link_history": [
            {
                "at": e.created_at,
                "action": e.action,
                "service": e.account.service.code,
                "member_number": e.account.masked_external_id,
                "proof": e.proof,
                "by": e.actor_kind,
                "ip": e.ip,
                "user_agent": e.user_agent,
                "reason": e.reason,
            }
            for e in LinkEvent.objects.filter(customer=customer)
            .select_related("account__service")
            .order_by("created_at", "pk")
        ],
        "line": _line(customer),
        "consents": [
            {
                "at": r.created_at,
                "kind": r.kind,
                "notice_version": r.notice.version if r.notice else None,
                "where": r.source,
            }
            for r in ConsentRecord.objects.filter(customer=customer)
            .select_related("notice")
            .order_by("created_at", "pk")
        ],
        "campaign_deliveries": [
            {
                "campaign": d.campaign.name,
                "step": d.step,
                "service": d.account.service.code,
                "email": d.email,
                "status": d.status,
                "sent_at": d.sent_at,
                "clicked_at": d.clicked_at,
                "linked_at": d.linked_at,
                "unsubscribed_at": d.unsubscribed_at,
            }
            for d in Delivery.objects.filter(account__owner=customer)
            .select_related("campaign", "account__service")
            .order_by("pk")
        ],
        "audit_entries": [
            {
                "reference": e.reference,
                "at": e.created_at,
                "action": e.action,
                "method": e.method,
                "by": e.actor_kind,
                "ip": e.ip,
                "user_agent": e.user_agent,
                "reason": e.reason,
            }
            for e in AuditEvent.objects.filter(customer=customer).order_by("created_at", "pk")
        ],
    }


def _line(customer: Customer) -> dict | None:
    """The LINE Official Account friend bound to the unified ID, if any."""
    line = LineFriend.objects.filter(customer=customer).first()
    if line is None:
        return None
    return {
        "line_user_id": line.line_user_id,
        "linked_at": line.linked_at,
        "is_friend": line.is_friend,
        "followed_at": line.followed_at,
        "unfollowed_at": line.unfollowed_at,
    }


def as_json(customer: Customer) -> str:
    return json.dumps(customer_data(customer), cls=DjangoJSONEncoder, ensure_ascii=False, indent=2)
