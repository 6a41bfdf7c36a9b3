"""The inference pool behind the task queue (`CLEARBG_INFERENCE=queue`): web processes hold no model.

`QueuePool` answers what callers use of `InferencePool` (`process`, `process_async`, `check_room`,
`available_models`, `in_flight`, `config`, `models`, `close`): each job is written to Redis under a
fresh key, a message naming the key goes to the high-priority "inference" queue, and the caller
waits on the result list of that key. A worker process (`python -m clearbg_app worker`) runs
`serve` with its local pool. No worker in time: `ServerBusy` (503 with Retry-After), and the job is
withdrawn so a late worker skips it. Jobs and results travel pickled, read back by an unpickler that
admits only the inference package's dataclasses and PIL images; the Redis of the queue is trusted
infrastructure, as the database is.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import math
import pickle
import threading
import uuid
from typing import Any, Protocol

from dramatiq import Message

from clearbg_app.inference.config import InferenceConfig
from clearbg_app.inference.errors import ImageDecodeError, ImageTooLarge, InferenceError, ModelNotFound
from clearbg_app.inference.pool import InferencePool, Job, JobResult, Lane, ServerBusy

log = logging.getLogger(__name__)

INFER_ACTOR, INFER_QUEUE = "infer", "inference"
JOB_PREFIX, RESULT_PREFIX, WORKER_PREFIX = "clearbg:job:", "clearbg:result:", "clearbg:worker:"
HEARTBEAT_SECONDS = 5
ERRORS: dict[str, type[InferenceError]] = {cls.__name__: cls for cls in (InferenceError, ImageDecodeError, ImageTooLarge, ModelNotFound)}
_ADMITTED = {("builtins", "tuple"), ("builtins", "frozenset"), ("builtins", "set"), ("builtins", "bytearray"),
             ("copyreg", "_reconstructor"), ("builtins", "object"), ("PIL.Image", "Image")}  # fmt: skip


class Redisish(Protocol):
    """What this module uses of a `redis.Redis` client."""

    def set(self, name: str, value: bytes, ex: int | None = None) -> Any: ...
    def get(self, name: str) -> Any: ...
    def getdel(self, name: str) -> Any: ...
    def delete(self, *names: str) -> Any: ...
    def rpush(self, name: str, *values: bytes) -> Any: ...
    def expire(self, name: str, time: int) -> Any: ...
    def blpop(self, keys: list[str], timeout: float) -> Any: ...
    def scan_iter(self, match: str) -> Any: ...


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("clearbg_app.inference.") or (module, name) in _ADMITTED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not a job's or a result's part")


def dumps(value: object) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def loads(data: bytes) -> Any:
    """A job or a result written by `dumps`; `pickle.UnpicklingError` for anything else."""
    return _Unpickler(io.BytesIO(data)).load()


def error_payload(error: Exception) -> dict:
    retry_after = error.retry_after if isinstance(error, ServerBusy) else None
    kind = type(error).__name__ if type(error).__name__ in ERRORS or retry_after else "InferenceError"
    text = str(error) if isinstance(error, InferenceError) else "The image could not be processed; please try again."
    return {"error": kind, "message": text, "retry_after": retry_after}


def raise_error(payload: dict) -> None:
    if payload.get("retry_after"):
        raise ServerBusy(int(payload["retry_after"]))
    raise ERRORS.get(payload.get("error", ""), InferenceError)(payload.get("message") or "The image could not be processed.")


def serve(pool: InferencePool, key: str, client: Redisish) -> bool:
    """Run the job stored under `key` (a worker's side) and push its result or error; False when the
    job is gone (its caller gave up) or unreadable."""
    if not isinstance(key, str) or not key.startswith(JOB_PREFIX):
        log.warning("inference queue: a message named no job (%r); dropped", str(key)[:80])
        return False
    stored = client.getdel(key)
    if stored is None:
        return False
    request = json.loads(stored)
    reply = RESULT_PREFIX + key.removeprefix(JOB_PREFIX)
    try:
        job = loads(bytes.fromhex(request["job"]))
        if not isinstance(job, Job):
            raise pickle.UnpicklingError("not a job")
        result = pool.submit(job, lane=request.get("lane", "api")).result()
        answer = {"result": dumps(result).hex()}
    except (pickle.UnpicklingError, ValueError, KeyError, TypeError, EOFError) as bad:
        log.warning("inference queue: unreadable job %s: %s", key, bad)
        answer = error_payload(InferenceError("The image could not be processed; please try again."))
    except Exception as error:  # noqa: BLE001 - the caller gets every failure as its domain error
        answer = error_payload(error)
    client.rpush(reply, json.dumps(answer).encode())
    client.expire(reply, 60)
    return True


def heartbeat(pool: InferencePool, client: Redisish, name: str) -> None:
    """Announce this worker and its models (read by web processes' `available_models` and readyz)."""
    client.set(WORKER_PREFIX + name, json.dumps({"models": pool.available_models(), "workers": pool.config.worker_count}).encode(),
               ex=HEARTBEAT_SECONDS * 3)  # fmt: skip


class QueuePool(InferencePool):
    """`InferencePool`'s interface, served by worker processes through the queue (module docstring).
    It loads no model: `InferencePool.__init__` is not called, and what it would set up is not used."""

    def __init__(self, config: InferenceConfig, client: Redisish, send: Any, *, timeout: float) -> None:  # noqa: B042
        self.config, self._client, self._send, self.timeout = config, client, send, timeout
        self._lock = threading.Lock()
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def workers(self) -> list[dict]:
        """The live workers' heartbeats."""
        found = []
        for key in self._client.scan_iter(match=WORKER_PREFIX + "*"):
            if (raw := self._client.get(key)) is not None:
                found.append(json.loads(raw))
        return found

    @property
    def models(self) -> dict[str, None]:  # type: ignore[override]
        """The models the live workers hold (empty: no worker is up)."""
        return dict.fromkeys(name for worker in self.workers() for name in worker["models"])

    def available_models(self) -> list[str]:
        return list(self.models)

    def retry_after(self) -> int:
        return max(1, math.ceil(self.timeout / 10))

    def check_room(self, lane: Lane = "api") -> None:
        if self._in_flight >= self.config.worker_count + self.config.queue_size:
            raise ServerBusy(self.retry_after())

    def process(self, job: Job, timeout: float | None = None, *, lane: Lane = "api") -> JobResult:
        """Send `job` through the queue and wait for its result; `ServerBusy` when no worker answers in time."""
        if lane not in ("web", "api"):
            raise ValueError(f"process takes the web or api lane, not {lane!r}")
        self.check_room(lane)
        token = uuid.uuid4().hex
        job_key, reply = JOB_PREFIX + token, RESULT_PREFIX + token
        wait = timeout or self.timeout
        with self._lock:
            self._in_flight += 1
        try:
            self._client.set(job_key, json.dumps({"job": dumps(job).hex(), "lane": lane}).encode(), ex=math.ceil(wait) + 5)
            self._send(Message(queue_name=INFER_QUEUE, actor_name=INFER_ACTOR, args=(job_key,), kwargs={}, options={}))
            answer = self._client.blpop([reply], timeout=wait)
            if answer is None:
                self._client.delete(job_key)  # a worker that takes it later finds nothing to do
                raise ServerBusy(self.retry_after())
            payload = json.loads(answer[1])
            if "result" not in payload:
                raise_error(payload)
            return loads(bytes.fromhex(payload["result"]))
        finally:
            with self._lock:
                self._in_flight -= 1

    async def process_async(self, job: Job, *, lane: Lane = "api") -> JobResult:
        return await asyncio.to_thread(self.process, job, lane=lane)

    def close(self) -> None:
        """Nothing held here: the workers keep the models."""

