"""What the editor's strokes cost the server: rendering an edited cut-out against rendering the same
cut-out unedited (the baseline, measured in the same run), at preview and at full size.

    python bench/editor_strokes.py [--repeats 5] [--strokes 1,20,100]

The cut-out is the model's own (bike.jpg, 3000x2000, through the inference pool once); the strokes
are erase/restore paths of 40 points each in full-size coordinates, as the editor sends them.
Prints medians in ms and the ratio edited/unedited per size and stroke count."""

from __future__ import annotations

import argparse
import io
import random
import statistics
import time

from PIL import Image

from clearbg_app.inference import Cutout, InferenceConfig, InferencePool, Job, RenderOptions, render
from clearbg_app.services.image_edits import apply_strokes, parse_strokes
from clearbg_app.settings import PROJECT_ROOT

BIKE = PROJECT_ROOT.parent / "shared" / "testdata" / "u2net_samples" / "images" / "bike.jpg"


def strokes(count: int, size: tuple[int, int], seed: int = 1) -> list[dict]:
    rng = random.Random(seed)
    width, height = size
    made = []
    for index in range(count):
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        points = []
        for _ in range(40):
            x, y = x + rng.uniform(-30, 30), y + rng.uniform(-30, 30)
            points.append([x, y])
        made.append({"mode": "erase" if index % 3 else "restore", "radius": rng.uniform(10, 80), "soft": index % 2 == 0, "points": points})
    return made


def median_ms(work, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--strokes", default="1,20,100")
    args = parser.parse_args()
    data = BIKE.read_bytes()
    pool = InferencePool(InferenceConfig(workers=1, queue_size=2, warm_up=False))
    try:
        full = Image.open(io.BytesIO(pool.process(Job(data, max_pixels=50_000_000)).rendered.content)).convert("RGBA")
    finally:
        pool.close()
    original = Image.open(BIKE).convert("RGB")
    source = full.size
    print("| size | strokes | unedited ms | edited ms | ratio |\n|---|---|---|---|---|")
    for name, size in (("preview", (612, 408)), ("full", source)):
        rgba = full if size == source else full.resize(size, Image.Resampling.LANCZOS)
        cutout = Cutout(rgba.convert("RGB"), rgba.getchannel("A"))
        photo = original if size == source else original.resize(size, Image.Resampling.LANCZOS)
        options = RenderOptions(format="png")
        baseline = median_ms(lambda cutout=cutout, options=options: render(cutout, options), args.repeats)
        for count in (int(value) for value in args.strokes.split(",")):
            checked = parse_strokes(strokes(count, source), source)

            def edited(cutout=cutout, checked=checked, photo=photo, options=options):
                render(apply_strokes(cutout, checked, source_size=source, original=photo), options)

            edited_ms = median_ms(edited, args.repeats)
            print(f"| {name} {size[0]}x{size[1]} | {count} | {baseline:.0f} | {edited_ms:.0f} | {edited_ms / baseline:.2f} |")


if __name__ == "__main__":
    main()
