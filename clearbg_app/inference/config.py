"""Inference configuration: one frozen dataclass with defaults that run on a small machine."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from clearbg_app.settings import DEFAULT_MODEL_PATH, PROJECT_ROOT

DEFAULT_MODELS_DIR = PROJECT_ROOT / "data" / "models"
DEFAULT_CALIBRATION_DIR = DEFAULT_MODEL_PATH.parents[1] / "testdata" / "u2net_samples" / "images"
FAST_MODEL_FILENAME = "u2netp-int8.onnx"


@dataclass(frozen=True)
class InferenceConfig:
    """Where the models are and how hard the pool may work.

    Defaults measured on the 2-core build machine (bench/pool_sizes.py, bench/README.md):
    one single-threaded worker per core served a burst of 1 MP photos 35% faster than one
    worker using both cores (decoding, refinement and encoding of one image overlap the
    inference of another), with a lower median latency. One worker with every core gives
    the lowest latency for a lone request, so the pool also keeps a session with every core
    and gives it to a job that arrives while no other is in flight (bench/api_load.py: N=1
    throughput +38% on 2 cores).
    """

    model_path: Path = DEFAULT_MODEL_PATH  # the default model (u2netp)
    models_dir: Path = DEFAULT_MODELS_DIR  # downloads, registered models, the derived int8 model
    workers: int = 0  # images processed at the same time; 0 = one per core
    intra_op_threads: int = 0  # ORT threads per inference; 0 = cores // workers
    queue_size: int = 8  # requests waiting beyond the busy workers before "busy" is answered
    web_reserved: int = 4  # of those queue slots, kept for web uploads (at most half; API clients cannot fill them)
    warm_up: bool = True  # run one inference per model when the pool starts
    enable_fast_mode: bool = False  # the int8 model; see bench/README.md for why it is off
    calibration_dir: Path = DEFAULT_CALIBRATION_DIR  # photos that calibrate the int8 model
    providers: tuple[str, ...] = ("CPUExecutionProvider",)  # ONNX Runtime execution providers, in order of preference

    @property
    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1

    @property
    def threads_per_worker(self) -> int:
        """Intra-op threads for each session: explicit, or the cores shared among workers."""
        return self.intra_op_threads or max(1, (os.cpu_count() or 1) // self.worker_count)

    @property
    def lone_threads(self) -> int:
        """Threads for a job that has the pool to itself: every core, or 0 when the workers' sessions
        already use them all (then there is no separate lone session)."""
        cores = os.cpu_count() or 1
        return cores if self.threads_per_worker < cores else 0

    @property
    def fast_model_path(self) -> Path:
        return self.models_dir / FAST_MODEL_FILENAME

    @classmethod
    def from_settings(cls, settings) -> InferenceConfig:
        """The configuration from the app's settings (`clearbg_app.settings.Settings`)."""
        return cls(
            model_path=settings.model_path,
            models_dir=settings.models_dir or settings.data_dir / "models",
            workers=settings.inference_workers,
            intra_op_threads=settings.inference_threads,
            queue_size=settings.inference_queue_size,
            web_reserved=settings.inference_web_reserved,
            warm_up=settings.inference_warm_up,
            enable_fast_mode=settings.enable_fast_mode,
            providers=settings.inference_provider_list,
        )
