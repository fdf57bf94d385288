"""Helpers for tests of the group-service API, webhooks and OIDC provider (the
fixtures are in tests/fixtures/api.py)."""

import base64
from dataclasses import dataclass

from allauth.idp.oidc.models import Client
from django.test import Client as DjangoClient
from django.urls import reverse

from linking.api.models import API_SCOPES, ServiceClient


@dataclass
class Registered:
    client: Client
    secret: str
    access: ServiceClient

    @property
    def client_id(self) -> str:
        return self.client.id

    def basic_auth(self) -> str:
        pair = f"{self.client.id}:{self.secret}".encode()
        return "Basic " + base64.b64encode(pair).decode()


def fetch_token(registered: Registered, scope: str = " ".join(API_SCOPES)) -> str:
    """An access token from the site's token endpoint (client-credentials grant)."""
    response = DjangoClient().post(
        reverse("idp:oidc:token"),
        {"grant_type": "client_credentials", "scope": scope},
        HTTP_AUTHORIZATION=registered.basic_auth(),
    )
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}
