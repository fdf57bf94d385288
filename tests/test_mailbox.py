from django.core.mail import get_connection, send_mail


def test_links_glued_to_japanese_text_are_clickable_in_the_mailbox(client, settings, db):
    settings.MAILBOX_VIEW = True
    connection = get_connection("config.mailbox.MailboxBackend")
    url = "http://localhost:8000/accounts/confirm-email/MQ:1xVL82:abc/"
    send_mail(
        "確認",
        f"間違いなければ、{url} にアクセスしてください。",
        None,
        ["a@example.jp"],
        connection=connection,
    )
    page = client.get("/mailbox/").content.decode()
    assert f'<a href="{url}">' in page
