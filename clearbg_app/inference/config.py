"""Inference configuration: one frozen dataclass with defaults that run on a small machine."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from clearbg_app.settings import DEFAULT_MODEL_PATH, FAST_MODEL_PATH, PROJECT_ROOT

DEFAULT_MODELS_DIR = PROJECT_ROOT / "data" / "models"
DEFAULT_CALIBRATION_DIR = DEFAULT_MODEL_PATH.parents[1] / "testdata" / "u2net_samples" / "images"
INT8_MODEL_FILENAME = "u2netp-int8.onnx"


@dataclass(frozen=True)
class InferenceConfig:
    """Where the models are and how hard the pool may work.

    A process holds each model once: one ONNX Runtime session per model, shared by every worker
    thread (`InferenceSession.run` is thread-safe), with `session_threads` intra-op threads. Two
    workers per core pair overlap one image's decoding, refinement and encoding with another's
    inference (bench/pool_sizes.py, bench/README.md).
    """

    model_path: Path = DEFAULT_MODEL_PATH  # the default model (u2net)
    fast_model_path: Path = FAST_MODEL_PATH  # fast mode's model (u2netp)
    models_dir: Path = DEFAULT_MODELS_DIR  # downloads, registered models, the derived int8 model
    workers: int = 0  # images processed at the same time; 0 = one per core
    intra_op_threads: int = 0  # ORT threads of each shared session; 0 = every core
    queue_size: int = 8  # requests waiting beyond the busy workers before "busy" is answered
    web_reserved: int = 4  # of those queue slots, kept for web uploads (at most half; API clients cannot fill them)
    warm_up: bool = True  # run one inference per loaded model when the pool starts
    enable_fast_mode: bool = True  # offer fast mode (u2netp), loaded on first use
    calibration_dir: Path = DEFAULT_CALIBRATION_DIR  # photos that calibrate the int8 model
    providers: tuple[str, ...] = ("CPUExecutionProvider",)  # ONNX Runtime execution providers, in order of preference

    @property
    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1

    @property
    def session_threads(self) -> int:
        """Intra-op threads of each model's one session: explicit, or every core."""
        return self.intra_op_threads or os.cpu_count() or 1

    @property
    def int8_model_path(self) -> Path:
        """Where `models build-fast` writes the int8 variant of the fast model (off: bench/README.md)."""
        return self.models_dir / INT8_MODEL_FILENAME

    @classmethod
    def from_settings(cls, settings) -> InferenceConfig:
        """The configuration from the app's settings (`clearbg_app.settings.Settings`)."""
        return cls(
            model_path=settings.model_path,
            fast_model_path=settings.fast_model_path,
            models_dir=settings.models_dir or settings.data_dir / "models",
            workers=settings.inference_workers,
            intra_op_threads=settings.inference_threads,
            queue_size=settings.inference_queue_size,
            web_reserved=settings.inference_web_reserved,
            warm_up=settings.inference_warm_up,
            enable_fast_mode=settings.enable_fast_mode,
            providers=settings.inference_provider_list,
        )
