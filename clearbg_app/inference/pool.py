"""The inference pool: shared model sessions, a bounded set of workers and a bounded queue.

Callers submit a `Job` (the uploaded bytes and what to make of them) in a lane and get a future of a
`JobResult`. When every worker is busy and the lane's share of the queue is full, `submit` raises
`ServerBusy` at once, carrying a retry-after hint, instead of letting requests pile up. Lanes keep
interactive use responsive under API load: "web" jobs (a person waiting on the page) may use every
slot, "api" jobs all but the queue slots reserved for the web (`web_reserved`, at most half the
queue), batch jobs only start on an idle worker; and a
worker that frees up takes the oldest job of the most urgent lane (web, then API, then batch).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import heapq
import itertools
import math
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Literal

from PIL import Image

from clearbg_app.inference import registry
from clearbg_app.inference.config import InferenceConfig
from clearbg_app.inference.decode import decode_image
from clearbg_app.inference.errors import InferenceError, ModelNotFound
from clearbg_app.inference.model import SegmentationModel, load_model
from clearbg_app.inference.pipeline import CutoutOptions, cut_out
from clearbg_app.inference.registry import DEFAULT_MODEL, FAST_MODEL
from clearbg_app.inference.render import Rendered, RenderOptions, render
from clearbg_app.metrics import observe_stages

MODES = ("default", "quality", "fast")
LANES = ("web", "api", "batch")  # most urgent first
Lane = Literal["web", "api", "batch"]


class ServerBusy(InferenceError):
    """Every worker is busy and the queue is full; try again after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"The server is busy; please try again in {retry_after} seconds.")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Job:
    """One background removal: the uploaded bytes and what to make of them."""

    data: bytes
    max_pixels: int  # refuse larger inputs (before decoding)
    max_bytes: int | None = None  # refuse larger files
    output_max_pixels: int | None = None  # scale the result down to this many pixels (previews)
    mode: str = "default"  # default, quality (several passes combined), fast (the fast model, u2netp)
    model: str | None = None  # a registry name; None: the mode's model (u2net, or u2netp for fast mode)
    cutout: CutoutOptions = field(default_factory=CutoutOptions)
    render: RenderOptions = field(default_factory=RenderOptions)


@dataclass(frozen=True)
class Timings:
    """Seconds spent in each stage of one job, for logs and metrics."""

    queue: float
    decode: float
    inference: float
    refine: float
    encode: float

    @property
    def total(self) -> float:
        return self.queue + self.decode + self.inference + self.refine + self.encode


@dataclass(frozen=True)
class JobResult:
    rendered: Rendered
    source_format: str  # e.g. "JPEG"
    source_size: tuple[int, int]
    timings: Timings


M_ARENA_MAX = -8  # glibc's mallopt parameter
MALLOC_ARENAS = 2


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas (as MALLOC_ARENA_MAX would): each worker thread otherwise gets its
    own arena, and freed image buffers stay spread over them, so RSS creeps up under sustained load
    (bench/api_load.py's soak). False where the C library is not glibc."""
    libc_name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(libc_name) if libc_name else None
        return bool(libc and libc.mallopt(M_ARENA_MAX, arenas) == 1)
    except (OSError, AttributeError):
        return False


class InferencePool:
    """Shared sessions and a bounded worker pool; see the module docstring."""

    def __init__(self, config: InferenceConfig | None = None) -> None:
        self.config = config or InferenceConfig()
        limit_malloc_arenas()  # before the worker threads exist
        self._models_lock = threading.Lock()
        self.models: dict[str, SegmentationModel] = {}  # by registry name: one shared session each
        self.model(DEFAULT_MODEL)  # a missing or broken default model stops start-up here
        self._executor = ThreadPoolExecutor(self.config.worker_count, thread_name_prefix="clearbg-inference")
        self._lock = threading.Lock()
        self._in_flight = 0
        self._waiting: list[tuple[int, int, Job, Future[JobResult], float]] = []  # a heap: lane, then arrival
        self._arrivals = itertools.count()
        self._mean_seconds = 1.0  # running mean of a job's service time, for retry-after hints
        if self.config.warm_up:
            self.warm_up()

    def warm_up(self) -> None:
        """Run each loaded model once so the first real request does not pay for ORT's lazy set-up."""
        blank = Image.new("RGB", (64, 64), (128, 128, 128))
        for model in list(self.models.values()):
            model.predict(blank)

    def available_models(self) -> list[str]:
        """Model names a job may ask for: the registry's models whose files are present (without
        the fast model when fast mode is off)."""
        names = registry.available(self.config)
        return [name for name in names if name != FAST_MODEL or self.config.enable_fast_mode]

    def model(self, name: str) -> SegmentationModel:
        """The one shared session of the registry's model `name`, loaded on first use."""
        with self._models_lock:
            if name not in self.models:
                spec = registry.get_spec(name, self.config)
                self.models[name] = load_model(
                    registry.model_path(spec, self.config),
                    threads=self.config.session_threads,
                    spec=spec,
                    setting=registry.setting_for(spec),
                    providers=self.config.providers,
                )
            return self.models[name]

    @staticmethod
    def model_name(job: Job) -> str:
        """The registry name of the model that serves `job`."""
        return job.model or (FAST_MODEL if job.mode == "fast" else DEFAULT_MODEL)

    @property
    def in_flight(self) -> int:
        """Jobs accepted and not finished (running or queued)."""
        return self._in_flight

    def retry_after(self) -> int:
        """Whole seconds until a slot is likely free: the queue ahead, served by the workers."""
        return max(1, math.ceil(self._mean_seconds * self._in_flight / self.config.worker_count))

    def _room(self, lane: Lane) -> int:
        """How many jobs may be in flight when one of `lane` is accepted: web jobs may fill every slot,
        API jobs all but the queue slots reserved for the web (at most half the queue: a small queue is
        not closed to the API)."""
        capacity = self.config.worker_count + self.config.queue_size
        return capacity if lane == "web" else capacity - min(self.config.web_reserved, self.config.queue_size // 2)

    def check_room(self, lane: Lane = "api") -> None:
        """Raise `ServerBusy` now if a job would be refused, so a route can say so before it reads an
        upload (a job may still be refused at `submit` when others take the room meanwhile)."""
        if self._in_flight >= self._room(lane):
            raise ServerBusy(self.retry_after())

    def submit(self, job: Job, *, lane: Lane = "api") -> Future[JobResult]:
        """Queue `job` in the "web" or "api" lane; raises `ServerBusy` immediately when its share of
        the queue is full."""
        self._check(job)
        if lane not in ("web", "api"):
            raise ValueError(f"submit takes the web or api lane, not {lane!r} (batches use submit_if_idle)")
        with self._lock:
            if self._in_flight >= self._room(lane):
                raise ServerBusy(self.retry_after())
            self._in_flight += 1
        return self._start(job, lane)

    def submit_if_idle(self, job: Job) -> Future[JobResult] | None:
        """The low-priority lane (batch jobs): start `job` only when a worker is idle, so it never waits
        in the queue ahead of a request; None (nothing queued) when every worker is taken."""
        self._check(job)
        with self._lock:
            if self._in_flight >= self.config.worker_count:
                return None
            self._in_flight += 1
        return self._start(job, "batch")

    def _check(self, job: Job) -> None:
        if job.mode not in MODES:
            raise InferenceError(f"Unknown mode {job.mode!r}; use one of {', '.join(MODES)}.")
        if job.mode == "fast" and not self.config.enable_fast_mode:
            raise InferenceError("Fast mode is not available on this server; use the default mode.")
        if (name := self.model_name(job)) not in (available := self.available_models()):
            raise ModelNotFound(f"No model called {name!r} on this server; available models: {', '.join(available)}.")

    def _start(self, job: Job, lane: Lane) -> Future[JobResult]:
        """Put `job` among the waiting ones and give the executor one more turn to take: each turn runs
        whichever waiting job is most urgent when a worker gets to it."""
        future: Future[JobResult] = Future()
        with self._lock:
            heapq.heappush(self._waiting, (LANES.index(lane), next(self._arrivals), job, future, time.perf_counter()))
        try:
            self._executor.submit(self._run_next)
        except RuntimeError:  # the pool was closed
            with self._lock:
                self._waiting = [entry for entry in self._waiting if entry[3] is not future]
                heapq.heapify(self._waiting)
            self._release(0.0)
            raise InferenceError("The inference pool is shut down.") from None
        return future

    def _run_next(self) -> None:
        with self._lock:
            _, _, job, future, submitted = heapq.heappop(self._waiting)
        if not future.set_running_or_notify_cancel():  # the caller gave up waiting
            self._release(0.0)
            return
        try:
            future.set_result(self._run(job, submitted))
        except BaseException as error:  # noqa: BLE001 - the caller gets every failure
            future.set_exception(error)

    def process(self, job: Job, timeout: float | None = None, *, lane: Lane = "api") -> JobResult:
        """Submit and wait (for threads; web handlers use `process_async`)."""
        return self.submit(job, lane=lane).result(timeout)

    async def process_async(self, job: Job, *, lane: Lane = "api") -> JobResult:
        """Submit and await without blocking the event loop."""
        return await asyncio.wrap_future(self.submit(job, lane=lane))

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            abandoned, self._waiting = self._waiting, []
            self._in_flight -= len(abandoned)
        for _, _, _, future, _ in abandoned:
            future.cancel()

    def _release(self, seconds: float) -> None:
        with self._lock:
            self._in_flight -= 1
            if seconds:
                self._mean_seconds = 0.8 * self._mean_seconds + 0.2 * seconds

    def _run(self, job: Job, submitted: float) -> JobResult:
        started = time.perf_counter()
        try:
            decoded = decode_image(job.data, max_pixels=job.max_pixels, max_bytes=job.max_bytes)
            decoded_at = time.perf_counter()
            model = self.model(self.model_name(job))
            options = replace(job.cutout, quality=True) if job.mode == "quality" else job.cutout
            source_format, source_size = decoded.format, decoded.size
            stages: dict[str, float] = {}
            blurred_backdrop = bool(job.render.background_blur)  # keeps the original's pixels: one more copy
            cutout = cut_out(decoded, model, options, max_pixels=job.output_max_pixels, consume=not blurred_backdrop, timings=stages)
            original = decoded.rgb if blurred_backdrop else None
            del decoded
            encode_start = time.perf_counter()
            rendered = render(cutout, job.render, original=original)
            finished = time.perf_counter()
            timings = Timings(
                queue=started - submitted,
                decode=decoded_at - started,
                inference=stages["inference"],
                refine=stages["refine"],
                encode=finished - encode_start,
            )
            observe_stages(timings)
            return JobResult(rendered, source_format, source_size, timings)
        finally:
            self._release(time.perf_counter() - started)

