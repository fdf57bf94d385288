"""Outbound HTTP to addresses that group services give us (webhooks; back-channel
logout later): public addresses only, so a registered URL cannot make this site
reach its own network (Redis, cloud metadata, the admin on localhost).

A URL is checked when it is registered (check_url, for forms and models) and
again when it is used (post): the host is resolved once, every address must be
public, and the connection goes to the address that was checked, so a DNS answer
that changes in between (rebinding) changes nothing. TLS still verifies the name.
No redirects, no proxies from the environment, a timeout. In production (an https
SITE_URL) only https. OUTBOUND_ALLOWED_HOSTS lists internal receivers that may be
reached all the same: host[:port] or a network in CIDR notation.
"""

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from requests.adapters import HTTPAdapter

NOT_PUBLIC = "refused: not a public address"
HTTPS_ONLY = "refused: https only"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_DEFAULT_PORTS = {"http": 80, "https": 443}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Names that only mean something inside a network (cloud metadata, loopback).
_FORBIDDEN_NAMES = {"localhost", "metadata", "metadata.google.internal"}
_FORBIDDEN_SUFFIXES = (".localhost", ".internal", ".local", ".localdomain", ".home.arpa")


class Refused(Exception):
    """Nothing was sent: the target is not a public address (or not https in
    production). str() is safe to show: it names no address."""


def check_url(url: str) -> None:
    """At registration: a ValidationError with a clear message, or None."""
    try:
        scheme, host, port = _parts(url)
    except Refused:
        raise ValidationError(_("Enter a full http:// or https:// address.")) from None
    if _https_only() and scheme != "https":
        raise ValidationError(_("Use an https:// address."))
    try:
        _resolve_public(host, port)
    except socket.gaierror:
        raise ValidationError(_("The host name could not be found.")) from None
    except Refused:
        raise ValidationError(
            _("This is not a public address: requests go only to public addresses.")
        ) from None


def post(url: str, *, body: bytes, headers: dict[str, str], timeout: float) -> requests.Response:
    """POST to a checked public address. Refused, or requests' own exceptions.
    The response body is not read."""
    with requests.Session() as session:
        session.trust_env = False  # no proxies or .netrc from the environment
        adapter = _PublicOnlyAdapter()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        response = session.post(
            url,
            data=body,
            headers=headers,
            timeout=timeout,
            allow_redirects=False,
            stream=True,
            verify=settings.OUTBOUND_CA_BUNDLE or True,
        )
        response.close()
        return response


class _PublicOnlyAdapter(HTTPAdapter):
    """Checks the host requests is about to connect to (its own parse of the URL),
    then hands urllib3 a pool for the checked address, the name kept for TLS."""

    def get_connection_with_tls_context(
        self, request: requests.PreparedRequest, verify: Any, proxies=None, cert=None
    ):
        host_params, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        scheme, host, port = host_params["scheme"], host_params["host"], host_params["port"]
        if _https_only() and scheme != "https":
            raise Refused(HTTPS_ONLY)
        name = host.strip("[]")
        try:
            address = _resolve_public(name, port or _DEFAULT_PORTS[scheme])
        except socket.gaierror as exc:
            raise requests.ConnectionError(f"could not resolve {name}") from exc
        if scheme == "https":
            pool_kwargs = {**pool_kwargs, "server_hostname": name, "assert_hostname": name}
        return self.poolmanager.connection_from_host(
            host=str(address), port=port, scheme=scheme, pool_kwargs=pool_kwargs
        )

    def add_headers(self, request: requests.PreparedRequest, **kwargs: Any) -> None:
        # urllib3 would name the address it connects to; the receiver expects the name.
        request.headers["Host"] = urlsplit(request.url).netloc.rpartition("@")[2]


def is_public(address: IPAddress) -> bool:
    """Reachable on the internet, and not one of ours in disguise (an IPv6 form
    that carries a private IPv4 address)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address.teredo:
            embedded = address.teredo[1]
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and not is_public(embedded):
            return False
    return address.is_global and not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def _resolve_public(host: str, port: int) -> IPAddress:
    """The address to connect to: resolved once, every answer checked."""
    name = _normal(host)
    if _allowed_host(name, port):
        return _resolve(name, port)[0]
    if name in _FORBIDDEN_NAMES or name.endswith(_FORBIDDEN_SUFFIXES):
        raise Refused(NOT_PUBLIC)
    addresses = _resolve(name, port)
    networks = _allowed_networks()
    for address in addresses:
        if not is_public(address) and not any(address in network for network in networks):
            raise Refused(NOT_PUBLIC)
    return addresses[0]


def _resolve(name: str, port: int) -> list[IPAddress]:
    answers = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    # sockaddr[0] of an IPv6 answer may carry a zone ("fe80::1%eth0").
    return [ipaddress.ip_address(str(answer[4][0]).partition("%")[0]) for answer in answers]


def _parts(url: str) -> tuple[str, str, int]:
    """Scheme, host and port, parsed as requests parses them to connect."""
    try:
        parsed = urlsplit(url)
        port = parsed.port
    except ValueError:
        raise Refused(NOT_PUBLIC) from None
    if parsed.scheme not in _DEFAULT_PORTS or not parsed.hostname:
        raise Refused(NOT_PUBLIC)
    return parsed.scheme, parsed.hostname, port or _DEFAULT_PORTS[parsed.scheme]


def _https_only() -> bool:
    return settings.SITE_URL.startswith("https://")


def _allowed_host(name: str, port: int) -> bool:
    for entry in settings.OUTBOUND_ALLOWED_HOSTS:
        if "/" in entry:
            continue
        allowed_name, allowed_port = _host_entry(entry)
        if allowed_name == name and allowed_port in (None, port):
            return True
    return False


def _allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [
        ipaddress.ip_network(entry, strict=False)
        for entry in settings.OUTBOUND_ALLOWED_HOSTS
        if "/" in entry
    ]


def _host_entry(entry: str) -> tuple[str, int | None]:
    """ "host", "host:port", "[v6]:port" or a bare IPv6 address."""
    try:
        return str(ipaddress.ip_address(entry)), None
    except ValueError:
        pass
    parsed = urlsplit("//" + entry)
    return _normal(parsed.hostname or ""), parsed.port


def _normal(host: str) -> str:
    """One spelling per host: lower case, no final dot, IP addresses canonical."""
    host = host.strip("[]").lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host
