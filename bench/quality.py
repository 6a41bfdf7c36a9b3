"""Cut-out quality against human masks: the bare model (A), rembg on the same model file (B), and
ClearBG's default (C), quality (D) and fast (E) modes, side by side in one run.

    python bench/quality.py [--skip-rembg] [--set coco|samples|both]     (make bench-quality)

On `../shared/testdata/coco_subjects` (real photos, human-drawn masks) it prints IoU at 0.5, MAE and
edge MAE (the set's README defines them) per kind and overall, for each of two fixed halves (alternate
rows of MANIFEST.tsv: "tune" holds rows 0, 2, 4..., "check" rows 1, 3, 5...; tune on one, report both),
and a paired comparison of C, D and E against the bare model (mean difference, photos better/worse).
A second table scores the U^2-Net samples against `u2net_reference` (the large model's own outputs:
a regression check of the pipeline, not a quality target). rembg 2.0.86 runs in bench/.rembg-venv.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from bench.inference import REMBG_HOME, rembg_model, rembg_python  # noqa: E402
from clearbg_app.inference import CutoutOptions, cut_out, decode_image, load_model  # noqa: E402
from clearbg_app.inference.quality import iou, mae  # noqa: E402
from clearbg_app.inference.registry import BUILTIN, DEFAULT_MODEL, FAST_MODEL, file_checksum  # noqa: E402
from clearbg_app.settings import get_settings  # noqa: E402

TESTDATA = get_settings().model_path.parents[1] / "testdata"
COCO = TESTDATA / "coco_subjects"
SAMPLES = TESTDATA / "u2net_samples"
EDGE_WINDOW = 17  # the band within 8 px of the mask's edge
LABELS = {
    "A": "A bare u2net (bilinear mask)",
    "B": "B rembg remove(), u2net",
    "C": "C ClearBG default",
    "D": "D ClearBG quality",
    "E": "E ClearBG fast (u2netp)",
    "Ap": "A' bare u2netp",
}
HALVES = ("tune", "check")


@dataclass(frozen=True)
class Pair:
    name: str
    kind: str
    half: str
    image: Path
    mask: Path


def coco_pairs() -> list[Pair]:
    """coco_subjects in MANIFEST order, split into the two fixed halves by alternate rows."""
    with open(COCO / "MANIFEST.tsv", newline="") as file:
        rows = list(csv.DictReader(file, delimiter="\t"))
    return [
        Pair(row["name"], row["kind"], HALVES[index % 2], COCO / "images" / f"{row['name']}.jpg", COCO / "masks" / f"{row['name']}.png")
        for index, row in enumerate(rows)
    ]


def sample_pairs() -> list[Pair]:
    return [
        Pair(path.stem, "sample", "all", path, SAMPLES / "u2net_reference" / f"{path.stem}.png")
        for path in sorted((SAMPLES / "images").iterdir())
    ]


def edge_band(truth: np.ndarray) -> np.ndarray:
    """Pixels within 8 px of the mask's edge: max filter(17) - min filter(17) is non-zero."""
    image = Image.fromarray((truth * 255).astype(np.uint8))
    high = np.asarray(image.filter(ImageFilter.MaxFilter(EDGE_WINDOW)))
    low = np.asarray(image.filter(ImageFilter.MinFilter(EDGE_WINDOW)))
    return high != low


def scores(alpha: np.ndarray, truth: np.ndarray, band: np.ndarray) -> dict[str, float]:
    edge = float(np.abs(alpha[band] - truth[band]).mean()) if band.any() else 0.0
    return {"iou": iou(alpha, truth), "mae": mae(alpha, truth), "edge": edge}


PASSES = BENCH / "out" / "quality-passes.npz"  # model passes, kept between runs


class SharedPasses:
    """A model whose passes are remembered by (model file checksum, input tensor hash): A, C and D share
    the identical first pass, and a rerun after a post-processing change runs no model at all. The
    remembered passes are the model's own output for that exact tensor, so the scores are unchanged."""

    def __init__(self, model, store: dict[str, np.ndarray]) -> None:
        self.model, self.store = model, store
        self.digest = file_checksum(Path(model.path), "sha256")[7:23]

    def __getattr__(self, name):
        return getattr(self.model, name)

    def key(self, tensor: np.ndarray) -> str:
        return f"{self.digest}:{hashlib.blake2b(np.ascontiguousarray(tensor).tobytes(), digest_size=16).hexdigest()}"

    def run(self, tensor: np.ndarray) -> np.ndarray:
        key = self.key(tensor)
        if key not in self.store:
            self.store[key] = self.model.run(tensor)
        return self.store[key]

    def predict(self, rgb: Image.Image) -> np.ndarray:
        return self.run(self.prepare(rgb))


def load_passes() -> dict[str, np.ndarray]:
    return dict(np.load(PASSES)) if PASSES.is_file() else {}


def save_passes(store: dict[str, np.ndarray]) -> None:
    PASSES.parent.mkdir(exist_ok=True)
    np.savez(PASSES, **store)


def bare_alpha(rgb: Image.Image, model) -> np.ndarray:
    """A: the model's mask resized bilinearly to the photo, nothing else."""
    mask = model.predict(rgb)
    return np.asarray(Image.fromarray(mask, mode="F").resize(rgb.size, Image.Resampling.BILINEAR)).clip(0, 1)


def clearbg_alphas(pairs: list[Pair]) -> dict[str, dict[str, np.ndarray]]:
    """A, A', C, D, E per photo."""
    settings = get_settings()
    store = load_passes()
    large = SharedPasses(load_model(settings.model_path, spec=BUILTIN[DEFAULT_MODEL]), store)
    small = SharedPasses(load_model(settings.fast_model_path, spec=BUILTIN[FAST_MODEL], setting="CLEARBG_FAST_MODEL_PATH"), store)
    known = len(store)
    results: dict[str, dict[str, np.ndarray]] = {}
    for index, pair in enumerate(pairs):
        decoded = decode_image(pair.image.read_bytes(), max_pixels=200_000_000)
        alpha = lambda options, model=large, decoded=decoded: np.asarray(cut_out(decoded, model, options).alpha, dtype=np.float32) / 255  # noqa: E731
        results[pair.name] = {
            "A": bare_alpha(decoded.rgb, large),
            "Ap": bare_alpha(decoded.rgb, small),
            "C": alpha(CutoutOptions()),
            "D": alpha(CutoutOptions(quality=True)),
            "E": alpha(CutoutOptions(), small),
        }
        print(f"  {index + 1}/{len(pairs)} {pair.name}", file=sys.stderr, flush=True)
    if len(store) > known:
        save_passes(store)
    return results


REMBG_SCRIPT = """
import sys, json
from PIL import Image
from rembg import new_session, remove
session = new_session("u2net_custom", model_path=sys.argv[1])
for source, target in json.loads(sys.argv[2]):
    remove(Image.open(source), session=session).split()[-1].save(target)
"""


REMBG_OUT = BENCH / "out" / "rembg-u2net"  # rembg's cut-outs, kept between runs (same model file)


def start_rembg(pairs: list[Pair]) -> tuple[subprocess.Popen | None, list[tuple[str, str]]]:
    """B: rembg's own `remove()` (image in, RGBA out) on the same u2net file, in its own process while
    ClearBG's contestants are computed; its alpha channels land in REMBG_OUT (reused when all there)."""
    REMBG_OUT.mkdir(parents=True, exist_ok=True)
    jobs = [(str(pair.image), str(REMBG_OUT / f"{pair.name}.png")) for pair in pairs]
    if all(Path(target).is_file() for _, target in jobs):
        return None, jobs
    env = {**os.environ, "U2NET_HOME": str(REMBG_HOME)}
    model = rembg_model(get_settings().model_path)
    return subprocess.Popen([rembg_python(), "-c", REMBG_SCRIPT, str(model), json.dumps(jobs)], env=env), jobs


def finish_rembg(process: subprocess.Popen | None, jobs, pairs: list[Pair]) -> dict[str, np.ndarray]:
    if process is not None and process.wait() != 0:
        raise SystemExit("rembg failed; rerun with --skip-rembg to leave B out")
    return {pair.name: np.asarray(Image.open(target), dtype=np.float32) / 255 for pair, (_, target) in zip(pairs, jobs, strict=True)}


def truth_of(pair: Pair, size: tuple[int, int]) -> np.ndarray:
    mask = Image.open(pair.mask).convert("L")
    if mask.size != size:
        mask = mask.resize(size, Image.Resampling.BILINEAR)
    return np.asarray(mask, dtype=np.float32) / 255


def score_all(pairs: list[Pair], skip_rembg: bool) -> dict[str, dict[str, dict[str, float]]]:
    """contestant -> photo -> metric."""
    rembg = None if skip_rembg else start_rembg(pairs)
    alphas = clearbg_alphas(pairs)
    if rembg:
        for name, alpha in finish_rembg(*rembg, pairs).items():
            alphas[name]["B"] = alpha
    table: dict[str, dict[str, dict[str, float]]] = {}
    for pair in pairs:
        truth = band = None
        for kind, alpha in alphas[pair.name].items():
            if truth is None or truth.shape != alpha.shape:
                truth = truth_of(pair, alpha.shape[::-1])
                band = edge_band(truth)
            table.setdefault(kind, {})[pair.name] = scores(alpha, truth, band)
    return table


def _mean(values) -> float:
    values = list(values)
    return float(np.mean(values)) if values else float("nan")


def summary_table(table, pairs: list[Pair], groups: list[tuple[str, list[Pair]]]) -> str:
    contestants = [kind for kind in LABELS if kind in table]
    header = "| contestant | " + " | ".join(f"{label} IoU / MAE / edge" for label, _ in groups) + " |"
    lines = [header, "|---|" + "---|" * len(groups)]
    for kind in contestants:
        cells = []
        for _, members in groups:
            rows = [table[kind][pair.name] for pair in members]
            cells.append(" / ".join(f"{_mean(row[m] for row in rows):.4f}" for m in ("iou", "mae", "edge")))
        lines.append(f"| {LABELS[kind]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired_table(table, groups: list[tuple[str, list[Pair]]], base: str = "A") -> str:
    lines = [f"| vs {base} | group | mean dIoU | better / worse (IoU) | mean dMAE | better / worse (MAE) |", "|---|---|---|---|---|---|"]
    for kind in ("B", "C", "D", "E"):
        if kind not in table:
            continue
        reference = "Ap" if kind == "E" and "Ap" in table else base
        for label, members in groups:
            d_iou = [table[kind][p.name]["iou"] - table[reference][p.name]["iou"] for p in members]
            d_mae = [table[kind][p.name]["mae"] - table[reference][p.name]["mae"] for p in members]
            lines.append(
                f"| {LABELS[kind]} (vs {reference}) | {label} | {_mean(d_iou):+.4f} | "
                f"{sum(d > 1e-6 for d in d_iou)} / {sum(d < -1e-6 for d in d_iou)} | {_mean(d_mae):+.4f} | "
                f"{sum(d < -1e-6 for d in d_mae)} / {sum(d > 1e-6 for d in d_mae)} |"
            )
    return "\n".join(lines)


def coco_report(skip_rembg: bool) -> str:
    pairs = coco_pairs()
    table = score_all(pairs, skip_rembg)
    halves = [(f"{half} half ({sum(p.half == half for p in pairs)})", [p for p in pairs if p.half == half]) for half in HALVES]
    kinds = sorted({p.kind for p in pairs})
    by_kind = [(f"{kind} ({sum(p.kind == kind for p in pairs)})", [p for p in pairs if p.kind == kind]) for kind in kinds]
    everything = [(f"all ({len(pairs)})", pairs)]
    return "\n\n".join([
        "### coco_subjects: halves and overall (IoU at 0.5 / MAE / edge MAE; higher IoU, lower MAE is better)",
        summary_table(table, pairs, halves + everything),
        "### coco_subjects: per kind",
        summary_table(table, pairs, by_kind),
        "### coco_subjects: paired comparison per photo (E against A')",
        paired_table(table, halves + everything),
    ])  # fmt: skip


def samples_report(skip_rembg: bool) -> str:
    pairs = sample_pairs()
    table = score_all(pairs, skip_rembg)
    table.pop("Ap", None)
    lines = ["### u2net_samples against u2net_reference (the large model's outputs: a regression check)",
             "| contestant | mean IoU | min IoU | mean MAE |", "|---|---|---|---|"]  # fmt: skip
    for kind in (k for k in LABELS if k in table):
        rows = list(table[kind].values())
        lines.append(f"| {LABELS[kind]} | {_mean(r['iou'] for r in rows):.4f} | {min(r['iou'] for r in rows):.4f} | {_mean(r['mae'] for r in rows):.4f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-rembg", action="store_true")
    parser.add_argument("--set", choices=("coco", "samples", "both"), default="both")
    args = parser.parse_args()
    reports = []
    if args.set in ("coco", "both"):
        reports.append(coco_report(args.skip_rembg))
    if args.set in ("samples", "both"):
        reports.append(samples_report(args.skip_rembg))
    print("\n\n".join(reports))


if __name__ == "__main__":
    main()
