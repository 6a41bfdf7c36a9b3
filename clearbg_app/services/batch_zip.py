"""A batch's results as one ZIP, streamed as it is written: the items done so far, under the names
`batches.zip_names` gives them."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator

from sqlmodel import Session

from clearbg_app.models import Batch, BatchStatus
from clearbg_app.services.batches import batch_items, zip_names
from clearbg_app.storage import BlobStore


def zip_stream(session: Session, *, store: BlobStore, batch: Batch) -> Iterator[bytes] | None:
    """result.zip, written entry by entry; None while nothing is done and items are still running."""
    items = batch_items(session, batch_id=batch.id)
    names = zip_names(items)
    if not names and batch.status != BatchStatus.DONE:
        return None
    entries = [(names[item.id], item.result_key) for item in items if item.result_key and item.id in names]

    def chunks() -> Iterator[bytes]:
        sink = _Sink()
        with zipfile.ZipFile(sink, "w", zipfile.ZIP_STORED) as archive:
            for name, key in entries:
                archive.writestr(name, store.get(key))
                yield sink.take()
        yield sink.take()

    return chunks()


class _Sink:
    """A write-only, unseekable file for ZipFile that hands its bytes out as they are written."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._written = 0

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        self._written += len(data)
        return len(data)

    def tell(self) -> int:
        return self._written

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass  # nothing to release: every byte was handed out by `take`

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data
