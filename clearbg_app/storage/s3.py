"""Blobs as objects in an S3-compatible bucket (AWS S3, MinIO, Ceph, R2...), through boto3."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from clearbg_app.storage.base import BlobNotFound, StorageUnavailable, check_blob_key, new_blob_key, parse_s3_url

_MISSING = {"404", "NoSuchKey", "NotFound"}


class S3BlobStore:
    """Objects named `<prefix><key>`. A PUT is atomic in S3 (an object appears whole or not at all), and
    its Content-MD5 makes the server refuse a body damaged on the way. Errors and timeouts of the
    service become `StorageUnavailable`; a missing object is `BlobNotFound`."""

    def __init__(
        self,
        url: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_attempts: int = 3,
    ) -> None:
        self.bucket, self.prefix = parse_s3_url(url)
        config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"total_max_attempts": max_attempts, "mode": "standard"},
            s3={"addressing_style": "path"} if endpoint_url else None,
        )
        self.client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region or None,
            aws_access_key_id=access_key_id or None,
            aws_secret_access_key=secret_access_key or None,
            config=config,
        )

    def _name(self, key: str) -> str:
        return self.prefix + check_blob_key(key)

    def _unavailable(self, action: str, error: Exception) -> StorageUnavailable:
        if isinstance(error, ClientError):
            code = error.response.get("Error", {}).get("Code", "?")
            detail = f"S3 answered {code}"
        else:
            detail = type(error).__name__
        return StorageUnavailable(f"Blob storage (bucket {self.bucket!r}) failed to {action}: {detail}.")

    def put(self, data: bytes, *, suffix: str = "") -> str:
        key = new_blob_key(suffix)
        digest = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._name(key), Body=data, ContentMD5=digest)
        except (BotoCoreError, ClientError) as error:
            raise self._unavailable("store a blob", error) from error
        return key

    def get(self, key: str) -> bytes:
        name = self._name(key)
        try:
            return self.client.get_object(Bucket=self.bucket, Key=name)["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _MISSING:
                raise BlobNotFound(key) from None
            raise self._unavailable("read a blob", error) from error
        except BotoCoreError as error:
            raise self._unavailable("read a blob", error) from error

    def exists(self, key: str) -> bool:
        try:
            name = self._name(key)
        except BlobNotFound:
            return False
        try:
            self.client.head_object(Bucket=self.bucket, Key=name)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _MISSING:
                return False
            raise self._unavailable("look up a blob", error) from error
        except BotoCoreError as error:
            raise self._unavailable("look up a blob", error) from error
        return True

    def delete(self, key: str) -> bool:
        if not self.exists(key):  # S3's DELETE does not say whether the object was there
            return False
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._name(key))
        except (BotoCoreError, ClientError) as error:
            raise self._unavailable("delete a blob", error) from error
        return True

    def keys(self) -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
        try:
            for page in pages:
                for entry in page.get("Contents", ()):
                    name = entry["Key"][len(self.prefix):]
                    try:
                        yield check_blob_key(name)
                    except BlobNotFound:  # something else shares the prefix: not ours
                        continue
        except (BotoCoreError, ClientError) as error:
            raise self._unavailable("list blobs", error) from error

    def check(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as error:
            raise self._unavailable("answer", error) from error
