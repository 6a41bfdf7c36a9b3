"""The segmentation model: one ONNX Runtime session per model file, shared by all callers."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from clearbg_app.inference.errors import ModelNotFound

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def check_model_file(path: Path) -> Path:
    """`path` if it is a file; otherwise one clear sentence on where we looked and what to set."""
    if not Path(path).is_file():
        raise ModelNotFound(
            f"Model file not found at {path}; put u2netp.onnx there or set CLEARBG_MODEL_PATH to its path."
        )
    return Path(path)


class SegmentationModel:
    """U^2-Net-style salient-object model: RGB in, a [0, 1] foreground mask out."""

    def __init__(self, path: Path, *, threads: int = 0) -> None:
        options = ort.SessionOptions()
        options.log_severity_level = 3  # the shipped u2netp has two harmless unused initializers
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        self.path = check_model_file(path)
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        self.side = int(model_input.shape[-1]) if isinstance(model_input.shape[-1], int) else 320
        self.output_name = self.session.get_outputs()[0].name

    def prepare(self, rgb: Image.Image) -> np.ndarray:
        """The NCHW float32 tensor the model expects (resize, divide by max, mean/std)."""
        small = np.asarray(rgb.resize((self.side, self.side), Image.Resampling.LANCZOS), dtype=np.float32)
        small /= max(float(small.max()), 1e-6)
        small -= MEAN
        small /= STD
        return small.transpose(2, 0, 1)[np.newaxis]

    def predict(self, rgb: Image.Image) -> np.ndarray:
        """The foreground mask at the model's side, float32 in [0, 1]."""
        (prediction,) = self.session.run([self.output_name], {self.input_name: self.prepare(rgb)})
        mask = prediction[0, 0]
        low, high = float(mask.min()), float(mask.max())
        return (mask - low) / (high - low) if high > low else np.zeros_like(mask)


_models: dict[tuple[Path, int], SegmentationModel] = {}
_models_lock = threading.Lock()


def load_model(path: Path, *, threads: int = 0) -> SegmentationModel:
    """The shared model for `path`, loaded on first use."""
    key = (Path(path).resolve(), threads)
    with _models_lock:
        if key not in _models:
            _models[key] = SegmentationModel(key[0], threads=threads)
        return _models[key]
