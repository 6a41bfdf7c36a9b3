"""The segmentation model: one ONNX Runtime session per model file, shared by all callers."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from clearbg_app.inference import registry
from clearbg_app.inference.config import InferenceConfig
from clearbg_app.inference.errors import InferenceError, ModelNotFound
from clearbg_app.inference.registry import BUILTIN, DEFAULT_MODEL, FAST_MODEL, MODEL_SETTINGS, ModelSpec

REDUCING_GAP = 3.0  # Pillow shrinks by an integer factor first; same result within 1/255, much faster


def check_model_file(path: Path, setting: str = MODEL_SETTINGS[DEFAULT_MODEL]) -> Path:
    """`path` if it is a file; otherwise one clear sentence on where we looked and what to set."""
    if not Path(path).is_file():
        raise ModelNotFound(f"Model file not found at {path}; put the model there or set {setting} to its path.")
    return Path(path)


def load_graph(path: Path, spec: ModelSpec, setting: str = MODEL_SETTINGS[DEFAULT_MODEL]):
    """The ONNX graph at `path`, checked against its registry entry: one clear line naming the file and
    the setting when it is missing, not a valid model, or takes another input shape."""
    import onnx

    check_model_file(path, setting)
    try:
        graph = onnx.load(str(path))
    except Exception as error:  # noqa: BLE001 - protobuf raises its own types
        raise InferenceError(f"The model file {path} is not a valid ONNX model ({type(error).__name__}); check {setting}.") from None
    inputs = [value for value in graph.graph.input if value.name not in {init.name for init in graph.graph.initializer}]
    dims = [dim.dim_value or dim.dim_param for dim in inputs[0].type.tensor_type.shape.dim] if inputs else []
    expected = (None, 3, spec.side, spec.side)  # batch: any; a symbolic dimension matches anything
    if len(dims) != 4 or any(isinstance(dim, int) and want and dim != want for dim, want in zip(dims, expected, strict=True)):
        shown = "x".join(str(dim) for dim in dims) or "no input"
        raise InferenceError(
            f"The model file {path} takes input {shown}, but {spec.name} needs 1x3x{spec.side}x{spec.side}; "
            f"check {setting}."
        )
    return graph


def verify_configured_models(config: InferenceConfig) -> list[str]:
    """Check the default model's file (and the fast model's, when fast mode is on) against its registry
    entry; one clear line per problem (missing, not ONNX, wrong input shape), each naming file and setting."""
    names = [DEFAULT_MODEL, FAST_MODEL] if config.enable_fast_mode else [DEFAULT_MODEL]
    problems = []
    for name in names:
        try:
            load_graph(registry.model_path(BUILTIN[name], config), BUILTIN[name], MODEL_SETTINGS[name])
        except InferenceError as error:
            problems.append(str(error))
    return problems


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-values))


def _minmax(values: np.ndarray) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


OUTPUT_OPS = {"sigmoid": _sigmoid, "minmax": _minmax}
CPU_ONLY = ("CPUExecutionProvider",)


def check_providers(providers: tuple[str, ...]) -> tuple[str, ...]:
    """`providers` if this onnxruntime build offers each of them; otherwise one clear sentence."""
    available = ort.get_available_providers()
    if missing := [name for name in providers if name not in available]:
        hint = " (CUDAExecutionProvider needs the onnxruntime-gpu package, CUDA and cuDNN)" if "CUDAExecutionProvider" in missing else ""
        raise InferenceError(
            f"CLEARBG_INFERENCE_PROVIDERS names {', '.join(missing)}, which this onnxruntime does not offer{hint}; "
            f"available: {', '.join(available)}."
        )
    return providers


class SegmentationModel:
    """A salient-object model: RGB in, a [0, 1] foreground mask at the model's side out.

    One instance holds one ORT session; `run` may be called from many threads at once."""

    def __init__(
        self, path: Path, *, threads: int = 0, spec: ModelSpec | None = None, setting: str = MODEL_SETTINGS[DEFAULT_MODEL],
        providers: tuple[str, ...] = CPU_ONLY,
    ) -> None:
        self.spec = spec or BUILTIN[DEFAULT_MODEL]
        self.path = Path(path)
        graph = load_graph(self.path, self.spec, setting)
        options = ort.SessionOptions()
        options.log_severity_level = 3  # the shipped u2netp has two harmless unused initializers
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        # Idle intra-op threads sleep instead of spinning: a session with several threads then costs
        # nothing while another worker's job has the cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.enable_mem_pattern = False  # measured: same speed, ~190 MB less peak memory for u2netp
        del graph
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=list(check_providers(providers)))
        except InferenceError:
            raise
        except Exception as error:  # noqa: BLE001 - ORT raises its own exception types
            raise InferenceError(f"The model file {self.path} could not be loaded ({error}); check {setting}.") from None
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        self.side = self.spec.side
        self.output_name = self.session.get_outputs()[0].name
        self._mean = np.array(self.spec.mean, dtype=np.float32)
        self._std = np.array(self.spec.std, dtype=np.float32)

    def prepare(self, rgb: Image.Image) -> np.ndarray:
        """The NCHW float32 tensor the model expects (resize, scale, mean/std)."""
        small = rgb.resize((self.side, self.side), Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
        values = np.asarray(small, dtype=np.float32)
        values /= max(float(values.max()), 1e-6) if self.spec.divide_by_max else 255.0
        values -= self._mean
        values /= self._std
        return values.transpose(2, 0, 1)[np.newaxis]

    def run(self, tensor: np.ndarray) -> np.ndarray:
        """The mask for a prepared tensor, post-processed into [0, 1]."""
        (prediction,) = self.session.run([self.output_name], {self.input_name: tensor})
        mask = prediction[0, 0].astype(np.float32, copy=False)
        for op in self.spec.output_ops:
            mask = OUTPUT_OPS[op](mask)
        return mask

    def predict(self, rgb: Image.Image) -> np.ndarray:
        """The foreground mask at the model's side, float32 in [0, 1]."""
        return self.run(self.prepare(rgb))


_models: dict[tuple[Path, int, ModelSpec | None, tuple[str, ...]], SegmentationModel] = {}
_models_lock = threading.Lock()


def load_model(
    path: Path, *, threads: int = 0, spec: ModelSpec | None = None, setting: str = MODEL_SETTINGS[DEFAULT_MODEL],
    providers: tuple[str, ...] = CPU_ONLY,
) -> SegmentationModel:
    """The shared model for `path`, loaded on first use, run by the first of `providers` that takes it."""
    key = (Path(path).resolve(), threads, spec, providers)
    with _models_lock:
        if key not in _models:
            _models[key] = SegmentationModel(key[0], threads=threads, spec=spec, setting=setting, providers=providers)
        return _models[key]
