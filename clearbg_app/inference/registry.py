"""The model registry: what each known ONNX model needs (input side, normalisation, output
post-ops), where it comes from, and custom models registered by path."""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from clearbg_app.inference.config import InferenceConfig
from clearbg_app.inference.errors import InferenceError, ModelNotFound

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RELEASE = "https://github.com/danielgatis/rembg/releases/download/v0.0.0/"
CUSTOM_REGISTRY_FILE = "registry.json"


class ModelDownloadError(InferenceError):
    """A model could not be downloaded, or the download did not match its checksum."""


@dataclass(frozen=True)
class ModelSpec:
    """How to feed a model and read its answer."""

    name: str
    side: int  # square input side in pixels
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    divide_by_max: bool = True  # scale by the image's maximum (rembg, U^2-Net) rather than by 255
    output_ops: tuple[str, ...] = ("minmax",)  # applied in order: "sigmoid", "minmax"
    url: str | None = None
    checksum: str | None = None  # "md5:<hex>" or "sha256:<hex>"
    path: Path | None = None  # set for custom models registered by path

    @property
    def filename(self) -> str:
        return f"{self.name}.onnx"


def _u2net_family(name: str, md5: str) -> ModelSpec:
    return ModelSpec(name, 320, url=f"{RELEASE}{name}.onnx", checksum=f"md5:{md5}")


def _birefnet(name: str, upstream_file: str, md5: str) -> ModelSpec:
    return ModelSpec(name, 1024, output_ops=("sigmoid", "minmax"), url=f"{RELEASE}{upstream_file}", checksum=f"md5:{md5}")


BUILTIN: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        _u2net_family("u2netp", "8e83ca70e441ab06c318d82300c84806"),
        _u2net_family("u2net", "60024c5c889badc19c04ad937298a77b"),
        _u2net_family("u2net_human_seg", "c09ddc2e0104f800e3e1bb4652583d1f"),
        _u2net_family("silueta", "55e59e0d8062d2f5d013f4725ee84782"),
        ModelSpec(
            "isnet-general-use",
            1024,
            mean=(0.5, 0.5, 0.5),
            std=(1.0, 1.0, 1.0),
            url=f"{RELEASE}isnet-general-use.onnx",
            checksum="md5:fc16ebd8b0c10d971d3513d564d01e29",
        ),
        _birefnet("birefnet-general", "BiRefNet-general-epoch_244.onnx", "7a35a0141cbbc80de11d9c9a28f52697"),
        _birefnet(
            "birefnet-general-lite",
            "BiRefNet-general-bb_swin_v1_tiny-epoch_232.onnx",
            "4fab47adc4ff364be1713e97b7e66334",
        ),
        _birefnet("birefnet-portrait", "BiRefNet-portrait-epoch_150.onnx", "c3a64a6abf20250d090cd055f12a3b67"),
    )
}
# The large U^2-Net is the default: on real photos with human masks it beats u2netp clearly (IoU +0.06
# on a held-out set, ../shared/models/README.md) at ~2.7x the model time; u2netp is fast mode.
DEFAULT_MODEL = "u2net"
FAST_MODEL = "u2netp"
MODEL_SETTINGS = {DEFAULT_MODEL: "CLEARBG_MODEL_PATH", FAST_MODEL: "CLEARBG_FAST_MODEL_PATH"}


def _custom_registry_path(config: InferenceConfig) -> Path:
    return config.models_dir / CUSTOM_REGISTRY_FILE


def _load_custom(config: InferenceConfig) -> dict[str, ModelSpec]:
    path = _custom_registry_path(config)
    if not path.is_file():
        return {}
    entries = json.loads(path.read_text())
    return {
        name: ModelSpec(
            **{**entry, "mean": tuple(entry["mean"]), "std": tuple(entry["std"]),
               "output_ops": tuple(entry["output_ops"]), "path": Path(entry["path"])}
        )
        for name, entry in entries.items()
    }


def all_models(config: InferenceConfig) -> dict[str, ModelSpec]:
    """Built-in and custom models by name (a custom entry may not shadow a built-in one)."""
    return {**_load_custom(config), **BUILTIN}


def get_spec(name: str, config: InferenceConfig) -> ModelSpec:
    """The spec called `name`; one clear sentence listing the known names otherwise."""
    models = all_models(config)
    if name not in models:
        raise ModelNotFound(f"No model called {name!r}; known models: {', '.join(sorted(models))}.")
    return models[name]


def model_path(spec: ModelSpec, config: InferenceConfig) -> Path:
    """Where the model's file lives: its registered path, the configured default, or the models dir."""
    if spec.path is not None:
        return spec.path
    if spec.name == DEFAULT_MODEL:
        return config.model_path
    if spec.name == FAST_MODEL:
        return config.fast_model_path
    return config.models_dir / spec.filename


def file_checksum(path: Path, algorithm: str) -> str:
    """`algorithm:hexdigest` of the file at `path`, read in 1 MB chunks (the benchmark keys its cached
    model passes by it)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return f"{algorithm}:{digest.hexdigest()}"


def setting_for(spec: ModelSpec) -> str:
    """The setting that says where `spec`'s file is (for error messages)."""
    if spec.path is not None:
        return f"the registration of {spec.name} (models register)"
    return MODEL_SETTINGS.get(spec.name, "CLEARBG_MODELS_DIR")


def available(config: InferenceConfig) -> list[str]:
    """Names of the models whose files are present on this server, sorted."""
    return sorted(name for name, spec in all_models(config).items() if model_path(spec, config).is_file())


def register_custom(name: str, path: Path, config: InferenceConfig, *, like: str = DEFAULT_MODEL) -> ModelSpec:
    """Register the ONNX file at `path` as `name`, fed and read like the built-in model `like`."""
    if name in BUILTIN:
        raise InferenceError(f"{name!r} is a built-in model name; choose another name.")
    path = Path(path).resolve()
    if not path.is_file():
        raise ModelNotFound(f"Model file not found at {path}.")
    spec = replace(get_spec(like, config), name=name, url=None, checksum=None, path=path)
    entries = {n: s for n, s in _load_custom(config).items()}
    entries[name] = spec
    config.models_dir.mkdir(parents=True, exist_ok=True)
    serialised = {n: {**asdict(s), "path": str(s.path)} for n, s in entries.items()}
    _custom_registry_path(config).write_text(json.dumps(serialised, indent=2))
    return spec


def download(spec: ModelSpec, config: InferenceConfig, *, progress: bool = True, timeout: float = 30.0) -> Path:
    """Download `spec` into the models dir, verifying its checksum; the finished path."""
    if not spec.url:
        raise ModelDownloadError(f"Model {spec.name!r} has no download address.")
    target = config.models_dir / spec.filename
    config.models_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    algorithm = (spec.checksum or "sha256:").split(":", 1)[0]
    digest = hashlib.new(algorithm)
    try:
        with urllib.request.urlopen(spec.url, timeout=timeout) as response, open(partial, "wb") as file:
            total = int(response.headers.get("Content-Length") or 0) or None
            with _progress_bar(total, spec.filename, progress) as bar:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    file.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        partial.unlink(missing_ok=True)
        reason = getattr(error, "reason", error)
        raise ModelDownloadError(
            f"Could not download {spec.name} from {spec.url} ({reason}); check the connection, "
            f"or put the file at {target} by hand."
        ) from None
    actual = f"{algorithm}:{digest.hexdigest()}"
    if spec.checksum and actual != spec.checksum:
        partial.unlink(missing_ok=True)
        raise ModelDownloadError(
            f"The download of {spec.name} has checksum {actual}, expected {spec.checksum}; the file was discarded."
        )
    os.replace(partial, target)
    return target


def _progress_bar(total: int | None, label: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=label, unit="B", unit_scale=True, disable=not enabled, leave=False)
