"""Webhooks: which URLs may be called, the signature, and one POST.

Safety: only ``http``/``https`` URLs with a host; every address the host resolves to must be
public, unless ``SIGHTING_WEBHOOK_ALLOW`` lists the host name or a network containing the
address (loopback, private, link-local, reserved, multicast and unspecified addresses are
refused otherwise: the service must not become a way into the operator's own network). The
check runs when a watch is created and again before every POST (a name may resolve elsewhere
later). Redirects are never followed and every POST has a timeout.

Signature: ``X-Sighting-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed with the
watch's secret>``; the receiver recomputes it over the bytes it got (`verify_signature`) and
compares in constant time. ``X-Sighting-Alert-Id`` carries the alert id, which a receiver
uses to drop a repeat (a POST whose answer was lost is sent again).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from core.errors import BadInput

SIGNATURE_HEADER = "X-Sighting-Signature"
ALERT_HEADER = "X-Sighting-Alert-Id"
EVENT_HEADER = "X-Sighting-Event"
MAX_URL_CHARS = 2000


def _allowed(host: str, addresses: Iterable[str], allow: Iterable[str]) -> bool:
    """Whether ``host`` or all its ``addresses`` are covered by the allow list."""
    names = {a.strip().lower() for a in allow if a.strip()}
    if host.lower() in names:
        return True
    networks = []
    for entry in names:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            continue  # a host name
    return bool(networks) and all(
        any(ipaddress.ip_address(a) in n for n in networks) for a in addresses
    )


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
    )


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to.

    Raises:
        BadInput: the name does not resolve.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise BadInput(f"webhook host {host!r} does not resolve: {exc}") from None
    return sorted({info[4][0].split("%")[0] for info in infos})


def check_url(url: str, allow: Iterable[str]) -> str:
    """Return ``url`` if a webhook may be POSTed to it.

    Args:
        url: the webhook URL.
        allow: ``SIGHTING_WEBHOOK_ALLOW`` (host names or CIDRs that may be non-public).

    Raises:
        BadInput: not http(s), no host, credentials in the URL, unresolvable host, or a
            host on a private/loopback/link-local/reserved address that is not allowed.
    """
    if not isinstance(url, str) or not url or len(url) > MAX_URL_CHARS:
        raise BadInput(f"webhook_url must be an http(s) URL of at most {MAX_URL_CHARS} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise BadInput(f"webhook_url must be http or https, not {parts.scheme or 'none'!r}")
    if parts.username or parts.password:
        raise BadInput("webhook_url must not carry credentials (sign with the secret instead)")
    host = parts.hostname
    if not host:
        raise BadInput("webhook_url has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise BadInput("webhook_url has a bad port") from None
    addresses = resolve(host, port)
    private = [a for a in addresses if not _public(a)]
    if private and not _allowed(host, addresses, allow):
        raise BadInput(
            f"webhook host {host!r} resolves to a private, loopback or link-local address "
            f"({', '.join(private)}); an operator may allow it with SIGHTING_WEBHOOK_ALLOW",
            details={"host": host, "addresses": addresses},
        )
    return url


def body_bytes(payload: dict[str, Any]) -> bytes:
    """The exact bytes POSTed (and signed): compact, sorted JSON."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def sign(secret: str, body: bytes) -> str:
    """The signature header's value: ``sha256=<hex>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the signature of ``body`` with ``secret`` (constant time): what
    a receiver runs."""
    return bool(header) and hmac.compare_digest(sign(secret, body), str(header))


@dataclass(frozen=True)
class PostResult:
    """What one POST got: ``ok`` for a 2xx answer; ``status`` 0 when none came."""

    ok: bool
    status: int
    error: str


def post(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> PostResult:
    """POST ``body`` once: no redirects followed, ``timeout_s`` to connect and to read."""
    import requests

    try:
        answer = requests.post(
            url,
            data=body,
            headers={"Content-Type": "application/json"} | headers,
            timeout=(timeout_s, timeout_s),
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        return PostResult(False, 0, f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= answer.status_code < 300:
        return PostResult(True, answer.status_code, "")
    reason = "a redirect (not followed)" if 300 <= answer.status_code < 400 else "an error"
    return PostResult(False, answer.status_code, f"HTTP {answer.status_code}: {reason}")
