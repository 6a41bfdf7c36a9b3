"""ClearBG inference benchmark: the model alone (A), rembg (B) and ClearBG's pipeline in its
default (C), quality (D) and fast (E) modes, on the same model file and images, in one run.

    python bench/inference.py [--runs 5] [--skip-rembg]

Each contestant runs in its own worker process per image size (so peak RSS is its own);
the parent sends the same image to every worker in turn (alternating), for `--runs` rounds,
and reports medians. Then it scores mask quality on the U^2-Net samples. rembg is installed
from PyPI into bench/.rembg-venv on first use. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
REMBG_VENV = BENCH / ".rembg-venv"
REMBG_HOME = BENCH / ".rembg-home"
REMBG_REQUIREMENT = "rembg[cpu,cli]==2.0.86"  # cli: `rembg s`, for bench/api_load.py
SIZES_MP = (1, 6, 24)
KINDS = ("A", "B", "C", "D", "E")
LABELS = {
    "A": "A raw InferenceSession.run",
    "B": "B rembg remove() bytes->PNG",
    "C": "C ClearBG default",
    "D": "D ClearBG quality",
    "E": "E ClearBG fast (u2netp)",
}


# ----------------------------------------------------------------------------- workers
def _worker_a(model_path: str):
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = os.cpu_count() or 1
    session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
    tensor = np.random.default_rng(0).random((1, 3, 320, 320), dtype=np.float32)

    def run(data: bytes) -> bytes:
        session.run(None, {session.get_inputs()[0].name: tensor})
        return b""

    return run


def _worker_b(model_path: str):
    from rembg import new_session, remove

    session = new_session("u2net_custom", model_path=model_path)
    return lambda data: remove(data, session=session)


def _worker_clearbg(model_path: str, mode: str):
    sys.path.insert(0, str(ROOT))
    from clearbg_app.inference import InferenceConfig, InferencePool, Job

    config = InferenceConfig(model_path=Path(model_path), workers=1)  # one worker with every core, like A and B
    pool = InferencePool(config)
    return lambda data: pool.process(Job(data, max_pixels=200_000_000, mode=mode)).rendered.content


def worker(kind: str, model_path: str) -> None:
    """Serve JSON commands on stdin: {"file": ...} times one run; {"save": ...} writes the result."""
    run = {
        "A": lambda: _worker_a(model_path),
        "B": lambda: _worker_b(model_path),
        "C": lambda: _worker_clearbg(model_path, "default"),
        "D": lambda: _worker_clearbg(model_path, "quality"),
        "E": lambda: _worker_clearbg(model_path, "fast"),
    }[kind]()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if "file" in command:
            data = Path(command["file"]).read_bytes()
            started = time.perf_counter()
            result = run(data)
            answer = {"seconds": time.perf_counter() - started}
            if command.get("save"):
                Path(command["save"]).write_bytes(result)
        else:
            answer = {"rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
        print(json.dumps(answer), flush=True)


class Worker:
    def __init__(self, kind: str, python: str, model_path: Path) -> None:
        env = {**os.environ, "U2NET_HOME": str(REMBG_HOME), "OMP_NUM_THREADS": str(os.cpu_count())}
        self.process = subprocess.Popen(
            [python, __file__, "--worker", kind, "--model", str(model_path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
        )
        self.ask(None)  # wait for "ready"

    def ask(self, command: dict | None) -> dict:
        if command is not None:
            self.process.stdin.write(json.dumps(command) + "\n")
            self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("a benchmark worker died")
        return json.loads(line)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(30)


# ----------------------------------------------------------------------------- set-up
def rembg_python() -> str:
    """The rembg venv's interpreter, created and installed from PyPI on first use."""
    python = REMBG_VENV / "bin" / "python"
    marker = REMBG_VENV / ".installed"
    if not marker.exists() or marker.read_text().strip() != REMBG_REQUIREMENT:
        subprocess.run([sys.executable, "-m", "venv", str(REMBG_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", REMBG_REQUIREMENT], check=True)
        marker.write_text(REMBG_REQUIREMENT + "\n")
    return str(python)


def rembg_model(model: Path) -> Path:
    """`model` as rembg accepts it: inside its home folder (U2NET_HOME=REMBG_HOME); a link, not a copy."""
    REMBG_HOME.mkdir(exist_ok=True)
    link = REMBG_HOME / model.name
    if not (link.is_symlink() and link.resolve() == model.resolve()):
        link.unlink(missing_ok=True)
        link.symlink_to(model.resolve())
    return link


def prepare_inputs(samples: Path) -> dict[str, list[Path]]:
    """The sample photos, and bike.jpg resized to each size in SIZES_MP (JPEG, quality 90)."""
    from PIL import Image

    OUT.mkdir(exist_ok=True)
    rows = {"samples (18)": sorted((samples / "images").iterdir())}
    bike = Image.open(samples / "images" / "bike.jpg")
    for megapixels in SIZES_MP:
        path = OUT / f"bike-{megapixels}mp.jpg"
        if not path.exists():
            factor = (megapixels * 1e6 / (bike.width * bike.height)) ** 0.5
            bike.resize((round(bike.width * factor), round(bike.height * factor)), Image.Resampling.LANCZOS).save(
                path, quality=90
            )
        rows[f"bike {megapixels} MP"] = [path]
    return rows


# ----------------------------------------------------------------------------- timing
def time_row(files: list[Path], kinds: list[str], pythons: dict[str, str], model: Path, runs: int) -> dict:
    """Median seconds (per run over all `files`) and peak RSS for each kind, alternating."""
    workers = {kind: Worker(kind, pythons[kind], model) for kind in kinds}
    try:
        for kind in kinds:  # warm-up, untimed
            workers[kind].ask({"file": str(files[0])})
        totals = {kind: [] for kind in kinds}
        for _ in range(runs):
            for kind in kinds:
                totals[kind].append(sum(workers[kind].ask({"file": str(f)})["seconds"] for f in files))
        return {
            kind: {"seconds": statistics.median(totals[kind]), "rss_mb": workers[kind].ask({"rss": 1})["rss_mb"]}
            for kind in kinds
        }
    finally:
        for w in workers.values():
            w.close()


def timing_table(results: dict[str, dict], kinds: list[str]) -> str:
    ratios = [("C/A", "C", "A"), ("C/B", "C", "B"), ("D/B", "D", "B"), ("E/B", "E", "B"), ("C/E", "C", "E")]
    header = ["input", *[f"{k} s" for k in kinds], *[r[0] for r in ratios], *[f"{k} MB" for k in kinds]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row, measured in results.items():
        cells = [row, *[f"{measured[k]['seconds']:.3f}" for k in kinds]]
        for _, top, bottom in ratios:
            ok = top in measured and bottom in measured
            cells.append(f"{measured[top]['seconds'] / measured[bottom]['seconds']:.2f}" if ok else "n/a")
        cells += [f"{measured[k]['rss_mb']:.0f}" for k in kinds]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- quality
def quality_table(samples: Path, kinds: list[str], pythons: dict[str, str], model: Path) -> str:
    """Agreement with the large model's masks, and green bleed on subjects composited on green."""
    import numpy as np
    from PIL import Image

    sys.path.insert(0, str(ROOT))
    from clearbg_app.inference.quality import as_unit, green_bleed, iou, mae, on_green

    photos = sorted((samples / "images").iterdir())
    scores = {kind: {"iou": [], "mae": [], "bleed": []} for kind in kinds}
    for kind in kinds:
        worker = Worker(kind, pythons[kind], model)
        folder = OUT / "quality" / kind
        folder.mkdir(parents=True, exist_ok=True)
        try:
            for photo in photos:
                truth_file = samples / "u2net_reference" / f"{photo.stem}.png"
                image = Image.open(photo).convert("RGB")
                truth = Image.open(truth_file).convert("L").resize(image.size)
                result = folder / f"{photo.stem}.png"
                worker.ask({"file": str(photo), "save": str(result)})
                alpha = as_unit(Image.open(result).getchannel("A"))
                scores[kind]["iou"].append(iou(alpha, as_unit(truth)))
                scores[kind]["mae"].append(mae(alpha, as_unit(truth)))
                screen = folder / f"{photo.stem}.green.png"
                on_green(image, truth).save(screen)
                worker.ask({"file": str(screen), "save": str(result)})
                cut = Image.open(result)
                band = (as_unit(truth) > 0.05) & (as_unit(truth) < 0.95)
                scores[kind]["bleed"].append(green_bleed(cut.convert("RGB"), image, band))
        finally:
            worker.close()
    lines = ["| mode | mean IoU vs u2net | min IoU | mean MAE | green bleed (levels) |", "|---|---|---|---|---|"]
    for kind in kinds:
        s = scores[kind]
        lines.append(
            f"| {LABELS[kind]} | {np.mean(s['iou']):.4f} | {np.min(s['iou']):.4f} | {np.mean(s['mae']):.4f} | "
            f"{np.mean(s['bleed']):.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-rembg", action="store_true")
    parser.add_argument("--rows", help="comma-separated rows to time, e.g. 'bike 1 MP,bike 6 MP' (default all)")
    parser.add_argument("--no-quality", action="store_true", help="skip the mask-quality table")
    parser.add_argument("--worker")
    parser.add_argument("--model")
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.model)
    sys.path.insert(0, str(ROOT))
    from clearbg_app.settings import get_settings

    model = get_settings().model_path
    samples = model.parents[1] / "testdata" / "u2net_samples"
    kinds = [k for k in KINDS if not (k == "B" and args.skip_rembg)]
    pythons = {kind: sys.executable for kind in kinds}
    if "B" in kinds:
        pythons["B"] = rembg_python()
        model_for_all = rembg_model(model)  # rembg insists the file lies in its home folder
    else:
        model_for_all = model
    print(f"{os.cpu_count()} cores; medians of {args.runs} alternating runs; model {model.name}\n")
    results = {}
    wanted = set(args.rows.split(",")) if args.rows else None
    for row, files in prepare_inputs(samples).items():
        if wanted is not None and row not in wanted:
            continue
        results[row] = time_row(files, kinds, pythons, model_for_all, args.runs)
        print(f"measured {row}", file=sys.stderr)
    print(timing_table(results, kinds))
    if args.no_quality:
        return
    print()
    print(quality_table(samples, [k for k in kinds if k != "A"], pythons, model_for_all))


if __name__ == "__main__":
    main()
