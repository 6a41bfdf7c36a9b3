"""`image_url`: the fetcher against real HTTP servers on loopback, the default address policy, and the
API refusing internal addresses. Tests allow 127.0.0.1 by passing their own policy; production never does."""

from __future__ import annotations

import ipaddress
import ssl
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from clearbg_app.services import api_keys
from clearbg_app.services.url_fetch import Timeouts, UrlFetchFailed, UrlRefused, UrlTooLarge, fetch_image, public_only
from tests.conftest import sample_bytes
from tests.factories import ENDPOINT, api_client, balance, give, verified_user
from tests.loopback import HUGE, ImageHandler, loopback_only

HORSE = sample_bytes("horse.jpg")
QUICK = Timeouts(connect=1, read=0.5, total=5)


def fetch(url: str, **kwargs) -> bytes:
    return fetch_image(url, max_bytes=kwargs.pop("max_bytes", 1_000_000), timeouts=QUICK, **kwargs)


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1",
     "240.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fc00::1", "fd00:ec2::254", "ff02::1", "::ffff:127.0.0.1",
     "::ffff:10.0.0.1", "::ffff:169.254.169.254", "2002:7f00:1::1", "64:ff9b::a00:1",
     # site-local (fec0::/10, deprecated), documentation, SRv6, 6to4 relay, local NAT64, Teredo, IPv4-compatible,
     # IPv4-translated, NAT64 of loopback and metadata: ipaddress calls the first five global on Python 3.11
     "fec0::1", "feff:ffff::1", "3fff::1", "5f00::1", "192.88.99.1", "64:ff9b:1::a00:1", "2001:0:4136:e378::1", "::a00:1",
     "::ffff:0:a00:1", "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "2001:db8::1", "100::1", "198.18.0.1", "192.0.2.1"],
)  # fmt: skip
def test_default_policy_refuses_internal_addresses(address):
    assert not public_only(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"])
def test_default_policy_allows_public_addresses(address):
    assert public_only(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "path_or_url",
    ["/horse.jpg", "http://10.0.0.1/a.jpg", "http://169.254.169.254/latest/meta-data/", "http://[::1]/a.jpg",
     "http://[::ffff:127.0.0.1]/a.jpg", "http://localhost/a.jpg", "http://0x7f000001/a.jpg", "http://[fec0::1]/a.jpg",
     "http://[64:ff9b::7f00:1]/a.jpg"],
)  # fmt: skip
def test_default_policy_refuses_before_connecting(server, path_or_url):
    url = server + path_or_url if path_or_url.startswith("/") else path_or_url
    with pytest.raises(UrlRefused):
        fetch(url)


@pytest.mark.parametrize("url", ["ftp://example.com/a.jpg", "file:///etc/passwd", "gopher://x/", "http:///nohost"])
def test_only_http_and_https(url):
    with pytest.raises(UrlRefused, match="http"):
        fetch(url)


@pytest.mark.parametrize(
    "url", ["http://[::1", "http://[::1]:99999/", "http://x:port/", "http://a b/", "http://x\x00y/", "http://x/\r\nHost: y",
            "http://" + "a" * 2001, "http://" + "a" * 300 + "/", "http://a..b/"],
)  # fmt: skip
def test_malformed_urls_are_refused_before_any_lookup(url):
    """urlsplit's ValueError, NUL and spaces, labels IDNA refuses: UrlRefused or UrlFetchFailed (they were 500s)."""
    with pytest.raises((UrlRefused, UrlFetchFailed)):
        fetch(url)


def test_allowed_address_downloads_and_redirects_are_followed(server):
    assert fetch(server + "/horse.jpg", policy=loopback_only) == HORSE
    assert fetch(server + "/hop", policy=loopback_only) == HORSE


def test_connection_goes_to_the_checked_address_with_the_name_as_host(server):
    port = server.rsplit(":", 1)[1]
    ImageHandler.hosts.clear()
    assert fetch(f"http://localhost:{port}/horse.jpg", policy=loopback_only) == HORSE
    assert ImageHandler.hosts == [f"localhost:{port}"]


@pytest.mark.parametrize("path", ["/to-metadata", "/to-other-loopback"])
def test_a_redirect_to_a_forbidden_address_is_refused(server, path):
    with pytest.raises(UrlRefused):
        fetch(server + path, policy=loopback_only)


def test_redirect_loops_stop_after_five(server):
    with pytest.raises(UrlFetchFailed, match="more than 5"):
        fetch(server + "/loop", policy=loopback_only)


def test_a_slow_server_times_out(server):
    started = time.monotonic()
    with pytest.raises(UrlFetchFailed, match="too long"):
        fetch(server + "/slow", policy=loopback_only)
    assert time.monotonic() - started < 1.5


def test_a_body_over_the_limit_is_abandoned_early(server):
    with pytest.raises(UrlTooLarge):
        fetch(server + "/declared-huge", policy=loopback_only)
    ImageHandler.sent = 0
    with pytest.raises(UrlTooLarge):
        fetch(server + "/huge", policy=loopback_only)
    time.sleep(0.2)
    assert ImageHandler.sent < HUGE / 2


def test_the_api_fetches_image_url_and_refuses_internal_ones(db_url, session, clock, pool, server):
    owner = verified_user(session, clock)
    _, key = api_keys.create_key(session, user=owner, label="url", now=clock())
    give(session, owner, 100)
    strict = api_client(pool).post(ENDPOINT, data={"image_url": server + "/horse.jpg"}, headers={"X-Api-Key": key})
    assert strict.status_code == 400 and strict.json()["errors"][0]["code"] == "url_refused"
    for url in ("http://10.0.0.1/a.jpg", "http://169.254.169.254/", "http://[::1]/"):
        assert api_client(pool).post(ENDPOINT, json={"image_url": url}, headers={"X-Api-Key": key}).status_code == 400
    lenient = api_client(pool, url_policy=loopback_only)
    assert lenient.post(ENDPOINT, data={"image_url": server + "/horse.jpg"}, headers={"X-Api-Key": key}).status_code == 200
    redirected = lenient.post(ENDPOINT, data={"image_url": server + "/to-metadata"}, headers={"X-Api-Key": key})
    assert redirected.json()["errors"][0]["code"] == "url_refused"
    assert balance(session, owner) == 75



def self_signed(tmp_path, name: str = "localhost") -> tuple[str, str]:
    """A certificate for `name` and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1)).add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def test_https_is_verified_against_the_host_name_while_pinned(tmp_path):
    cert, key = self_signed(tmp_path)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), ImageHandler)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    httpd.socket = server_context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    trusting = ssl.create_default_context(cafile=cert)
    try:
        port = httpd.server_port
        assert fetch(f"https://localhost:{port}/horse.jpg", policy=loopback_only, tls_context=trusting) == HORSE
        with pytest.raises(UrlFetchFailed):  # the certificate names localhost, not 127.0.0.1
            fetch(f"https://127.0.0.1:{port}/horse.jpg", policy=loopback_only, tls_context=trusting)
        with pytest.raises(UrlFetchFailed):  # not trusted by the default context
            fetch(f"https://localhost:{port}/horse.jpg", policy=loopback_only)
    finally:
        httpd.shutdown()
        httpd.server_close()
