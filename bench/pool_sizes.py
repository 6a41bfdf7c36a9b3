"""Which pool shape suits this machine: N workers x T ORT threads, on 1 MP photos.

    python bench/pool_sizes.py [--jobs 12]

Submits all jobs at once to each configuration and prints throughput and median latency.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clearbg_app.inference import InferenceConfig, InferencePool, Job  # noqa: E402
from clearbg_app.inference.model import _models  # noqa: E402


def measure(workers: int, threads: int, data: bytes, jobs: int) -> tuple[float, float]:
    _models.clear()  # a fresh session with this thread count
    pool = InferencePool(InferenceConfig(workers=workers, intra_op_threads=threads, queue_size=jobs))
    try:
        pool.process(Job(data, max_pixels=100_000_000))
        started = time.perf_counter()
        futures = [pool.submit(Job(data, max_pixels=100_000_000)) for _ in range(jobs)]
        latencies = [future.result().timings.total for future in futures]
        return jobs / (time.perf_counter() - started), statistics.median(latencies)
    finally:
        pool.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=12)
    args = parser.parse_args()
    photo = ROOT / "bench" / "out" / "bike-1mp.jpg"
    data = photo.read_bytes()
    cores = os.cpu_count() or 1
    shapes = sorted({(1, cores), (cores, 1), (1, 1), (2, max(1, cores // 2))})
    print(f"{cores} cores, {args.jobs} jobs of {photo.name} submitted at once\n")
    print("| workers x threads | images/s | median latency s |\n|---|---|---|")
    for workers, threads in shapes:
        throughput, latency = measure(workers, threads, data, args.jobs)
        print(f"| {workers} x {threads} | {throughput:.2f} | {latency:.2f} |")


if __name__ == "__main__":
    main()
