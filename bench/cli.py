"""ClearBG's command line against `rembg p` on one folder of mixed photos, the same model file.

    python bench/cli.py [--rounds 3] [--skip-rembg]          (make bench-cli)

The folder (bench/out/cli-folder/) holds bike.jpg at 1, 6 and 24 MP (bench/inference.py makes them)
and three coco_subjects photos. Each round runs `python -m clearbg_app.inference remove FOLDER -o OUT`
(default mode), then `rembg p -m u2net_custom -x '{"model_path": ...}' FOLDER OUT` (rembg 2.0.86 in
bench/.rembg-venv), each under `/usr/bin/time -v`, after one untimed round of both: wall time and
peak RSS with process start and model load included on both sides. Prints both per round and the
medians' ratio, then where ClearBG's time goes per photo (the pool's stage timings, in process).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT)]

from inference import OUT, REMBG_HOME, SIZES_MP, prepare_inputs, rembg_model, rembg_python  # noqa: E402

FOLDER = OUT / "cli-folder"
COCO_PHOTOS = ("animal-bear-coco000000229997", "animal-cat-coco000000196393", "animal-dog-coco000000377575")


def build_folder(testdata: Path) -> list[Path]:
    """Links to bike.jpg at every size in SIZES_MP and to three coco_subjects photos."""
    prepare_inputs(testdata / "u2net_samples")
    FOLDER.mkdir(parents=True, exist_ok=True)
    sources = [OUT / f"bike-{mp}mp.jpg" for mp in SIZES_MP]
    coco = testdata / "coco_subjects" / "images"
    sources += [coco / f"{name}.jpg" for name in COCO_PHOTOS]
    for source in sources:
        link = FOLDER / source.name
        if not link.is_symlink():
            link.symlink_to(source.resolve())
    return sorted(FOLDER.iterdir())


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of `command` from /usr/bin/time -v."""
    done = subprocess.run(["/usr/bin/time", "-v", *command], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} failed:\n{done.stderr[-2000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", done.stderr)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    hours, minutes, seconds = (float(g or 0) for g in wall.groups())
    return hours * 3600 + minutes * 60 + seconds, int(rss.group(1)) / 1024


def stage_table(files: list[Path]) -> str:
    """ClearBG's per-photo stage timings (seconds), in process, one worker with every core."""
    from clearbg_app.inference import InferenceConfig, InferencePool, Job
    from clearbg_app.settings import get_settings

    pool = InferencePool(InferenceConfig(model_path=get_settings().model_path, workers=1))
    try:
        pool.process(Job(files[0].read_bytes(), max_pixels=200_000_000))  # warm-up
        lines = ["| photo | decode | inference | refine | encode | total |", "|---|---|---|---|---|---|"]
        for path in files:
            t = pool.process(Job(path.read_bytes(), max_pixels=200_000_000)).timings
            lines.append(f"| {path.stem} | {t.decode:.3f} | {t.inference:.3f} | {t.refine:.3f} | {t.encode:.3f} | {t.total:.3f} |")
        return "\n".join(lines)
    finally:
        pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-rembg", action="store_true")
    args = parser.parse_args()
    from clearbg_app.settings import get_settings

    model = get_settings().model_path
    files = build_folder(model.parents[1] / "testdata")
    env = {**os.environ, "U2NET_HOME": str(REMBG_HOME), "PYTHONPATH": str(ROOT)}
    contestants = {"ClearBG": [sys.executable, "-m", "clearbg_app.inference", "-q", "remove", str(FOLDER), "-o"]}
    if not args.skip_rembg:
        rembg = Path(rembg_python()).with_name("rembg")
        options = json.dumps({"model_path": str(rembg_model(model))})
        contestants["rembg"] = [str(rembg), "p", "-m", "u2net_custom", "-x", options, str(FOLDER)]
    rows: dict[str, list[tuple[float, float]]] = {name: [] for name in contestants}
    for round_ in range(args.rounds + 1):  # round 0 is an untimed warm-up (rembg's first start compiles numba code)
        for name, command in contestants.items():  # same background load for both, in turn
            target = Path(tempfile.mkdtemp(prefix=f"bench-cli-{name}-"))
            try:
                measured = timed([*command, str(target)], env)
                if round_:
                    rows[name].append(measured)
            finally:
                shutil.rmtree(target, ignore_errors=True)
    print(f"{os.cpu_count()} cores; {len(files)} photos ({', '.join(f.stem for f in files)}); model {model.name}\n")
    compared = "rembg" in contestants
    print("| round | " + " | ".join(f"{n} s | {n} peak RSS MB" for n in contestants) + (" | ClearBG/rembg |" if compared else " |"))
    print("|---|" + "---|---|" * len(contestants) + ("---|" if compared else ""))
    for index in range(args.rounds):
        cells = [f"{rows[n][index][0]:.2f} | {rows[n][index][1]:.0f}" for n in contestants]
        ratio = f" | {rows['ClearBG'][index][0] / rows['rembg'][index][0]:.2f}" if compared else ""
        print(f"| {index + 1} | " + " | ".join(cells) + ratio + " |")
    medians = {n: statistics.median(w for w, _ in rows[n]) for n in contestants}
    if compared:
        print(
            f"\nMedian wall time ClearBG/rembg: {medians['ClearBG'] / medians['rembg']:.2f} "
            f"({medians['ClearBG']:.2f} s vs {medians['rembg']:.2f} s)"
        )
    print("\nWhere ClearBG's time goes (seconds per photo, in process, after a warm-up):\n")
    print(stage_table(files))


if __name__ == "__main__":
    main()
