"""Private blob storage. `get_blob_store()` returns the configured backend."""

from __future__ import annotations

from functools import lru_cache

from clearbg_app.settings import get_settings
from clearbg_app.storage.base import BlobNotFound, BlobStore, deleted_on_failure, new_blob_key
from clearbg_app.storage.local import LocalBlobStore


@lru_cache
def get_blob_store() -> BlobStore:
    """The process-wide blob store (a local directory under the data dir by default)."""
    return LocalBlobStore(get_settings().blob_dir)


__all__ = ["BlobNotFound", "BlobStore", "LocalBlobStore", "deleted_on_failure", "get_blob_store", "new_blob_key"]
