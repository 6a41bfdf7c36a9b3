"""Blobs as files in a local directory, written atomically (temp file + rename)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from clearbg_app.storage.base import BlobNotFound, StorageUnavailable, check_blob_key, new_blob_key


class LocalBlobStore:
    """Files under `root/<first two key chars>/<key>`; temp files never look complete."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        check_blob_key(key)
        return self.root / key[:2] / key

    def put(self, data: bytes, *, suffix: str = "") -> str:
        key = new_blob_key(suffix)
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as tmp:
                tmp.write(data)
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return key

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    def path(self, key: str) -> Path:
        """The file holding `key` (for streaming it); raises `BlobNotFound`."""
        path = self._path(key)
        if not path.is_file():
            raise BlobNotFound(key)
        return path

    def delete(self, key: str) -> bool:
        try:
            self._path(key).unlink()
        except (FileNotFoundError, BlobNotFound):
            return False
        return True

    def exists(self, key: str) -> bool:
        try:
            return self._path(key).is_file()
        except BlobNotFound:
            return False

    def keys(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for path in self.root.glob("*/*"):
            if not path.name.startswith(".tmp-"):
                yield path.name

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StorageUnavailable(f"Blob directory {self.root} cannot be created: {error.strerror}.") from None
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageUnavailable(f"Blob directory {self.root} is not writable.")
