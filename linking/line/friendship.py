"""Whether a LINE user has the Official Account as a friend: from follow and
unfollow webhook events (the newest event wins, a late one changes nothing) and,
when someone signs in with LINE Login, from LINE's friendship status."""

import logging
import re
from datetime import datetime

from allauth.socialaccount.signals import pre_social_login
from django.conf import settings
from django.db.models import Q
from django.dispatch import receiver
from django.utils import timezone

from linking.line import client
from linking.line.models import LINE_USER_ID_PATTERN, LineFriend

logger = logging.getLogger(__name__)
LINE_USER_ID = re.compile(LINE_USER_ID_PATTERN)


def friend(line_user_id: str) -> LineFriend:
    return LineFriend.objects.get_or_create(line_user_id=line_user_id)[0]


def record(*, line_user_id: str, is_friend: bool, at: datetime) -> None:
    """LINE said at `at` that line_user_id is (or is no longer) a friend."""
    row = friend(line_user_id)
    newer = (Q(followed_at__isnull=True) | Q(followed_at__lt=at)) & (
        Q(unfollowed_at__isnull=True) | Q(unfollowed_at__lt=at)
    )
    changes = {"followed_at": at} if is_friend else {"unfollowed_at": at}
    LineFriend.objects.filter(newer, pk=row.pk).update(is_friend=is_friend, **changes)


def refresh(*, line_user_id: str) -> None:
    """Ask LINE: its profile API answers for friends only (404 for anyone else), so
    a friend who added us before webhooks were on is known too."""
    try:
        client.profile(line_user_id=line_user_id)
    except client.LineError as exc:
        if exc.status == 404:
            record(line_user_id=line_user_id, is_friend=False, at=timezone.now())
        else:
            logger.warning("LINE profile unavailable: %s", exc)
        return
    record(line_user_id=line_user_id, is_friend=True, at=timezone.now())


@receiver(pre_social_login)
def _check_after_line_login(sender, request, sociallogin, **kwargs) -> None:
    """A LINE Login shares user IDs with the Official Account (same provider): ask
    LINE whether this user is a friend. Never stands in the way of the sign-in."""
    account, token = sociallogin.account, sociallogin.token
    if (
        account.provider != "line"
        or not settings.LINE_MESSAGING_CHANNEL_SECRET
        or token is None
        or not LINE_USER_ID.fullmatch(account.uid or "")
    ):
        return
    try:
        is_friend = client.is_friend(login_access_token=token.token)
    except client.LineError as exc:
        logger.warning("LINE friendship status unavailable: %s", exc)
        return
    record(line_user_id=account.uid, is_friend=is_friend, at=timezone.now())
