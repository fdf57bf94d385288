"""Equal cost for real and made-up identifiers, counted in password-hash work (never
timed): the legacy-password proof checks an unknown member number as hard as a known
one, and sign-up hashes once for a registered address as for a new one. allauth's
mail leaves through a Celery task after commit, never from the request itself."""

from collections.abc import Iterator

import argon2
import bcrypt
import pytest
from django.contrib.auth import hashers
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from accounts import hashers as site_hashers
from accounts.models import Customer
from accounts.tasks import send_email
from tests.campaign_support import SmtpSink, Worker, wait_until, worker_on_test_database
from tests.conftest import PASSWORD
from tests.fixtures.mfa import stepped_up

SECRET = "legacy-Secret-99"
COST_FIELDS = (
    "iterations",
    "work_factor",
    "block_size",
    "parallelism",
    "memory_cost",
    "time_cost",
    "variety",
)
VERIFIED: list[tuple[str, dict]] = []  # (algorithm, cost) of every check
ENCODED: list[str] = []  # algorithm of every hash computed through encode()


class Counting:
    """Mixed into a Django hasher: counts its work, changes nothing else."""

    def encode(self, password, salt, *args, **kwargs):
        ENCODED.append(self.algorithm)
        return super().encode(password, salt, *args, **kwargs)

    def verify(self, password, encoded):
        decoded = self.decode(encoded)
        VERIFIED.append((self.algorithm, {k: decoded[k] for k in COST_FIELDS if k in decoded}))
        return super().verify(password, encoded)


class CountingArgon2(Counting, hashers.Argon2PasswordHasher):
    pass


class CountingPBKDF2(Counting, hashers.PBKDF2PasswordHasher):
    pass


class CountingBCrypt(Counting, hashers.BCryptPasswordHasher):
    pass


class CountingScrypt(Counting, hashers.ScryptPasswordHasher):
    pass


class CountingArgon2id(Counting, site_hashers.Argon2idPasswordHasher):
    pass


def _counted(send) -> tuple[list, list]:
    VERIFIED.clear()
    ENCODED.clear()
    send()
    return list(VERIFIED), list(ENCODED)


# Cheap parameters keep the test fast; what matters is that they are the service's own.
LEGACY_HASHES = {
    "bcrypt-2y": bcrypt.hashpw(SECRET.encode(), bcrypt.gensalt(rounds=5))
    .decode()
    .replace("$2b$", "$2y$", 1),
    "pbkdf2_sha256": hashers.PBKDF2PasswordHasher().encode(SECRET, "salt1234", 2_000),
    "argon2": "argon2"
    + argon2.PasswordHasher(time_cost=1, memory_cost=256, parallelism=1).hash(SECRET),
    "scrypt": hashers.ScryptPasswordHasher().encode(SECRET, "salt1234", 2**10, 4, 1),
}


@pytest.mark.parametrize("encoded", LEGACY_HASHES.values(), ids=LEGACY_HASHES.keys())
def test_an_unknown_member_number_is_checked_as_hard_as_a_known_one(
    encoded, settings, customer_client, make_account, service
):
    settings.LEGACY_PASSWORD_HASHERS = [
        f"{__name__}.{cls.__name__}"
        for cls in (CountingArgon2, CountingPBKDF2, CountingBCrypt, CountingScrypt)
    ]
    make_account("S0001234", password_hash=encoded)
    make_account("S0005678")  # imported without a password
    client = stepped_up(customer_client)

    def attempt(external_id: str):
        return lambda: client.post(
            reverse("linking:service", args=[service.code]),
            {"pw-external_id": external_id, "pw-password": "wrong-Guess-1"},
        )

    known, unknown, without_hash = attempt("S0001234"), attempt("S9999999"), attempt("S0005678")
    # Whichever attempt comes first after the cache empties builds the stand-in hash.
    cold = []
    for send in (known, unknown, without_hash):
        cache.clear()
        cold.append(_counted(send))
    warm = [_counted(send) for send in (known, unknown, without_hash)]

    assert cold[0] == cold[1] == cold[2]
    assert warm[0] == warm[1] == warm[2]
    checks, _encodes = warm[0]
    assert len(checks) == 1
    algorithm = "bcrypt" if encoded.startswith("$2y$") else encoded.partition("$")[0]
    assert checks[0][0] == algorithm


@pytest.fixture
def site_hasher_counted(settings) -> None:
    settings.PASSWORD_HASHERS = [
        f"{__name__}.CountingArgon2id",
        *settings.PASSWORD_HASHERS[1:],
    ]


def _sign_up(email: str, **headers) -> int:
    response = Client(**headers).post(
        reverse("account_signup"), {"email": email, "password1": PASSWORD, "password2": PASSWORD}
    )
    return response.status_code


def test_sign_up_hashes_once_and_mails_once_for_a_registered_and_a_new_address(
    make_customer, site_hasher_counted, mailoutbox
):
    make_customer("taken@example.jp")

    registered = _counted(lambda: _sign_up("taken@example.jp"))
    registered_mail = list(mailoutbox)
    mailoutbox.clear()
    new = _counted(lambda: _sign_up("fresh@example.jp"))

    assert registered == new == ([], ["argon2"])
    assert Customer.objects.filter(email="fresh@example.jp").exists()
    assert [m.to for m in registered_mail] == [["taken@example.jp"]]
    assert [m.to for m in mailoutbox] == [["fresh@example.jp"]]
    assert "/accounts/password/reset/" in registered_mail[0].body
    assert "/accounts/confirm-email/" in mailoutbox[0].body


class OnceRefused(dict):
    """SMTP replies for RCPT: the first try for an address is refused for now."""

    def __contains__(self, address) -> bool:
        return self.pop(address, None) is not None

    def __getitem__(self, address) -> str:
        return "451 4.3.0 try again later"


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.controller.start()
    yield sink
    sink.controller.stop()


def test_a_refused_mail_is_sent_again(settings, smtp_sink):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp_sink.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    smtp_sink.reply_for = OnceRefused({"hanako@example.jp": "refuse"})
    fields = {
        "subject": "件名",
        "body": "本文",
        "from_email": "no-reply@localhost",
        "to": ["hanako@example.jp"],
        "cc": [],
        "bcc": [],
        "reply_to": [],
        "headers": {"Message-ID": "<one@localhost>"},
        "alternatives": [],
        "content_subtype": "plain",
    }

    result = send_email.apply((fields,))  # as a worker runs it, retries included

    assert result.successful()
    assert smtp_sink.reply_for == {}  # the first try was refused
    assert smtp_sink.message_ids() == {"<one@localhost>": 1}


class TestWithARealWorker:
    """A real `celery worker` process sends; the request's own process sends nothing."""

    @pytest.fixture
    def worker_in_process(self) -> None:
        """Off: the worker below is the only sender."""

    @pytest.fixture
    def worker(self, transactional_db, smtp_sink, tmp_path) -> Iterator[Worker]:
        with worker_on_test_database(tmp_path, **smtp_sink.env()) as running:
            running.start()
            yield running

    def test_each_sign_up_mail_is_sent_by_the_worker_in_the_request_language(
        self, make_customer, worker, smtp_sink, mailoutbox
    ):
        make_customer("taken@example.jp")

        assert _sign_up("taken@example.jp", HTTP_ACCEPT_LANGUAGE="en") == 302
        assert _sign_up("fresh@example.jp", HTTP_ACCEPT_LANGUAGE="ja") == 302
        assert mailoutbox == []  # nothing left from the request's own process

        wait_until(lambda: smtp_sink.count() >= 2, what="two mails from the worker")
        assert smtp_sink.recipients() == {"taken@example.jp": 1, "fresh@example.jp": 1}
        (notice,) = smtp_sink.to("taken@example.jp")
        (confirmation,) = smtp_sink.to("fresh@example.jp")
        assert "Account Already Exists" in notice["Subject"]
        assert "/accounts/confirm-email/" in confirmation.get_body(("plain",)).get_content()
        assert "確認" in confirmation["Subject"]
