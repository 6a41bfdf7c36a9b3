"""The blob stores, local directory and S3 (moto on loopback): unguessable keys, atomic writes, no path
tricks, and S3's failures (unreachable, slow, erroring, no bucket) as clear errors that lose nothing."""

from __future__ import annotations

import io
import os
import socket
import threading
import time
import uuid

import pytest
from starlette.responses import Response

from clearbg_app.settings import Settings
from clearbg_app.storage import BlobNotFound, LocalBlobStore, StorageUnavailable, get_blob_store
from clearbg_app.storage.s3 import S3BlobStore
from tests.loopback import serve_asgi
from tests.s3_server import ACCESS_KEY, REGION, SECRET_KEY

both = pytest.mark.both_blob_backends


def s3_store(endpoint: str, url: str, **options) -> S3BlobStore:
    return S3BlobStore(url, endpoint_url=endpoint, region=REGION, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY, **options)


@pytest.fixture
def blobs(blob_backend, request, tmp_path):
    if blob_backend == "local":
        return LocalBlobStore(tmp_path / "blobs")
    bucket = request.getfixturevalue("s3_bucket")
    return s3_store(request.getfixturevalue("s3_endpoint"), f"s3://{bucket}/unit-{uuid.uuid4().hex}")


@both
def test_round_trip_and_delete(blobs):
    key = blobs.put(b"pixels", suffix=".png")
    assert key.endswith(".png") and blobs.exists(key)
    assert blobs.get(key) == b"pixels"
    assert list(blobs.keys()) == [key]
    assert blobs.delete(key) is True
    assert blobs.delete(key) is False
    assert not blobs.exists(key)
    with pytest.raises(BlobNotFound):
        blobs.get(key)
    blobs.check()


@both
def test_keys_are_unguessable_and_unique(blobs):
    keys = {blobs.put(b"x") for _ in range(100)}
    assert len(keys) == 100
    assert all(len(key) == 43 for key in keys)  # 256 random bits, base64url
    assert set(blobs.keys()) == keys


@both
@pytest.mark.parametrize("key", ["../../etc/passwd", "/etc/passwd", "short", "a" * 43 + "/x", "", "a" * 43 + ".PNG!"])
def test_malformed_keys_are_refused(blobs, key):
    with pytest.raises(BlobNotFound):
        blobs.get(key)
    assert blobs.exists(key) is False
    assert blobs.delete(key) is False


@both
def test_the_configured_store_is_the_backend_under_test(store, blob_backend):
    assert isinstance(store, {"local": LocalBlobStore, "s3": S3BlobStore}[blob_backend])
    key = store.put(b"through the app's store")
    assert get_blob_store().get(key) == b"through the app's store"


# Local directory --------------------------------------------------------------------------------------


@pytest.fixture
def local_blobs(tmp_path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


def test_a_crash_during_write_leaves_no_blob_and_no_temp_file(local_blobs, monkeypatch):
    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        local_blobs.put(b"half a result")
    assert list(local_blobs.keys()) == []
    assert [path for path in local_blobs.root.rglob("*") if path.is_file()] == []


def test_temp_files_never_count_as_blobs(local_blobs):
    key = local_blobs.put(b"done")
    (local_blobs.root / key[:2] / ".tmp-abandoned").write_bytes(b"half")
    assert list(local_blobs.keys()) == [key]


def test_an_unwritable_directory_is_not_ready(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(StorageUnavailable, match="cannot be created"):
        LocalBlobStore(tmp_path / "file" / "blobs").check()


# S3 -----------------------------------------------------------------------------------------------------

@pytest.fixture
def s3_blobs(s3_endpoint, s3_bucket) -> S3BlobStore:
    return s3_store(s3_endpoint, f"s3://{s3_bucket}/unit-{uuid.uuid4().hex}")


class DiesHalfway(io.RawIOBase):
    """A request body whose sender dies after half of it went out."""

    def __init__(self, size: int) -> None:
        self.size, self.sent = size, 0

    def readable(self) -> bool:
        return True

    def read(self, limit: int = -1) -> bytes:
        if self.sent > self.size // 2:
            raise ConnectionResetError("the uploading process died")
        chunk = b"x" * min(65536, self.size - self.sent)
        self.sent += len(chunk)
        return chunk

    def seek(self, *args) -> int:
        return 0

    def tell(self) -> int:
        return self.sent


def test_an_upload_that_dies_halfway_leaves_no_object(s3_blobs):
    blobs = s3_blobs
    blobs.client.meta.events.register("before-send.s3.PutObject", lambda request, **_: setattr(request, "body", DiesHalfway(2_000_000)))
    with pytest.raises(StorageUnavailable, match="failed to store a blob"):
        blobs.put(b"x" * 2_000_000)
    assert list(blobs.keys()) == []


def test_prefixes_keep_stores_apart_and_foreign_objects_are_ignored(s3_blobs, s3_endpoint, s3_bucket):
    blobs = s3_blobs
    neighbour = s3_store(s3_endpoint, f"s3://{s3_bucket}/other-{uuid.uuid4().hex}")
    mine, theirs = blobs.put(b"mine"), neighbour.put(b"theirs")
    blobs.client.put_object(Bucket=s3_bucket, Key=blobs.prefix + "notes/readme.txt", Body=b"an operator's file")
    assert list(blobs.keys()) == [mine] and list(neighbour.keys()) == [theirs]
    assert not blobs.exists(theirs)
    assert blobs.client.get_object(Bucket=s3_bucket, Key=blobs.prefix + mine)["Body"].read() == b"mine"


def test_a_missing_bucket_is_a_clear_error(s3_endpoint):
    missing = s3_store(s3_endpoint, "s3://no-such-bucket-here/x")
    with pytest.raises(StorageUnavailable, match=r"bucket 'no-such-bucket-here'.*NoSuchBucket"):
        missing.put(b"data")
    with pytest.raises(StorageUnavailable, match="no-such-bucket-here"):
        missing.check()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_service_is_a_clear_error_on_every_operation():
    down = s3_store(f"http://127.0.0.1:{closed_port()}", "s3://clearbg-blobs/p", max_attempts=2, connect_timeout=1)
    key = "a" * 43
    for operation in (lambda: down.put(b"x"), lambda: down.get(key), lambda: down.exists(key), lambda: down.delete(key),
                      lambda: list(down.keys()), down.check):  # fmt: skip
        with pytest.raises(StorageUnavailable, match="bucket 'clearbg-blobs'"):
            operation()


def test_a_service_that_never_answers_times_out_with_a_clear_error():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)  # accepts connections, never answers
    try:
        silent = s3_store(f"http://127.0.0.1:{listener.getsockname()[1]}", "s3://clearbg-blobs/p", read_timeout=0.5, max_attempts=2)
        started = time.monotonic()
        with pytest.raises(StorageUnavailable, match="ReadTimeout"):
            silent.get("a" * 43)
        assert time.monotonic() - started < 5  # two attempts of 0.5 s, and back-off
    finally:
        listener.close()


def test_a_service_answering_errors_is_retried_then_a_clear_error():
    calls = []

    async def failing_s3(scope, receive, send):
        if scope["type"] == "http":
            calls.append(scope["method"])
            while (await receive()).get("more_body"):  # read the body, as a server does
                pass
            body = b"<?xml version='1.0'?><Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>"
            await Response(body, status_code=500, media_type="application/xml")(scope, receive, send)

    with serve_asgi(failing_s3, "failing S3") as endpoint:
        failing = s3_store(endpoint, "s3://clearbg-blobs/p", max_attempts=3)
        with pytest.raises(StorageUnavailable, match="S3 answered InternalError"):
            failing.put(b"x")
    assert calls == ["PUT"] * 3


def test_concurrent_puts_from_threads_share_one_client(s3_blobs):
    blobs = s3_blobs
    keys: list[str] = []
    threads = [threading.Thread(target=lambda: keys.append(blobs.put(os.urandom(1000)))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(blobs.keys()) == sorted(keys) and len(set(keys)) == 8


@pytest.mark.parametrize(
    "url, problem",
    [("s3://ab", "bucket name"), ("gs://bucket/x", "s3://bucket/prefix"), ("/var/blobs", "s3://bucket/prefix"), ("s3:///prefix", "bucket name")],
)
def test_a_malformed_storage_url_stops_start_up(url, problem):
    assert any(problem in found and "CLEARBG_STORAGE_URL" in found for found in Settings(storage_url=url).problems())


def test_prefix_parsing():
    assert (s3_store("http://127.0.0.1:1", "s3://clearbg-blobs").prefix, s3_store("http://127.0.0.1:1", "s3://clearbg-blobs//a/b/").prefix) == ("", "a/b/")
