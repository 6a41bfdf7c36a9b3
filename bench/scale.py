"""Scale-out through the task queue: queue workers (`python -m clearbg_app worker`) pinned to cores.

    python bench/scale.py [--images 24] [--latency-runs 20] [--mode fast] [--write]

1. Throughput: the same load (`--images` single-image jobs, sent at once by 8 client threads through
   `QueuePool`, as web processes with CLEARBG_INFERENCE=queue send them) served by 1 worker pinned to
   core 0 (`taskset -c 0`), then by 2 workers pinned to cores 0 and 1; images/s of each and the ratio.
2. Added latency: one request at a time, `--latency-runs` times, through the queue to 1 pinned worker
   against the same job on a local `InferencePool` (1 worker, 1 thread) pinned to the same core,
   alternated; p50 and p95 of each and of the difference.

Needs the machine's Redis (database 15, flushed before and after). Each worker has 1 inference
worker and 1 ONNX thread; `--mode fast` (u2netp, the default here) or `default` (u2net). `--write`
puts the figures into bench/README.md's "Scale-out" section.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis
from dramatiq.brokers.redis import RedisBroker

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from clearbg_app.inference import InferenceConfig, InferencePool, Job  # noqa: E402
from clearbg_app.inference.remote import QueuePool  # noqa: E402

QUEUE_URL = "redis://127.0.0.1:6379/15"
IMAGE = ROOT / "assets" / "samples" / "animal-dog-coco000000377575.jpg"
SECTION = "## Scale-out through the task queue (`bench/scale.py`)"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def start_workers(cores: list[int], data_dir: Path) -> list[subprocess.Popen]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CLEARBG_")}
    env |= {"CLEARBG_DATA_DIR": str(data_dir), "CLEARBG_QUEUE_URL": QUEUE_URL, "CLEARBG_INFERENCE_WORKERS": "1",
            "CLEARBG_INFERENCE_THREADS": "1", "CLEARBG_SECRET_KEY": "b" * 40}  # fmt: skip
    workers = []
    for core in cores:
        log = (data_dir / f"worker-{core}.log").open("w")
        workers.append(subprocess.Popen(["taskset", "-c", str(core), sys.executable, "-m", "clearbg_app", "worker"],
                                        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))  # fmt: skip
    return workers


def wait_for(pool: QueuePool, count: int, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while len(pool.workers()) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: {count} workers did not start")
        time.sleep(0.2)


def stop(workers: list[subprocess.Popen], client: redis.Redis) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.wait(60)
    client.flushdb()


def throughput(pool: QueuePool, job: Job, images: int) -> float:
    pool.process(job)  # warm: each worker's first run pays for ONNX Runtime's set-up
    started = time.perf_counter()
    with ThreadPoolExecutor(8) as clients:
        list(clients.map(lambda _: pool.process(job), range(images)))
    return images / (time.perf_counter() - started)


def paired_latencies(queue_pool: QueuePool, job: Job, runs: int) -> tuple[list[float], list[float]]:
    """Milliseconds of the same job on a local pool pinned to core 0 (this process) and through the
    queue to the worker on core 0, alternated so both see the same load of the shared machine."""
    os.sched_setaffinity(0, {0})
    local_pool = InferencePool(InferenceConfig(workers=1, intra_op_threads=1, warm_up=True))
    calls = (lambda: local_pool.process(job), lambda: queue_pool.process(job))
    found: tuple[list[float], list[float]] = ([], [])
    for call in calls:
        call()  # warm
    for _ in range(runs):
        for call, times in zip(calls, found, strict=True):
            started = time.perf_counter()
            call()
            times.append((time.perf_counter() - started) * 1000)
    local_pool.close()
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--latency-runs", type=int, default=20)
    parser.add_argument("--mode", choices=("fast", "default"), default="fast")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    client = redis.Redis.from_url(QUEUE_URL)
    client.flushdb()
    sender = RedisBroker(url=QUEUE_URL, namespace="clearbg")
    config = InferenceConfig(workers=1, intra_op_threads=1, queue_size=64)
    pool = QueuePool(config, client, sender.enqueue, timeout=600)
    job = Job(IMAGE.read_bytes(), max_pixels=50_000_000, output_max_pixels=250_000, mode=args.mode)
    model = "u2netp" if args.mode == "fast" else "u2net"
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, check=True, capture_output=True,
                       env={**os.environ, "CLEARBG_DATA_DIR": str(data_dir)})  # fmt: skip
        results: dict[str, float] = {}
        for cores in ([0], [0, 1]):
            workers = start_workers(cores, data_dir)
            try:
                wait_for(pool, len(cores))
                results[f"{len(cores)}"] = throughput(pool, job, args.images)
                if cores == [0]:
                    local, queued = paired_latencies(pool, job, args.latency_runs)
            finally:
                stop(workers, client)
    ratio = results["2"] / results["1"]
    lines = [
        f"{model}, a 640x480 photo, result at most 0.25 MP, {args.images} images per run, 8 client threads;",
        "each worker: 1 inference worker, 1 ONNX thread, pinned with taskset.",
        "",
        "| | 1 worker (core 0) | 2 workers (cores 0, 1) | ratio |",
        "| --- | --- | --- | --- |",
        f"| throughput | {results['1']:.2f} images/s | {results['2']:.2f} images/s | {ratio:.2f}x |",
        "",
        f"| one request at a time ({args.latency_runs} runs) | p50 | p95 |",
        "| --- | --- | --- |",
        f"| local pool, pinned to core 0 | {percentile(local, 0.5):.0f} ms | {percentile(local, 0.95):.0f} ms |",
        f"| through the queue to 1 worker on core 0 | {percentile(queued, 0.5):.0f} ms | {percentile(queued, 0.95):.0f} ms |",
        f"| added by the queue | {percentile(queued, 0.5) - percentile(local, 0.5):.0f} ms | "
        f"{percentile(queued, 0.95) - percentile(local, 0.95):.0f} ms |",
    ]
    print("\n".join(lines))
    if args.write:
        write_section("\n".join(lines))
    return 0


def write_section(figures: str) -> None:
    readme = BENCH / "README.md"
    text = readme.read_text()
    body = (f"{SECTION}\n\nMeasured on this machine (2 cores shared with other engineers' work, so the ratio is a floor), "
            f"`python bench/scale.py --write`:\n\n{figures}\n")  # fmt: skip
    if SECTION in text:
        start = text.index(SECTION)
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + body + (text[end:] if end != -1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + body
    readme.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
