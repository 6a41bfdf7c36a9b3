"""The blob store interface: opaque, unguessable keys; whole-object writes."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Protocol

_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]{43}(\.[a-z0-9]{1,5})?$")


class BlobNotFound(KeyError):
    """No blob is stored under that key."""


class StorageUnavailable(RuntimeError):
    """The blob store could not be reached or refused the request (nothing was stored or deleted)."""


def new_blob_key(suffix: str = "") -> str:
    """A fresh key: 256 random bits, URL-safe, with an optional extension like `.png`."""
    return secrets.token_urlsafe(32) + suffix


def check_blob_key(key: str) -> str:
    """`key` if it has the shape `new_blob_key` makes; refuses anything else (paths included)."""
    if not _KEY_PATTERN.fullmatch(key):
        raise BlobNotFound(key)
    return key


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` as (`bucket`, `some/prefix/`); the prefix may be empty."""
    if not url.startswith("s3://"):
        raise ValueError(f"CLEARBG_STORAGE_URL must be empty (local blobs) or s3://bucket/prefix, not {url!r}.")
    bucket, _, prefix = url[len("s3://"):].partition("/")
    if not 3 <= len(bucket) <= 63:
        raise ValueError(f"CLEARBG_STORAGE_URL needs a bucket name (3 to 63 characters), like s3://clearbg-blobs/prod, not {url!r}.")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


class BlobStore(Protocol):
    def put(self, data: bytes, *, suffix: str = "") -> str:
        """Store `data` under a new key, atomically, and return the key."""

    def get(self, key: str) -> bytes:
        """The blob's bytes; raises `BlobNotFound`."""

    def delete(self, key: str) -> bool:
        """Remove the blob; False when it was already gone."""

    def exists(self, key: str) -> bool:
        """Whether a complete blob is stored under `key`."""

    def keys(self) -> Iterator[str]:
        """Every stored key (for reconciling orphans)."""

    def check(self) -> None:
        """Raise `StorageUnavailable` unless blobs can be stored now (for `/readyz`)."""


@contextmanager
def deleted_on_failure(store: BlobStore, keys: Iterable[str], rollback: Callable[[], None]) -> Iterator[None]:
    """For blobs written before the rows that name them are committed: when the block raises, roll
    the transaction back and delete the blobs (`keys` is read then, so a list may grow inside the
    block), leaving no orphan blob behind a failed commit."""
    try:
        yield
    except BaseException:
        rollback()
        for key in keys:
            store.delete(key)
        raise
