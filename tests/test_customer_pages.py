"""What a customer sees, page by page, through Django's test client: the fixes a
walk through the site in Japanese asked for. The browser journey
(test_journey_customer) walks the same pages in Chromium."""

from tests.fixtures.mfa import sign_in_with_password, stepped_up

JSON = {"HTTP_ACCEPT": "application/json"}


def test_passkeys_say_why_they_are_off_where_the_address_cannot_have_them(
    client, customer, settings
):
    settings.PASSKEYS_ENABLED = False
    settings.SITE_URL = "http://127.0.0.1:8000"
    sign_in_with_password(client, customer)
    stepped_up(client)

    page = client.get("/accounts/2fa/").content.decode()
    assert "このサイトのアドレス（http://127.0.0.1:8000）ではパスキーを使えません" in page
    assert 'data-testid="add-passkey"' not in page
    assert client.get("/accounts/2fa/passkeys/add/").url == "/accounts/2fa/"
    response = client.post("/accounts/2fa/passkeys/registration/begin/", **JSON)
    assert response.status_code == 403
    assert response.json()["code"] == "passkeys_off"
