"""Private blob storage. `get_blob_store()` returns the configured backend."""

from __future__ import annotations

from functools import lru_cache

from clearbg_app.settings import get_settings
from clearbg_app.storage.base import BlobNotFound, BlobStore, StorageUnavailable, deleted_on_failure, new_blob_key
from clearbg_app.storage.local import LocalBlobStore


@lru_cache
def get_blob_store() -> BlobStore:
    """The process-wide blob store: a local directory under the data dir by default, or the S3 bucket
    of `CLEARBG_STORAGE_URL=s3://bucket/prefix`."""
    settings = get_settings()
    if not settings.storage_url:
        return LocalBlobStore(settings.blob_dir)
    from clearbg_app.storage.s3 import S3BlobStore  # boto3 only loads when S3 is configured

    return S3BlobStore(
        settings.storage_url,
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=settings.s3_secret_access_key.get_secret_value(),
        connect_timeout=settings.s3_connect_timeout_seconds,
        read_timeout=settings.s3_read_timeout_seconds,
        max_attempts=settings.s3_max_attempts,
    )


__all__ = [
    "BlobNotFound", "BlobStore", "LocalBlobStore", "StorageUnavailable", "deleted_on_failure", "get_blob_store", "new_blob_key",
]
