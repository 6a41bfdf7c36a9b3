"""Sizing figures for docs/deploy.md: CPU seconds per image (so images per second per core) for each
model on this machine, with the bare model run as the baseline measured in the same run; and a
blob's round trip through the S3 backend (moto on loopback) against the local directory.

    python bench/sizing.py [--rounds 3] [--models u2netp,u2net]

CPU time (not wall time) is counted, over the whole process, with one inference worker of one ORT
thread: on a shared, loaded machine it moves far less than throughput does.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clearbg_app.inference import InferenceConfig, InferencePool, Job  # noqa: E402
from clearbg_app.inference.model import _models  # noqa: E402
from clearbg_app.storage import LocalBlobStore  # noqa: E402
from clearbg_app.storage.s3 import S3BlobStore  # noqa: E402
from tests.s3_server import ACCESS_KEY, REGION, SECRET_KEY, moto_server  # noqa: E402

SAMPLES = ROOT.parent / "shared" / "testdata" / "u2net_samples" / "images"
MODELS = ROOT.parent / "shared" / "models"


def bike(megapixels: float) -> bytes:
    photo = Image.open(SAMPLES / "bike.jpg").convert("RGB")
    scale = (megapixels * 1e6 / (photo.width * photo.height)) ** 0.5
    out = io.BytesIO()
    photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.Resampling.LANCZOS).save(out, "JPEG", quality=90)
    return out.getvalue()


def cpu_per_call(work, rounds: int) -> float:
    """Median over `rounds` of the process CPU seconds one call of `work` takes."""
    work()  # warm-up
    samples = []
    for _ in range(rounds):
        started = time.process_time()
        work()
        samples.append(time.process_time() - started)
    return statistics.median(samples)


def model_figures(name: str, rounds: int, inputs: dict[str, list[bytes]]) -> list[tuple[str, float, float]]:
    _models.clear()
    pool = InferencePool(InferenceConfig(model_path=MODELS / f"{name}.onnx", workers=1, intra_op_threads=1, queue_size=64, warm_up=False))
    try:
        model = pool.models["default"]
        tensor = model.prepare(Image.new("RGB", (640, 480), (120, 130, 140)))
        bare = cpu_per_call(lambda: model.run(tensor), rounds)
        rows = [("bare model run (baseline)", bare, 1.0)]
        for label, images in inputs.items():
            def pipeline(images=images):
                for data in images:
                    pool.process(Job(data, max_pixels=100_000_000))
            seconds = cpu_per_call(pipeline, rounds) / len(images)
            rows.append((label, seconds, seconds / bare))
        return rows
    finally:
        pool.close()


def storage_figures(rounds: int) -> list[tuple[str, float]]:
    blob = np.random.default_rng(0).bytes(1_000_000)
    with tempfile.TemporaryDirectory() as folder, moto_server() as endpoint:
        local = LocalBlobStore(Path(folder))
        s3 = S3BlobStore(f"s3://sizing-{uuid.uuid4().hex[:8]}/p", endpoint_url=endpoint, region=REGION, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY)
        s3.client.create_bucket(Bucket=s3.bucket)
        rows = []
        for label, store in (("local directory", local), ("S3 (moto, loopback)", s3)):
            def round_trip(store=store):
                key = store.put(blob, suffix=".png")
                store.get(key)
                store.delete(key)
            round_trip()
            walls = []
            for _ in range(rounds * 5):
                started = time.perf_counter()
                round_trip()
                walls.append(time.perf_counter() - started)
            rows.append((label, statistics.median(walls)))
        return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", default="u2netp,u2net")
    args = parser.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as one worker process pinned
    samples = [path.read_bytes() for path in sorted(SAMPLES.iterdir())]
    inputs = {"18 sample photos (0.05-6 MP), per image": samples, "1 MP photo": [bike(1)], "6 MP photo": [bike(6)]}
    print(f"load average at start: {os.getloadavg()[0]:.1f}; one core; medians of {args.rounds} rounds\n")
    print("| model | input | CPU s per image | x bare model | images/s per core |\n|---|---|---|---|---|")
    for name in args.models.split(","):
        for label, seconds, ratio in model_figures(name, args.rounds, inputs):
            print(f"| {name} | {label} | {seconds:.3f} | {ratio:.2f} | {1 / seconds:.2f} |")
    print("\n| blob store | put + get + delete of 1 MB, median wall s | x local |\n|---|---|---|")
    rows = storage_figures(args.rounds)
    for label, seconds in rows:
        print(f"| {label} | {seconds:.4f} | {seconds / rows[0][1]:.1f} |")
    print(f"\nload average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
