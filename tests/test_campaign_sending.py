"""Planning and sending campaign emails in this process, into a real local SMTP
server: who is targeted, what each email says, never twice, and what the mail
server's answers do."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from accounts import limits
from linking import claims
from linking.campaigns import control, planning, sending, unsubscribe
from linking.campaigns.models import Campaign, Delivery, Suppression
from tests.campaign_support import SmtpSink, send_everything

pytest_plugins = ["tests.fixtures.campaigns"]


def _start(campaign: Campaign) -> None:
    control.start(campaign)
    planning.plan_step(campaign=campaign, number=0)


def _started(make_campaign, make_account, count: int, **options) -> Campaign:
    """A started campaign to count new accounts, m0@example.jp, m1@example.jp, ..."""
    for number in range(count):
        make_account(f"S{number}", email=f"m{number}@example.jp")
    campaign = make_campaign(**options)
    _start(campaign)
    return campaign


def test_the_audience_is_unlinked_consenting_unsuppressed_accounts_with_an_email(
    make_campaign, make_account, make_service, customer
):
    wanted = make_account("S1", email="a@example.jp")
    make_account("S2", email="")
    make_account("S3", email="c@example.jp", attributes={"marketing_consent": False})
    consenting = make_account("S4", email="d@example.jp", attributes={"marketing_consent": True})
    linked = make_account("S5", email="e@example.jp")
    claims.link(account=linked, customer=customer, proof="staff", request=None)
    make_account("S6", email="F@Example.jp")
    Suppression.objects.create(email_key="f@example.jp", reason="unsubscribed")
    make_account("A1", email="g@example.jp", service=make_service("app"))

    campaign = make_campaign()

    assert set(planning.audience(campaign)) == {wanted, consenting}


def test_filters_narrow_the_audience_by_points_and_last_activity(make_campaign, make_account):
    keep = make_account(
        "S1", email="a@example.jp", points=500, attributes={"last_active": "2026-05-01"}
    )
    make_account("S2", email="b@example.jp", points=10, attributes={"last_active": "2026-05-01"})
    make_account("S3", email="c@example.jp", points=900, attributes={"last_active": "2024-01-31"})
    make_account("S4", email="d@example.jp", points=900)

    campaign = make_campaign(min_points=100, active_since=timezone.datetime(2026, 1, 1).date())

    assert list(planning.audience(campaign)) == [keep]


def test_planning_twice_gives_one_delivery_per_step_and_account(make_campaign, make_account):
    for number in range(5):
        make_account(f"S{number}", email=f"m{number}@example.jp")
    campaign = make_campaign()

    planning.plan_step(campaign=campaign, number=0)
    planning.plan_step(campaign=campaign, number=0)

    assert Delivery.objects.filter(campaign=campaign).count() == 5
    assert campaign.steps.get(number=0).planned_at is not None


def test_it_sends_each_delivery_once_as_multipart_mail_with_unsubscribe_headers(
    make_campaign, make_account, make_service, smtp_sink: SmtpSink
):
    store = make_service("shop", incentive_ja="500ポイント進呈", incentive_en="500 points for you")
    make_account("S0001234", service=store, email="hanako@example.jp", name="山田 花子")
    make_account(
        "S0005678",
        service=store,
        email="jane@example.com",
        name="Jane Doe",
        attributes={"language": "en"},
    )
    campaign = make_campaign(services=[store])
    _start(campaign)

    assert send_everything(campaign) == 2

    assert smtp_sink.recipients() == {"hanako@example.jp": 1, "jane@example.com": 1}
    japanese = smtp_sink.to("hanako@example.jp")[0]
    assert japanese["Subject"].strip() == "山田 花子様、shop 会員のアカウントを統合IDへ"
    assert japanese.get_content_type() == "multipart/alternative"
    text = japanese.get_body(("plain",)).get_content()
    html = japanese.get_body(("html",)).get_content()
    assert "****1234" in text and "S0001234" not in text
    assert "500ポイント進呈" in text
    assert "サンプル商事株式会社" in text and "東京都千代田区丸の内1-1-1" in text
    assert "サンプル商事株式会社" in html and "/c/u/" in html
    assert japanese["Content-Language"] == "ja"
    assert japanese["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = (part.strip(" <>") for part in japanese["List-Unsubscribe"].split(","))
    assert https.startswith("http") and "/c/u/" in https
    assert mailto.startswith("mailto:unsubscribe@")
    delivery = Delivery.objects.get(account__external_id="S0001234")
    assert japanese["Message-ID"] == f"<campaign.{campaign.pk}.0.{delivery.pk}@localhost>"
    english = smtp_sink.to("jane@example.com")[0]
    assert english["Subject"].strip() == "Jane Doe, link your shop members account"
    assert "500 points for you" in english.get_body(("plain",)).get_content()
    assert english["Content-Language"] == "en"


def test_the_personal_link_is_stored_only_as_a_hash_with_an_expiry(
    make_campaign, make_account, smtp_sink: SmtpSink
):
    make_account("S1", email="a@example.jp")
    campaign = make_campaign(link_valid_days=14)
    _start(campaign)
    send_everything(campaign)

    delivery = Delivery.objects.get()
    text = smtp_sink.to("a@example.jp")[0].get_body(("plain",)).get_content()
    token = text.split("/c/l/")[1].split("/")[0]
    assert len(token) >= 40
    assert token not in delivery.token_hash
    assert delivery.token_hash == sending.token_hash(token)
    assert delivery.token_expires_at - delivery.sent_at == timedelta(days=14)


def test_a_sender_run_that_is_repeated_sends_nothing_again(
    make_campaign, make_account, smtp_sink: SmtpSink
):
    campaign = _started(make_campaign, make_account, 30)

    send_everything(campaign)
    send_everything(campaign)

    assert smtp_sink.count() == 30
    assert max(smtp_sink.recipients().values()) == 1
    assert Delivery.objects.filter(status="sent").count() == 30


def test_a_sender_that_lost_its_lease_sends_nothing(
    make_campaign, make_account, smtp_sink: SmtpSink
):
    make_account("S1", email="a@example.jp")
    campaign = make_campaign()
    _start(campaign)
    slow = sending.lease(campaign.pk, 10)
    # The slow sender's lease runs out; another sender takes the delivery and sends it.
    Delivery.objects.update(lease_until=timezone.now() - timedelta(seconds=1))
    assert send_everything(campaign) == 1

    assert sending.send_leased(sending.connections(), campaign, slow) == 0

    assert smtp_sink.recipients() == {"a@example.jp": 1}


def test_suppression_is_checked_right_before_each_send(
    make_campaign, make_account, smtp_sink: SmtpSink
):
    make_account("S1", email="a@example.jp")
    make_account("S2", email="b@example.jp")
    campaign = make_campaign()
    _start(campaign)
    unsubscribe.unsubscribe(Delivery.objects.get(email_key="b@example.jp"))

    send_everything(campaign)

    assert smtp_sink.recipients() == {"a@example.jp": 1}
    skipped = Delivery.objects.get(email_key="b@example.jp")
    assert (skipped.status, skipped.error) == ("skipped", "suppressed")


def test_temporary_smtp_errors_are_retried_later_and_permanent_ones_recorded(
    make_campaign, make_account, smtp_sink: SmtpSink
):
    make_account("S1", email="later@example.jp")
    make_account("S2", email="nobody@example.jp")
    make_account("S3", email="fine@example.jp")
    smtp_sink.reply_for["later@example.jp"] = "451 4.3.0 try again later"
    smtp_sink.reply_for["nobody@example.jp"] = "550 5.1.1 no such user"
    campaign = make_campaign()
    _start(campaign)

    send_everything(campaign)

    later = Delivery.objects.get(email_key="later@example.jp")
    assert (later.status, later.attempts) == ("pending", 1)
    assert later.not_before > timezone.now()
    assert "451" in later.error
    nobody = Delivery.objects.get(email_key="nobody@example.jp")
    assert nobody.status == "failed" and "550" in nobody.error
    assert Suppression.objects.filter(email_key="nobody@example.jp", reason="bounced").exists()
    assert smtp_sink.recipients() == {"fine@example.jp": 1}

    del smtp_sink.reply_for["later@example.jp"]
    Delivery.objects.filter(pk=later.pk).update(not_before=timezone.now())
    send_everything(campaign)
    assert smtp_sink.recipients() == {"fine@example.jp": 1, "later@example.jp": 1}


def test_an_unreachable_mail_server_releases_the_leased_deliveries(
    make_campaign, make_account, settings
):
    make_account("S1", email="a@example.jp")
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 2
    campaign = make_campaign()
    _start(campaign)

    with pytest.raises(sending.MailServerUnavailable):
        sending.send_chunk(campaign.pk)

    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.lease, delivery.sent_at) == ("pending", "", None)


def test_a_paused_or_cancelled_campaign_sends_nothing(
    make_campaign, make_account, smtp_sink: SmtpSink
):
    make_account("S1", email="a@example.jp")
    campaign = make_campaign()
    _start(campaign)

    control.pause(campaign)
    assert sending.send_chunk(campaign.pk) == sending.Run()
    control.cancel(campaign)
    assert sending.send_chunk(campaign.pk) == sending.Run()

    assert smtp_sink.count() == 0
    assert Delivery.objects.get().status == "cancelled"


def test_a_finished_step_finishes_the_campaign(make_campaign, make_account, smtp_sink):
    make_account("S1", email="a@example.jp")
    campaign = make_campaign()
    _start(campaign)

    send_everything(campaign)

    campaign.refresh_from_db()
    assert campaign.status == "finished" and campaign.finished_at is not None


def test_reminders_go_only_to_those_reached_who_have_not_linked(
    make_campaign, make_account, customer, smtp_sink: SmtpSink
):
    linked_since = make_account("S1", email="a@example.jp")
    make_account("S2", email="b@example.jp")
    unsubscribed = make_account("S3", email="c@example.jp")
    campaign = make_campaign(steps=(0, 3))
    _start(campaign)
    send_everything(campaign)
    claims.link(account=linked_since, customer=customer, proof="code", request=None)
    unsubscribe.unsubscribe(Delivery.objects.get(account=unsubscribed))

    planning.plan_step(campaign=campaign, number=3)
    send_everything(campaign)

    reminders = [m for m in smtp_sink.snapshot() if ".3." in str(m["Message-ID"])]
    assert [str(m["To"]) for m in reminders] == ["b@example.jp"]
    first = next(m for m in smtp_sink.to("b@example.jp") if ".0." in str(m["Message-ID"]))
    assert first["Subject"].strip() in reminders[0]["Subject"]
    assert first["Subject"].strip() != reminders[0]["Subject"].strip()


def test_the_rate_limit_is_one_count_for_all_senders(make_campaign):
    campaign = make_campaign(rate_per_minute=60)
    rate, key = sending.send_rate(60), ("campaign", str(campaign.pk))

    first = limits.take(rate, *key, wanted=100)
    second = limits.take(rate, *key, wanted=100)

    assert first.count == 5  # five seconds' worth at 60 a minute
    assert second.count == 0 and 0 < second.resets_in <= sending.BURST_SECONDS
    limits.give_back(rate, *key, count=2, of=first)
    assert limits.take(rate, *key, wanted=100).count == 2


@pytest.mark.parametrize("per_minute", [1, 6, 7, 13, 19, 60, 599, 600, 1_000_000])
def test_a_campaign_is_sent_at_its_rate_in_windows_of_whole_emails(per_minute):
    rate = sending.send_rate(per_minute)
    sustained = rate.amount * 60 / rate.get_expiry()

    assert rate.amount >= 1 and 60 % rate.get_expiry() == 0
    assert rate.get_expiry() >= sending.BURST_SECONDS
    assert 0.9 * per_minute <= sustained <= per_minute


def test_a_rate_limited_sender_waits_instead_of_sending(
    make_campaign, make_account, smtp_sink: SmtpSink
):
    campaign = _started(make_campaign, make_account, 8, rate_per_minute=60)

    first = sending.send_chunk(campaign.pk)
    second = sending.send_chunk(campaign.pk)

    assert first.sent == 5
    assert second.sent == 0 and second.keep_sending and second.wait_seconds > 0
    assert smtp_sink.count() == 5


@pytest.mark.parametrize("status", ["scheduled", "sending", "finished"])
def test_only_a_draft_can_be_started(make_campaign, status):
    campaign = make_campaign(status=status)
    with pytest.raises(control.NotAllowed):
        control.start(campaign)


def test_a_campaign_with_a_future_start_waits_as_scheduled(make_campaign):
    campaign = make_campaign(start_at=timezone.now() + timedelta(days=1))

    control.start(campaign)

    assert campaign.status == "scheduled" and campaign.started_at is None


def test_a_batch_sent_twice_by_a_repeated_task_goes_out_once(
    make_campaign, make_account, smtp_sink: SmtpSink
):
    campaign = _started(make_campaign, make_account, 30)
    leased = sending.lease(campaign.pk, 30)

    first = sending.send_leased(sending.connections(), campaign, leased)
    again = sending.send_leased(sending.connections(), campaign, leased)

    assert (first, again) == (30, 0)
    assert smtp_sink.recipients() == {f"m{number}@example.jp": 1 for number in range(30)}
    assert Delivery.objects.filter(status="sent").count() == 30


def test_two_senders_on_one_batch_send_it_once(make_campaign, make_account, smtp_sink: SmtpSink):
    campaign = _started(make_campaign, make_account, 20)
    slow = sending.lease(campaign.pk, 20)
    Delivery.objects.update(lease_until=timezone.now() - timedelta(seconds=1))
    fast = sending.lease(campaign.pk, 20)

    # Only one hand-over can win each row; the loser sends nothing.
    assert sending.send_leased(sending.connections(), campaign, slow) == 0
    assert sending.send_leased(sending.connections(), campaign, fast) == 20

    assert smtp_sink.recipients() == {f"m{number}@example.jp": 1 for number in range(20)}


def test_suppression_is_rechecked_in_the_hand_over_itself(
    make_campaign, make_account, smtp_sink: SmtpSink, customer
):
    make_account("S1", email="a@example.jp")
    make_account("S2", email="b@example.jp")
    linked = make_account("S3", email="c@example.jp")
    make_account("S4", email="d@example.jp")
    campaign = make_campaign()
    _start(campaign)
    leased = sending.lease(campaign.pk, 10)
    # After the lease, before the batch is handed over: an unsubscribe and a link.
    unsubscribe.unsubscribe(Delivery.objects.get(email_key="b@example.jp"))
    claims.link(account=linked, customer=customer, proof="staff", request=None)

    assert sending.send_batch(sending.connections(), campaign, leased) == 2

    assert smtp_sink.recipients() == {"a@example.jp": 1, "d@example.jp": 1}
    skipped = dict(Delivery.objects.filter(status="skipped").values_list("email_key", "error"))
    assert skipped == {"b@example.jp": "suppressed", "c@example.jp": "linked before sending"}


def test_a_record_that_refuses_marketing_email_after_planning_is_not_mailed(
    make_campaign, make_account, smtp_sink: SmtpSink
):
    make_account("S1", email="a@example.jp")
    refusing = make_account("S2", email="b@example.jp", attributes={"marketing_consent": True})
    campaign = make_campaign()
    _start(campaign)
    # A re-import after planning: the service's record now says no to marketing email.
    refusing.attributes = {"marketing_consent": False}
    refusing.save(update_fields=["attributes"])

    send_everything(campaign)

    assert smtp_sink.recipients() == {"a@example.jp": 1}
    skipped = Delivery.objects.get(email_key="b@example.jp")
    assert (skipped.status, skipped.error) == ("skipped", "marketing email refused")


def test_a_handed_over_delivery_whose_outcome_was_lost_is_unconfirmed_never_resent(
    make_campaign, make_account, smtp_sink: SmtpSink
):
    campaign = _started(make_campaign, make_account, 3)
    leased = sending.lease(campaign.pk, 3)
    # Committed "sending", as right before send_messages; then the sender is gone.
    sending._hand_over(campaign, leased, {d.pk: f"t{d.pk}" for d in leased})
    Delivery.objects.update(lease_until=timezone.now() - timedelta(seconds=1))

    assert send_everything(campaign) == 0

    assert smtp_sink.count() == 0
    assert set(Delivery.objects.values_list("status", flat=True)) == {"unconfirmed"}
    campaign.refresh_from_db()
    assert campaign.status == "finished"


def test_a_connection_closed_mid_batch_releases_the_emails_it_never_tried(
    make_campaign, make_account, smtp_sink: SmtpSink, settings
):
    settings.CAMPAIGN_CONNECTIONS = 1  # one connection: the emails go in order
    campaign = _started(make_campaign, make_account, 6)
    smtp_sink.reply_for["m2@example.jp"] = "421 4.3.2 shutting down"
    leased = sending.lease(campaign.pk, 6)

    with pytest.raises(sending.MailServerUnavailable):
        sending.send_leased(sending.connections(), campaign, leased)

    statuses = dict(Delivery.objects.values_list("email_key", "status"))
    assert statuses == {
        "m0@example.jp": "sent",
        "m1@example.jp": "sent",
        "m2@example.jp": "pending",  # refused for now: nothing was taken
        "m3@example.jp": "pending",
        "m4@example.jp": "pending",
        "m5@example.jp": "pending",
    }
    assert Delivery.objects.get(email_key="m2@example.jp").attempts == 1
    assert Delivery.objects.get(email_key="m3@example.jp").attempts == 0


def test_personal_values_are_escaped_in_html_and_never_become_links(
    make_campaign, make_account, smtp_sink: SmtpSink
):
    make_account("S1", email="a@example.jp", name="<b>Tom</b> & www.example.com\nJr")
    campaign = make_campaign()
    _start(campaign)

    send_everything(campaign)

    message = smtp_sink.to("a@example.jp")[0]
    assert message["Subject"].strip().startswith("<b>Tom</b> & www.example.com Jr様")
    text = message.get_body(("plain",)).get_content()
    assert "<b>Tom</b> & www.example.com\r\nJr様" in text
    html = message.get_body(("html",)).get_content()
    assert "&lt;b&gt;Tom&lt;/b&gt; &amp; www.example.com" in html
    assert "<b>Tom" not in html and 'href="http://www.example.com"' not in html
    token = Delivery.objects.get().token_hash
    links = [part for part in html.split('href="')[1:] if "/c/l/" in part]
    assert len(links) == 1 and sending.token_hash(links[0].split("/c/l/")[1].split("/")[0]) == token


def test_one_chunk_of_several_services_and_languages_says_each_its_own(
    make_campaign, make_account, make_service, smtp_sink: SmtpSink
):
    shop = make_service("shop", incentive_ja="ショップ特典")
    app = make_service("app", incentive_ja="アプリ特典", incentive_en="app bonus")
    make_account("S1", service=shop, email="a@example.jp", name="山田")
    make_account("A1", service=app, email="b@example.jp", name="佐藤")
    english = {"language": "en"}
    make_account("A2", service=app, email="c@example.jp", name="Jane", attributes=english)
    campaign = make_campaign(services=[shop, app])
    _start(campaign)

    assert send_everything(campaign) == 3

    def said(address: str) -> str:
        return smtp_sink.to(address)[0].get_body(("plain",)).get_content()

    assert "山田様" in said("a@example.jp") and "ショップ特典" in said("a@example.jp")
    assert "佐藤様" in said("b@example.jp") and "アプリ特典" in said("b@example.jp")
    assert "Dear Jane" in said("c@example.jp") and "app bonus" in said("c@example.jp")


def test_an_email_that_cannot_be_built_fails_alone_and_the_batch_goes_on(
    make_campaign, make_account, smtp_sink: SmtpSink
):
    campaign = _started(make_campaign, make_account, 4)
    # A record whose address would inject a header: Django refuses to build it.
    Delivery.objects.filter(email="m1@example.jp").update(email="m1@example.jp\nBcc: x@evil.jp")

    assert send_everything(campaign) == 3

    assert smtp_sink.recipients() == {"m0@example.jp": 1, "m2@example.jp": 1, "m3@example.jp": 1}
    refused = Delivery.objects.get(email__startswith="m1@")
    assert refused.status == "failed" and "cannot be sent" in refused.error
    assert refused.token_hash is None


def test_any_email_backend_sends_a_campaign_and_each_email_names_its_delivery(
    make_campaign, make_account, settings, mailoutbox
):
    # An email service through anymail: its test backend, which keeps what it was given.
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    campaign = _started(make_campaign, make_account, 3)

    assert send_everything(campaign) == 3

    sent = {message.to[0]: message for message in mailoutbox}
    assert set(sent) == {"m0@example.jp", "m1@example.jp", "m2@example.jp"}
    for delivery in Delivery.objects.all():
        assert delivery.status == "sent"
        message = sent[delivery.email]
        assert message.anymail_test_params["metadata"] == {"delivery": str(delivery.pk)}
        assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_cancel_stops_leased_emails_and_beat_settles_what_a_dead_sender_handed_over(
    make_campaign, make_account, smtp_sink: SmtpSink
):
    campaign = _started(make_campaign, make_account, 4)
    leased = sending.lease(campaign.pk, 4)
    # One batch handed over by a sender that then died; the other still only leased.
    sending._hand_over(campaign, leased[:2], {d.pk: f"t{d.pk}" for d in leased[:2]})

    control.cancel(campaign)
    assert sending.send_leased(sending.connections(), campaign, leased[2:]) == 0
    Delivery.objects.filter(status="sending").update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )
    control.tick()

    assert smtp_sink.count() == 0
    statuses = list(Delivery.objects.order_by("pk").values_list("status", flat=True))
    assert statuses == ["unconfirmed", "unconfirmed", "cancelled", "cancelled"]


@pytest.mark.django_db(transaction=True)
def test_a_delivery_held_under_the_old_claimed_status_is_leased_after_the_migration(
    make_campaign, make_account, smtp_sink: SmtpSink
):
    campaign = _started(make_campaign, make_account, 1)
    [held] = sending.lease(campaign.pk, 1)
    executor = MigrationExecutor(connection)
    executor.migrate([("campaigns", "0005_staff_names")])
    with connection.cursor() as cursor:
        cursor.execute("SELECT status, claim FROM campaigns_delivery WHERE id = %s", [held.pk])
        assert cursor.fetchone() == ("claimed", held.lease)

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes("campaigns"))

    stored = Delivery.objects.get(pk=held.pk)
    assert (stored.status, stored.lease) == ("leased", held.lease)
    # The sender that held it is gone; once its lease ends the next sender sends it.
    Delivery.objects.update(lease_until=timezone.now() - timedelta(seconds=1))
    assert send_everything(campaign) == 1
    assert smtp_sink.recipients() == {"m0@example.jp": 1}
