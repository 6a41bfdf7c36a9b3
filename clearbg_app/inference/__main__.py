"""Command line: `python -m clearbg_app.inference remove INPUT... -o OUT` and `... models ...`."""

from __future__ import annotations

import argparse
import sys
from collections import deque
from pathlib import Path

from clearbg_app.inference import registry
from clearbg_app.inference.config import InferenceConfig
from clearbg_app.inference.errors import InferenceError
from clearbg_app.inference.pipeline import CutoutOptions
from clearbg_app.inference.pool import MODES, InferencePool, Job, ServerBusy
from clearbg_app.inference.render import FORMATS, RenderOptions

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif"}


def _config() -> InferenceConfig:
    from clearbg_app.settings import get_settings

    return InferenceConfig.from_settings(get_settings())


def _inputs(paths: list[Path]) -> list[Path]:
    """Files as given; folders expanded to the images directly inside them, sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            found.append(path)
    return found


def _colour(text: str) -> tuple[int, int, int]:
    text = text.lstrip("#")
    if len(text) != 6:
        raise argparse.ArgumentTypeError("use a hex colour like ffffff")
    return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)


def remove(args: argparse.Namespace, config: InferenceConfig) -> int:
    from tqdm import tqdm

    if args.mode == "fast":
        config = InferenceConfig(**{**config.__dict__, "enable_fast_mode": True})
    pool = InferencePool(config)
    if args.model and args.model not in (available := pool.available_models()):
        pool.close()
        raise registry.ModelNotFound(f"No model called {args.model!r} here; available models: {', '.join(available)}.")
    render_options = RenderOptions(
        format="mask" if args.only_mask else args.format, background=args.background, crop=args.crop, margin=args.margin
    )
    cutout_options = CutoutOptions(post_process=args.post_process, alpha_matting=args.alpha_matting)
    max_pixels = int(args.max_megapixels * 1_000_000)
    args.output.mkdir(parents=True, exist_ok=True)
    failures: dict[Path, str] = {}  # reported at the end, in input order
    pending: deque = deque()  # (path, future), oldest first; the pool's queue bounds it

    def finish() -> None:
        path, future = pending.popleft()
        try:
            result = future.result()
        except InferenceError as error:
            failures[path] = str(error)
        else:
            (args.output / f"{path.stem}.{result.rendered.extension}").write_bytes(result.rendered.content)
        progress.update()

    paths = _inputs(args.inputs)
    with tqdm(total=len(paths), unit="image", disable=args.quiet) as progress:
        try:
            for path in paths:
                try:
                    job = Job(path.read_bytes(), max_pixels, mode=args.mode, model=args.model, cutout=cutout_options, render=render_options)
                except OSError as error:
                    failures[path] = error.strerror or str(error)
                    progress.update()
                    continue
                while True:
                    try:
                        pending.append((path, pool.submit(job)))
                        break
                    except ServerBusy:
                        finish()
            while pending:
                finish()
        finally:
            pool.close()
    for path in paths:
        if path in failures:
            print(f"{path}: {failures[path]}", file=sys.stderr)
    return 1 if failures else 0


def models(args: argparse.Namespace, config: InferenceConfig) -> int:
    if args.action == "list":
        roles = {registry.DEFAULT_MODEL: "default", registry.FAST_MODEL: "fast mode"}
        for name, spec in sorted(registry.all_models(config).items()):
            path = registry.model_path(spec, config)
            print(f"{name:24} side {spec.side:5}  {'present' if path.is_file() else 'absent '}  {roles.get(name, ''):9}  {path}")
    elif args.action == "download":
        path = registry.download(registry.get_spec(args.name, config), config, progress=not args.quiet)
        print(f"Downloaded {args.name} to {path}")
    elif args.action == "register":
        spec = registry.register_custom(args.name, args.path, config, like=args.like)
        print(f"Registered {spec.name} at {spec.path}")
    elif args.action == "build-fast":
        from clearbg_app.inference.quantize import agreement_with_official_masks, build_fast_model

        path = build_fast_model(config)
        scores = agreement_with_official_masks(path, config.calibration_dir.parent)
        worst = min(scores, key=lambda name: scores[name])
        verdict = "may be enabled" if scores[worst] >= 0.9 else "must stay off (needs IoU >= 0.9 on every sample)"
        print(f"Built {path}; IoU with the official masks: min {scores[worst]:.3f} ({worst}), "
              f"mean {sum(scores.values()) / len(scores):.3f}; fast mode {verdict}.")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m clearbg_app.inference")
    root.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    commands = root.add_subparsers(dest="command", required=True)
    cut = commands.add_parser("remove", help="remove the background of images and folders of images")
    cut.add_argument("inputs", nargs="+", type=Path)
    cut.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    cut.add_argument("--format", choices=FORMATS, default="png")
    cut.add_argument("--mode", choices=MODES, default="default", help="quality: slower, better edges; fast: u2netp")
    cut.add_argument("--model", help=f"a model from `models list` (default {registry.DEFAULT_MODEL}; fast mode {registry.FAST_MODEL})")
    cut.add_argument("--only-mask", action="store_true")
    cut.add_argument("--post-process", action="store_true", help="clean, nearly binary mask")
    cut.add_argument("--alpha-matting", action="store_true", help="re-estimate hair and fur edges (slow)")
    cut.add_argument("--crop", action="store_true", help="crop to the subject")
    cut.add_argument("--margin", type=float, default=0.0, help="with --crop: margin as a fraction of the subject")
    cut.add_argument("--background", type=_colour, help="hex colour behind the subject")
    cut.add_argument("--max-megapixels", type=float, default=100.0)
    cut.set_defaults(handler=remove)
    model_commands = commands.add_parser("models", help="list, download, register or build models")
    actions = model_commands.add_subparsers(dest="action", required=True)
    actions.add_parser("list")
    download = actions.add_parser("download")
    download.add_argument("name")
    register = actions.add_parser("register")
    register.add_argument("name")
    register.add_argument("path", type=Path)
    register.add_argument("--like", default=registry.DEFAULT_MODEL, help="built-in model it is fed and read like")
    actions.add_parser("build-fast", help="derive the int8 model from the fast model (u2netp)")
    model_commands.set_defaults(handler=models)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.handler(args, _config())
    except InferenceError as error:
        print(error, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
