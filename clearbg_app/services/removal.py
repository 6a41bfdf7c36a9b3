"""Background removal as a paid service, the one path for the web page, the API and batches: size and
price, the process-wide inference pool, the charge and the usage record committed together."""

from __future__ import annotations

import asyncio
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Literal

from PIL import Image
from sqlmodel import Session, col, select

from clearbg_app.clock import utcnow
from clearbg_app.db import session_scope
from clearbg_app.inference import (
    CutoutOptions,
    InferenceConfig,
    InferencePool,
    Job,
    Rendered,
    RenderOptions,
    decode_image,
    fit_within,
    probe_image,
)
from clearbg_app.inference.pool import Lane
from clearbg_app.inference.registry import DEFAULT_MODEL
from clearbg_app.inference.render import Margin, Shadow
from clearbg_app.models import ApiKey, ApiUsage, CreditLot, EntryKind, LedgerEntry
from clearbg_app.models.stats import IMAGES_API
from clearbg_app.services import credits, stats
from clearbg_app.services.errors import ServiceError
from clearbg_app.settings import get_settings
from clearbg_app.storage import BlobStore

# Output sizes: the most pixels a result may have (None: the input's own size).
SIZES = ("preview", "medium", "hd", "full")
SIZE_MEGAPIXELS = {"medium": 1.5, "hd": 4.0}
Colour = tuple[int, int, int]
Length = tuple[float, str]  # a number and its unit, "px" or "%"
Channel = Literal["api", "web", "web_batch"]  # where a removal was asked for


@lru_cache
def default_pool() -> InferencePool:
    """The process-wide inference pool: local (it loads the model), or with CLEARBG_INFERENCE=queue the
    worker processes' behind the task queue (this process holds no model)."""
    settings = get_settings()
    if settings.inference == "queue":
        from clearbg_app.inference.remote import QueuePool  # noqa: PLC0415 - only web processes of a queue set-up
        from clearbg_app.tasks import broker  # noqa: PLC0415

        return QueuePool(InferenceConfig.from_settings(settings), broker.redis_client(), broker.broker.enqueue,
                         timeout=settings.queue_result_timeout_seconds)  # fmt: skip
    return InferencePool(InferenceConfig.from_settings(settings))


@dataclass(frozen=True)
class RemovalOptions:
    """What to make of one image; the defaults give a transparent PNG preview."""

    size: str = "preview"  # preview, medium, hd, full or auto (full when the balance covers it)
    format: str = "auto"  # auto (png if transparent, else jpg), png, jpg, webp, zip
    channels: str = "rgba"  # rgba, or alpha: the mask alone (a greyscale PNG)
    subject_type: str = "auto"  # accepted for compatibility; the model finds any foreground
    background: Colour | None = None
    background_opacity: int = 255
    background_image: bytes | None = None
    background_blur: float = 0.0  # > 0: the original photo blurred behind the subject (`RenderOptions`)
    shadow: Shadow | None = None
    crop: bool = False
    crop_margin: tuple[Length, Length, Length, Length] | None = None  # top, right, bottom, left
    scale: float | None = None  # the subject's share of the image; None keeps it as it is
    position: tuple[float, float] | None = None  # the subject's centre as fractions; None keeps it
    roi: tuple[Length, Length, Length, Length] | None = None  # x1 y1 x2 y2 in the input image
    model: str | None = None  # a registry name (ClearBG's extension); None: the default model

    @property
    def transparent(self) -> bool:
        opaque_backdrop = self.background_image is not None or self.background_blur > 0 or (self.background is not None and self.background_opacity == 255)
        return not opaque_backdrop


@dataclass(frozen=True)
class Removal:
    """A finished, charged result."""

    rendered: Rendered
    size_name: str
    units: int
    foreground: tuple[int, int, int, int]  # left, top, width, height in the result
    subject_type: str
    reference: str
    result_key: str | None = None  # where the result was stored, when a store was given


@dataclass(frozen=True)
class Sized:
    """An image checked from its header: its upright size, the output size and what it costs."""

    source: tuple[int, int]
    output: tuple[int, int]
    size_name: str
    units: int
    max_pixels: int | None = None

    @property
    def megapixel_images(self) -> int:
        """The rate-limit weight: the output's megapixels, rounded up, at least 1 (as remove.bg counts)."""
        return max(1, math.ceil(self.output[0] * self.output[1] / 1e6))


def size_for(session: Session, *, user_id: uuid.UUID, data: bytes, size: str, channel: Channel = "api") -> Sized:
    """Output size and price from the header (checked first); `auto` is full size when the balance
    covers it, else a preview."""
    settings = get_settings()
    source = probe_image(data, max_pixels=settings.max_pixels, max_bytes=settings.max_upload_bytes).upright_size

    def priced(name: str) -> Sized:
        limit = settings.preview_pixels if name == "preview" else None
        if name in SIZE_MEGAPIXELS:
            limit = int(SIZE_MEGAPIXELS[name] * 1e6)
        output = fit_within(source, limit)
        units = credits.price_for(channel="web" if channel == "web" else "api", megapixels=output[0] * output[1] / 1e6)
        return Sized(source, output, name, units, limit)

    if size != "auto":
        return priced(size)
    full = priced("full")
    return full if credits.balance(session, user_id=user_id) >= full.units else priced("preview")


class InvalidOption(ServiceError):
    """An option that does not fit the image it came with (a roi outside it)."""

    status, code, title = 400, "invalid_parameter", "Invalid parameter"


def _to_pixels(length: Length, extent: int) -> float:
    value, unit = length
    return value * extent / 100 if unit == "%" else value


def roi_box(roi: tuple[Length, Length, Length, Length], sized: Sized) -> tuple[int, int, int, int]:
    """The roi in the output's pixels, clipped to the image and rounded outwards, so never empty;
    `InvalidOption` when it lies outside the image (checked before any work starts)."""
    width, height = sized.source
    x1, y1, x2, y2 = (_to_pixels(length, extent) for length, extent in zip(roi, (width, height) * 2, strict=True))
    x1, y1, x2, y2 = max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height))
    if x2 <= x1 or y2 <= y1:
        raise InvalidOption(f"roi does not overlap the {width}x{height} image; give x1 y1 x2 y2 inside it (x1 < x2, y1 < y2).")
    x_factor, y_factor = sized.output[0] / width, sized.output[1] / height
    return math.floor(x1 * x_factor), math.floor(y1 * y_factor), math.ceil(x2 * x_factor), math.ceil(y2 * y_factor)


def decoded_background(options: RemovalOptions) -> Image.Image | None:
    """The background image's pixels; `ImageDecodeError` (or `ImageTooLarge`) for a bad one."""
    if options.background_image is None:
        return None
    return decode_image(options.background_image, max_pixels=get_settings().max_pixels).rgb


def _margin(length: Length) -> Margin:
    value, unit = length
    return (value / 100, 0) if unit == "%" else (0.0, round(value))


def _job(data: bytes, options: RemovalOptions, sized: Sized) -> Job:
    settings = get_settings()
    out_w, out_h = sized.output
    roi = roi_box(options.roi, sized) if options.roi else None
    margins: tuple[Margin, Margin, Margin, Margin] | None = None
    if options.crop_margin:
        top, right, bottom, left = options.crop_margin
        margins = (_margin(top), _margin(right), _margin(bottom), _margin(left))
    placed = not options.crop and (options.scale is not None or options.position is not None)
    background_image = decoded_background(options)
    image_format = options.format
    if options.channels == "alpha":
        image_format = "mask"
    elif image_format == "auto":
        image_format = "png" if options.transparent else "jpg"
    render = RenderOptions(
        format={"jpg": "jpeg"}.get(image_format, image_format),
        background=options.background,
        background_opacity=options.background_opacity,
        background_image=background_image,
        background_blur=options.background_blur,
        shadow=options.shadow,
        crop=options.crop or placed,
        side_margins=margins if options.crop else None,
        canvas=(out_w, out_h) if placed else None,
        subject_scale=options.scale,
        position=options.position or (0.5, 0.5),
    )
    return Job(
        data=data,
        max_pixels=settings.max_pixels,
        max_bytes=settings.max_upload_bytes,
        output_max_pixels=sized.max_pixels,
        model=options.model,
        cutout=CutoutOptions(roi=roi),
        render=render,
    )


@dataclass(frozen=True)
class Payer:
    """Who pays for a removal, through which channel, and in which lane of the pool it waits."""

    user_id: uuid.UUID
    channel: Channel = "api"  # prices, the ledger's wording and the usage row (the web page writes none)
    api_key_id: uuid.UUID | None = None
    reference: str | None = None  # what the charge pays for; never charged twice (None: a fresh one)
    lane: Lane = "api"  # "web": a person waits on the page; "batch": only when a pool worker is idle


class Interrupted(ServiceError):
    """The worker stopped while a batch job waited for an idle pool worker; nothing was charged."""


# Called in the charge's transaction with the stored result's key (None without a store), the result
# and the units charged: the caller adds its own rows (the image's or the batch item's) to the session.
OnResult = Callable[[str | None, Rendered, int], None]


def remove_paid(
    session: Session,
    *,
    pool: InferencePool,
    payer: Payer,
    data: bytes,
    options: RemovalOptions,
    sized: Sized | None = None,
    store: BlobStore | None = None,
    on_result: OnResult | None = None,
    stop: threading.Event | None = None,
    now: datetime | None = None,
) -> Removal:
    """The one paid removal, for every channel: price (`sized`, from the header), the balance checked
    before any work, the pool's work, then the charge, the usage row, the stored result (with `store`)
    and the caller's own rows (`on_result`) committed together, or none of them. Raises
    `ImageDecodeError`/`ImageTooLarge`, `InsufficientCredits`, `ServerBusy`, `Interrupted`; none charges."""
    started = time.perf_counter()
    sized = sized or size_for(session, user_id=payer.user_id, data=data, size=options.size, channel=payer.channel)
    job = _plan(session, payer=payer, data=data, options=options, sized=sized)
    rendered = _run(pool, job, payer.lane, stop)
    return _settle(session, payer=payer, options=options, sized=sized, rendered=rendered, started=started,
                   store=store, on_result=on_result, now=now)  # fmt: skip


async def remove_paid_async(*, pool: InferencePool, payer: Payer, data: bytes, options: RemovalOptions, sized: Sized) -> Removal:
    """`remove_paid` for routes: the database work in threads, the pool awaited, never blocking the loop."""
    started = time.perf_counter()

    def planned() -> Job:
        with session_scope() as session:
            return _plan(session, payer=payer, data=data, options=options, sized=sized)

    def settled(rendered: Rendered) -> Removal:
        with session_scope() as session:
            return _settle(session, payer=payer, options=options, sized=sized, rendered=rendered, started=started)

    job = await asyncio.to_thread(planned)
    rendered = (await pool.process_async(job, lane="web" if payer.lane == "web" else "api")).rendered
    return await asyncio.to_thread(settled, rendered)


def _plan(session: Session, *, payer: Payer, data: bytes, options: RemovalOptions, sized: Sized) -> Job:
    """The pool job for `data`, once the balance covers its price (`InsufficientCredits` before any work)
    or the reference was paid already (a redelivered batch item, the same page image asked again)."""
    paid = payer.reference is not None and credits.charged(session, user_id=payer.user_id, reference=payer.reference)
    if not paid and (have := credits.balance(session, user_id=payer.user_id)) < sized.units:
        raise credits.InsufficientCredits(needed=sized.units, balance=have)
    session.rollback()  # end the read transaction: no lock is held while the pool works
    return _job(data, options, sized)


def _run(pool: InferencePool, job: Job, lane: Lane, stop: threading.Event | None) -> Rendered:
    if lane != "batch":
        return pool.process(job, lane=lane).rendered
    while (future := pool.submit_if_idle(job)) is None:  # low priority: wait for an idle worker
        if stop is not None and stop.wait(0.05):
            raise Interrupted("The batch worker stopped; the item waits in the queue.")
    return future.result().rendered


def _reason(payer: Payer, sized: Sized, size: tuple[int, int]) -> str:
    """The ledger's wording of a charge."""
    if payer.channel == "web":
        return f"Full resolution {size[0]}x{size[1]}"
    return f"{'Web batch' if payer.channel == 'web_batch' else 'API'} {sized.size_name} {size[0]}x{size[1]}"


def _settle(
    session: Session,
    *,
    payer: Payer,
    options: RemovalOptions,
    sized: Sized,
    rendered: Rendered,
    started: float,
    store: BlobStore | None = None,
    on_result: OnResult | None = None,
    now: datetime | None = None,
) -> Removal:
    """Store the result, charge for it and record its usage in one transaction (a failure deletes
    the stored result again)."""
    reference = payer.reference or f"api:{uuid.uuid4()}"
    key = store.put(rendered.content, suffix="." + rendered.extension) if store is not None else None
    try:
        credits.charge(session, user_id=payer.user_id, units=sized.units, reason=_reason(payer, sized, rendered.size),
                       reference=reference, now=now)  # fmt: skip
        if payer.channel != "web":
            session.add(_usage(payer.user_id, payer.api_key_id, sized, rendered.size, 200, None, started, now, units=sized.units,
                               model=options.model or DEFAULT_MODEL, channel=payer.channel, reference=reference))  # fmt: skip
            stats.count(session, name=IMAGES_API, at=now or utcnow())
        if on_result is not None:
            on_result(key, rendered, sized.units)
        session.commit()
    except BaseException:
        session.rollback()
        if store is not None and key is not None:
            store.delete(key)
        raise
    box = rendered.foreground or (0, 0, 0, 0)
    detected = options.subject_type if options.subject_type != "auto" else "other"
    return Removal(rendered, sized.size_name, sized.units, (box[0], box[1], box[2] - box[0], box[3] - box[1]), detected, reference, key)


def _usage(user_id, api_key_id, sized, size, status, code, started, now, *, units=0, model=None, channel="api", reference=None) -> ApiUsage:
    return ApiUsage(
        model=model or "",
        channel=channel,
        reference=reference,
        at=now or utcnow(),
        user_id=user_id,
        api_key_id=api_key_id,
        size=sized.size_name if sized else "",
        width=size[0] if size else None,
        height=size[1] if size else None,
        credits_units=units,
        latency_ms=round((time.perf_counter() - started) * 1000),
        status=status,
        error_code=code,
    )


def record_failure(
    session: Session, *, user_id: uuid.UUID, api_key_id: uuid.UUID | None, sized: Sized | None, status: int,
    code: str, started: float, now: datetime | None = None, channel: str = "api", reference: str | None = None,
) -> None:  # fmt: skip
    """A usage row for a call that failed after its key was known (it costs nothing)."""
    session.rollback()
    session.add(_usage(user_id, api_key_id, sized, None, status, code, started, now, channel=channel, reference=reference))
    session.commit()


def recent_usage(session: Session, *, user_id: uuid.UUID, limit: int = 20) -> list[tuple[ApiUsage, str]]:
    """The user's latest API calls and batch items, newest first, each with where it came from: the
    key's prefix ("cbg_live_ab12…"), "deleted key", or "Web batch: horse.jpg"."""
    query = (
        select(ApiUsage, ApiKey.prefix)
        .outerjoin(ApiKey, col(ApiKey.id) == col(ApiUsage.api_key_id))
        .where(ApiUsage.user_id == user_id)
        .order_by(col(ApiUsage.at).desc())
        .limit(limit)
    )
    rows = session.exec(query).all()
    names = credits.reference_labels(session, [usage.reference for usage, _ in rows if usage.reference])
    return [(usage, _source(usage, prefix, names)) for usage, prefix in rows]


def _source(usage: ApiUsage, prefix: str | None, names: dict[str, str]) -> str:
    if usage.channel == "web_batch":
        return names.get(usage.reference or "", "Web batch")
    return (prefix + "…") if prefix else "deleted key"


@dataclass(frozen=True)
class CreditSummary:
    """The balance split as remove.bg's account endpoint reports it, in units."""

    total: int
    subscription: int
    free: int

    @property
    def payg(self) -> int:
        return self.total - self.subscription - self.free

    @property
    def free_calls(self) -> int:
        """Previews the free monthly allowance still pays for."""
        return self.free // credits.PREVIEW_API_UNITS


def credit_summary(session: Session, *, user_id: uuid.UUID) -> CreditSummary:
    """Total balance; the unspent credits of subscription lots and of the free monthly allowance."""
    lots = session.exec(
        select(CreditLot.remaining_units, CreditLot.subscription_id, LedgerEntry.kind)
        .join(LedgerEntry, col(LedgerEntry.id) == col(CreditLot.entry_id))
        .where(CreditLot.user_id == user_id, CreditLot.remaining_units > 0)
    ).all()
    subscription = sum(units for units, subscription_id, _ in lots if subscription_id)
    free = sum(units for units, subscription_id, kind in lots if not subscription_id and kind == EntryKind.MONTHLY_ALLOWANCE)
    return CreditSummary(credits.balance(session, user_id=user_id), subscription, free)

