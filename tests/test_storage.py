"""The local blob store: unguessable keys, atomic writes, no path tricks."""

from __future__ import annotations

import os

import pytest

from clearbg_app.storage import BlobNotFound, LocalBlobStore


@pytest.fixture
def blobs(tmp_path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


def test_round_trip_and_delete(blobs):
    key = blobs.put(b"pixels", suffix=".png")
    assert key.endswith(".png") and blobs.exists(key)
    assert blobs.get(key) == b"pixels"
    assert list(blobs.keys()) == [key]
    assert blobs.delete(key) is True
    assert blobs.delete(key) is False
    with pytest.raises(BlobNotFound):
        blobs.get(key)


def test_keys_are_unguessable_and_unique(blobs):
    keys = {blobs.put(b"x") for _ in range(200)}
    assert len(keys) == 200
    assert all(len(key) == 43 for key in keys)  # 256 random bits, base64url


@pytest.mark.parametrize("key", ["../../etc/passwd", "/etc/passwd", "short", "a" * 43 + "/x", "", "a" * 43 + ".PNG!"])
def test_malformed_keys_are_refused(blobs, key):
    with pytest.raises(BlobNotFound):
        blobs.get(key)
    assert blobs.exists(key) is False
    assert blobs.delete(key) is False


def test_a_crash_during_write_leaves_no_blob_and_no_temp_file(blobs, monkeypatch):
    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        blobs.put(b"half a result")
    assert list(blobs.keys()) == []
    assert [path for path in blobs.root.rglob("*") if path.is_file()] == []


def test_temp_files_never_count_as_blobs(blobs):
    key = blobs.put(b"done")
    (blobs.root / key[:2] / ".tmp-abandoned").write_bytes(b"half")
    assert list(blobs.keys()) == [key]
