"""The pool: shared sessions, backpressure, timings, and robustness against bad input."""

from __future__ import annotations

import asyncio
import gc
import io
import threading

import pytest
from PIL import Image

from clearbg_app.inference import InferenceConfig, InferenceError, InferencePool, Job, ModelNotFound, ServerBusy
from tests.factories import GatedPool
from tests.inference.conftest import MODEL_PATH, encode, subject_image

LIMIT = 20_000_000


@pytest.fixture(scope="module")
def pool():
    pool = InferencePool(InferenceConfig(model_path=MODEL_PATH, workers=1, queue_size=1, web_reserved=0))
    yield pool
    pool.close()


def good_job(**kwargs) -> Job:
    return Job(encode(subject_image(), "JPEG"), LIMIT, **kwargs)


def test_result_and_timings(pool):
    result = pool.process(good_job())
    assert result.source_format == "JPEG" and result.source_size == (240, 180)
    assert Image.open(io.BytesIO(result.rendered.content)).mode == "RGBA"
    timings = result.timings
    assert min(timings.queue, timings.decode, timings.inference, timings.refine, timings.encode) >= 0
    assert timings.inference > 0 and timings.total >= timings.inference + timings.refine


def test_sessions_are_shared_between_pools(pool):
    other = InferencePool(InferenceConfig(model_path=MODEL_PATH, workers=1, queue_size=1, warm_up=False))
    try:
        assert other.models["u2net"] is pool.models["u2net"]
    finally:
        other.close()


def test_full_queue_answers_busy_with_a_retry_hint(pool):
    big = Job(encode(subject_image((2000, 1500)), "JPEG"), LIMIT)
    running, queued = pool.submit(big), pool.submit(big)
    with pytest.raises(ServerBusy) as busy:
        pool.submit(big)
    assert busy.value.retry_after >= 1 and "try again" in str(busy.value)
    running.result(60), queued.result(60)
    assert pool.in_flight == 0
    pool.process(good_job())  # capacity is back


def test_quality_fast_and_chosen_models(pool):
    assert pool.process(good_job(mode="quality")).timings.inference > 0
    fast = pool.process(good_job(mode="fast"))
    assert Image.open(io.BytesIO(fast.rendered.content)).mode == "RGBA"
    assert set(pool.models) == {"u2net", "u2netp"}  # fast mode is u2netp, loaded on first use
    chosen = pool.process(good_job(model="u2netp"))
    assert chosen.rendered.content == fast.rendered.content  # the same model, the same session
    assert pool.models["u2netp"].path == pool.config.fast_model_path
    with pytest.raises(ModelNotFound, match="No model called 'silueta'.*available models: u2net, u2netp"):
        pool.submit(good_job(model="silueta"))  # in the registry, but its file is not on this server
    with pytest.raises(InferenceError, match="Unknown mode"):
        pool.submit(good_job(mode="turbo"))
    assert pool.in_flight == 0


def test_fast_mode_can_be_switched_off():
    pool = InferencePool(InferenceConfig(model_path=MODEL_PATH, workers=1, enable_fast_mode=False, warm_up=False))
    try:
        with pytest.raises(InferenceError, match="Fast mode is not available"):
            pool.submit(good_job(mode="fast"))
        with pytest.raises(ModelNotFound, match="available models: u2net\\.$"):
            pool.submit(good_job(model="u2netp"))
        assert pool.available_models() == ["u2net"]
    finally:
        pool.close()


def test_async_submission(pool):
    result = asyncio.run(pool.process_async(good_job()))
    assert result.rendered.media_type == "image/png"


def _bad_inputs() -> list[tuple[bytes, str]]:
    """Bad and odd inputs with the outcome each must have."""
    jpeg = encode(Image.effect_noise((300, 300), 60).convert("RGB"), "JPEG")
    return [
        (b"", "ImageDecodeError"),
        (b"hello, this is text pretending to be a jpeg", "ImageDecodeError"),
        (jpeg[: len(jpeg) // 2], "ImageDecodeError"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "ImageDecodeError"),
        (encode(Image.new("RGB", (6000, 4000)), "PNG"), "ImageTooLarge"),  # over the 20 MP limit
        (encode(Image.new("RGB", (1, 1), (0, 0, 0)), "PNG"), "ok"),
        (encode(Image.new("RGBA", (50, 50), (0, 0, 0, 0)), "PNG"), "ok"),  # fully transparent
    ]


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def test_two_hundred_bad_inputs_neither_crash_nor_leak(pool):
    """Each bad input once through the default model (u2net), then 200 rounds through fast mode (the
    decoding and error paths are the same; u2netp keeps 200 rounds quick on 2 cores)."""
    inputs = _bad_inputs()
    assert [_run_quietly(pool, data) for data, _ in inputs] == [expected for _, expected in inputs]
    for data, _ in inputs:  # let caches and arenas settle
        _run_quietly(pool, data, "fast")
    gc.collect()
    before = _rss_mb()
    chosen = [inputs[i % len(inputs)] for i in range(200)]
    outcomes = [_run_quietly(pool, data, "fast") for data, _ in chosen]
    gc.collect()
    assert _rss_mb() - before < 60
    assert outcomes == [expected for _, expected in chosen]
    assert pool.in_flight == 0
    for _ in range(3):
        assert pool.process(good_job()).rendered.content


def _run_quietly(pool, data: bytes, mode: str = "default") -> str:
    try:
        pool.process(Job(data, LIMIT, mode=mode))
        return "ok"
    except InferenceError as error:
        return type(error).__name__


def test_workers_share_one_session_per_model(monkeypatch):
    """A process holds each model once: every worker thread runs the same session, concurrently, and
    gets the same answer as a job run alone."""
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    config = InferenceConfig(model_path=MODEL_PATH, workers=4, queue_size=8, warm_up=False)
    assert config.session_threads == 4
    pool = InferencePool(config)
    try:
        alone = pool.process(good_job()).rendered.content
        jobs = [pool.submit(good_job()) for _ in range(4)]
        assert {job.result(120).rendered.content for job in jobs} == {alone}
        assert list(pool.models) == ["u2net"]
        assert pool.models["u2net"].session.get_session_options().intra_op_num_threads == 4
    finally:
        pool.close()


@pytest.mark.skipif(not __import__("platform").libc_ver()[0] == "glibc", reason="glibc only")
def test_malloc_arenas_are_capped_on_glibc():
    from clearbg_app.inference.pool import limit_malloc_arenas

    assert limit_malloc_arenas() is True


def test_api_jobs_cannot_fill_the_web_slots_and_web_jobs_run_before_queued_api_jobs():
    pool = GatedPool(InferenceConfig(model_path=MODEL_PATH, workers=1, queue_size=2, web_reserved=1, warm_up=False))
    try:
        api = [Job(encode(subject_image((240 + n, 180)), "JPEG"), LIMIT) for n in range(3)]
        web = [Job(encode(subject_image((200 + n, 150)), "PNG"), LIMIT) for n in range(2)]
        futures = [pool.submit(job) for job in api[:2]]  # one running, one queued: the API's whole share
        with pytest.raises(ServerBusy):
            pool.submit(api[2])
        with pytest.raises(ServerBusy):
            pool.check_room()
        pool.check_room("web")
        futures.append(pool.submit(web[0], lane="web"))  # the reserved slot
        with pytest.raises(ServerBusy):
            pool.submit(web[1], lane="web")  # every slot is taken now
        assert pool.submit_if_idle(good_job()) is None
        pool.gate.set()
        results = [future.result(60) for future in futures]
        assert pool.started == [api[0], web[0], api[1]]  # the web job went ahead of the queued API job
        assert [result.source_size for result in results] == [(240, 180), (241, 180), (200, 150)]
        assert pool.in_flight == 0
        with pytest.raises(ValueError, match="submit_if_idle"):
            pool.submit(good_job(), lane="batch")
    finally:
        pool.close()


def test_at_most_half_the_queue_is_kept_for_the_web():
    config = InferenceConfig(model_path=MODEL_PATH, workers=2, queue_size=3, web_reserved=4, warm_up=False)
    pool = InferencePool(config)
    try:
        assert (pool._room("api"), pool._room("web")) == (4, 5)
    finally:
        pool.close()


def test_closing_the_pool_cancels_what_still_waits():
    pool = GatedPool(InferenceConfig(model_path=MODEL_PATH, workers=1, queue_size=2, warm_up=False))
    running, waiting = pool.submit(good_job()), pool.submit(good_job(), lane="web")
    threading.Timer(0.2, pool.gate.set).start()  # usually after close() has begun: the waiting job is cancelled
    pool.close()
    assert running.result(60).rendered.content
    assert waiting.cancelled() or waiting.result(60).rendered.content  # nobody is left waiting for ever
    assert pool.in_flight == 0
    with pytest.raises(InferenceError, match="shut down"):
        pool.submit(good_job())
