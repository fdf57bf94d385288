from collections.abc import Iterator

import pytest
from django.core.mail import send_mail
from django.urls import reverse

from config.celery import app as celery_app

# Nothing listens on port 1, so a connection is refused at once.
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture
def broker_down() -> Iterator[None]:
    """Point the Celery app's producer connection at a Redis that is not there.

    broker_write_url, not broker_url: Celery lets a CELERY_BROKER_URL environment
    variable (set in CI) override conf.broker_url, but not conf.broker_write_url.
    """
    previous = celery_app.conf.get("broker_write_url")
    celery_app.conf.broker_write_url = UNREACHABLE_REDIS
    yield
    celery_app.conf.broker_write_url = previous


def test_healthz_answers_ok_when_database_and_broker_answer(client, db):
    response = client.get(reverse("healthz"))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_healthz_fails_when_the_broker_is_unreachable(client, db, broker_down):
    response = client.get(reverse("healthz"))

    assert response.status_code == 503
    assert response.json() == {"status": "fail", "database": "ok", "broker": "fail"}


def test_healthz_is_never_cached(client, db):
    response = client.get(reverse("healthz"))

    assert "no-cache" in response["Cache-Control"]


def test_the_mailbox_is_hidden_unless_switched_on(client, settings):
    settings.MAILBOX_VIEW = False

    assert client.get(reverse("mailbox")).status_code == 404


def test_the_mailbox_shows_a_sent_mail(client, settings):
    settings.MAILBOX_VIEW = True
    settings.EMAIL_BACKEND = "config.mailbox.MailboxBackend"
    send_mail("会員カードのご案内", "本文です。", None, ["hanako@example.jp"])

    response = client.get(reverse("mailbox"))

    assert response.status_code == 200
    page = response.content.decode()
    assert "会員カードのご案内" in page
    assert "hanako@example.jp" in page
    assert "本文です。" in page
