"""Getting an image in on `/` without a file: the "image URL" field goes through the API's SSRF-safe
fetcher and limits; the sample photos are real, readable images with their attribution."""

from __future__ import annotations

import pytest
from PIL import Image

from clearbg_app.samples import SAMPLES, SAMPLES_DIR, sample_named
from clearbg_app.services.url_fetch import UrlFetchFailed, UrlRefused
from clearbg_app.state.remove import download, for_people
from tests.loopback import HORSE, loopback_only


def test_the_url_field_downloads_through_the_checked_fetcher(server, data_dir):
    assert download(f"{server}/horse.jpg", policy=loopback_only) == HORSE
    assert download(f"{server}/hop", policy=loopback_only) == HORSE  # a checked redirect


@pytest.mark.parametrize(
    ("path", "error", "message"),
    [("/to-metadata", UrlRefused, "The image URL points to an address we do not fetch from"),
     ("/missing", UrlFetchFailed, "The image URL answered HTTP 404."),
     ("/loop", UrlFetchFailed, "The image URL redirected more than 5 times.")],
)  # fmt: skip
def test_the_url_field_refuses_what_the_api_refuses(server, data_dir, path, error, message):
    with pytest.raises(error) as raised:
        download(f"{server}{path}", policy=loopback_only)
    assert for_people(str(raised.value)).startswith(message)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x.jpg", "http://169.254.169.254/latest/meta-data/", "http://[::1]/x.jpg", "file:///etc/passwd"])
def test_the_url_field_never_reaches_inside_the_network(url, data_dir):
    with pytest.raises(UrlRefused):
        download(url)  # the default policy: public addresses only


def test_the_url_field_keeps_the_upload_limit(server, data_dir, monkeypatch):
    from clearbg_app.services.url_fetch import UrlTooLarge
    from clearbg_app.settings import get_settings

    monkeypatch.setenv("CLEARBG_MAX_UPLOAD_BYTES", "1000000")
    get_settings.cache_clear()
    with pytest.raises(UrlTooLarge) as raised:
        download(f"{server}/declared-huge", policy=loopback_only)
    assert for_people(str(raised.value)) == "The image at the image URL is over the 1 MB limit."


def test_samples_are_readable_photos_with_attribution():
    assert 1 <= len(SAMPLES) <= 4
    for sample in SAMPLES:
        with Image.open(SAMPLES_DIR / sample.file) as photo:
            assert photo.format == "JPEG" and photo.width * photo.height > 100_000
        assert "CC BY 2.0" in sample.attribution and sample.photo_page.startswith("https://flic.kr/p/")
    licences = (SAMPLES_DIR / "LICENSES.md").read_text()
    assert all(sample.file in licences and sample.flickr_id in licences for sample in SAMPLES)
    assert sample_named("cat.jpg") is SAMPLES[0] and sample_named("../../etc/passwd") is None
