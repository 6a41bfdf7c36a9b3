"""Download an image from a URL a client gave us without letting it reach inside our network.

Only http and https; the host is resolved once, every address is checked against an address policy
(by default: public unicast addresses only), and the connection goes to the checked address itself,
so a DNS answer that changes between check and connect (rebinding) cannot slip through. Redirects are
followed by hand (at most five), each one checked the same way. Connect, read and total timeouts
apply, and the body is read in chunks and abandoned as soon as it passes the byte limit.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from clearbg_app.services.errors import ServiceError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AddressPolicy = Callable[[IPAddress], bool]
REDIRECTS = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 5
CHUNK = 64 * 1024


class UrlRefused(ServiceError):
    """The URL is not one we fetch (scheme, or an address inside a private network)."""

    status, code, title = 400, "url_refused", "Image URL refused"


class UrlFetchFailed(ServiceError):
    """The download failed: unreachable, timed out, an error status, too many redirects."""

    status, code, title = 400, "url_fetch_failed", "Failed to download the image"


class UrlTooLarge(ServiceError):
    """The download passed the byte limit (it was stopped there)."""

    status, code, title = 413, "file_too_large", "File too large"


# Ranges that are not globally reachable but that `ipaddress` (as of Python 3.11) calls global:
# deprecated site-local IPv6, IPv6 documentation (RFC 9637), SRv6 SIDs (RFC 9602), the deprecated
# 6to4 relay anycast, and NAT64's local-use prefix (RFC 8215).
NOT_GLOBAL = tuple(
    ipaddress.ip_network(network) for network in ("fec0::/10", "3fff::/20", "5f00::/16", "192.88.99.0/24", "64:ff9b:1::/48")
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the well-known prefix: an IPv4 address in its last 32 bits


def public_only(address: IPAddress) -> bool:
    """The default policy: globally reachable unicast addresses only (`is_global`, and not in
    `NOT_GLOBAL`); never loopback, private, link-local (cloud metadata), site-local, multicast,
    reserved or unspecified ones. IPv4 embedded in IPv6 (IPv4-mapped, NAT64) is judged as that IPv4
    address; the 6to4 and Teredo tunnels, which reach any IPv4 address, are refused."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return public_only(address.ipv4_mapped)
        if address in NAT64:
            return public_only(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address.sixtofour is not None or address.teredo is not None:
            return False
    if any(address in network for network in NOT_GLOBAL if network.version == address.version):
        return False
    return address.is_global and not (
        address.is_multicast or address.is_loopback or address.is_link_local or address.is_reserved or address.is_private
    )


@dataclass(frozen=True)
class ParsedUrl:
    scheme: str
    host: str
    port: int
    target: str  # path and query, what the request line asks for


def parse_url(url: str, *, name: str = "image_url") -> ParsedUrl:
    """`url` taken apart; `UrlRefused` unless it is a plain http(s) URL with a host and a valid port
    (no spaces or control characters, at most 2000 characters)."""
    if len(url) > 2000 or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise UrlRefused(f"{name} must be an http:// or https:// URL of at most 2000 characters, without spaces.")
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:  # "http://[::1" (an unclosed IPv6 literal), a port that is not a number or out of range
        raise UrlRefused(f"{name} is not a valid URL (check the host and the port).") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UrlRefused(f"{name} must be an http:// or https:// URL.")
    return ParsedUrl(parts.scheme, parts.hostname, port, (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    read: float = 10.0
    total: float = 30.0


def resolve_host(host: str, port: int, policy: AddressPolicy) -> list[str]:
    """The addresses of `host`, if every one of them passes `policy`."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError):  # unknown name, a label IDNA refuses
        raise UrlFetchFailed(f"The host {host!r} of image_url does not resolve.") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses or not all(policy(address) for address in addresses):
        raise UrlRefused("image_url points to an address we do not fetch from (a private or local network).")
    return list(dict.fromkeys(str(address) for address in addresses))


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to the checked addresses (the first that answers); the Host header keeps the name."""

    def __init__(self, host: str, port: int, addresses: list[str], timeouts: Timeouts) -> None:
        super().__init__(host, port, timeout=timeouts.connect)
        self._addresses, self._read_timeout = addresses, timeouts.read

    def connect(self) -> None:
        for address in self._addresses:
            try:
                self.sock = socket.create_connection((address, self.port), self.timeout)
                break
            except OSError:
                if address == self._addresses[-1]:
                    raise
        self.sock.settimeout(self._read_timeout)


class _PinnedHTTPS(_PinnedHTTP):
    """TLS to the checked address, verified against the host name (SNI and certificate)."""

    default_port = 443

    def __init__(self, host: str, port: int, addresses: list[str], timeouts: Timeouts, context: ssl.SSLContext) -> None:
        super().__init__(host, port, addresses, timeouts)
        self._context = context

    def connect(self) -> None:
        super().connect()
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.host)


def pinned_connection(
    url: str, *, policy: AddressPolicy, timeouts: Timeouts, tls_context: ssl.SSLContext | None = None
) -> tuple[_PinnedHTTP, str]:
    """A connection (not yet open) that can only reach the checked addresses of `url`'s host, and the
    request target. `UrlRefused` unless `url` passes `parse_url` and `policy` accepts its host."""
    parts = parse_url(url)
    addresses = resolve_host(parts.host, parts.port, policy)
    connection: _PinnedHTTP
    if parts.scheme == "https":
        connection = _PinnedHTTPS(parts.host, parts.port, addresses, timeouts, tls_context or ssl.create_default_context())
    else:
        connection = _PinnedHTTP(parts.host, parts.port, addresses, timeouts)
    return connection, parts.target


def fetch_image(
    url: str,
    *,
    max_bytes: int,
    policy: AddressPolicy = public_only,
    timeouts: Timeouts = Timeouts(),
    tls_context: ssl.SSLContext | None = None,
) -> bytes:
    """The body at `url` (at most `max_bytes`), following up to five checked redirects."""
    deadline = time.monotonic() + timeouts.total
    for _ in range(MAX_REDIRECTS + 1):
        connection, target = pinned_connection(url, policy=policy, timeouts=timeouts, tls_context=tls_context)
        try:
            connection.request("GET", target, headers={"User-Agent": "ClearBG image fetcher", "Accept": "image/*"})
            response = connection.getresponse()
            location = response.getheader("Location")
            if response.status in REDIRECTS and location:
                url = _redirect_target(url, location)
                continue
            if response.status != 200:
                raise UrlFetchFailed(f"image_url answered HTTP {response.status}.")
            return _read_limited(response, max_bytes, deadline)
        except TimeoutError:
            raise UrlFetchFailed("image_url took too long to answer.") from None
        except (OSError, http.client.HTTPException) as error:
            raise UrlFetchFailed(f"image_url could not be downloaded ({type(error).__name__}).") from None
        finally:
            connection.close()
    raise UrlFetchFailed(f"image_url redirected more than {MAX_REDIRECTS} times.")


def _redirect_target(url: str, location: str) -> str:
    try:
        return urljoin(url, location)
    except ValueError:
        raise UrlFetchFailed("image_url redirected to an invalid URL.") from None


def _read_limited(response: http.client.HTTPResponse, max_bytes: int, deadline: float) -> bytes:
    declared = response.getheader("Content-Length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise UrlTooLarge(f"The image at image_url is over the {max_bytes / 1e6:g} MB limit.")
    body = bytearray()
    while chunk := response.read1(CHUNK):
        body += chunk
        if len(body) > max_bytes:
            raise UrlTooLarge(f"The image at image_url is over the {max_bytes / 1e6:g} MB limit.")
        if time.monotonic() > deadline:
            raise UrlFetchFailed("image_url took too long to download.")
    return bytes(body)
