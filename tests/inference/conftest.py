"""Fixtures for the inference tests: the shared model and samples, image builders, tiny ONNX models."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clearbg_app.inference import load_model
from clearbg_app.settings import get_settings

MODEL_PATH = get_settings().model_path
SAMPLES = MODEL_PATH.parents[1] / "testdata" / "u2net_samples"
SAMPLE_IMAGES = sorted((SAMPLES / "images").iterdir())
BIG_LIMIT = 100_000_000


@pytest.fixture(scope="session")
def model():
    return load_model(MODEL_PATH)


def encode(image: Image.Image, image_format: str = "PNG", **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **params)
    return buffer.getvalue()


def subject_image(size=(240, 180), background=(30, 160, 60)) -> Image.Image:
    """A plain background with a bright ellipse in the middle: a subject any model finds."""
    from PIL import ImageDraw

    image = Image.new("RGB", size, background)
    width, height = size
    ImageDraw.Draw(image).ellipse((width * 0.3, height * 0.2, width * 0.7, height * 0.8), fill=(250, 220, 40))
    return image


def reference_mask(folder: str, image_path: Path, size: tuple[int, int]) -> np.ndarray:
    """A reference mask as floats in [0, 1], resized to `size` when needed."""
    mask = Image.open(SAMPLES / folder / f"{image_path.stem}.png").convert("L")
    if mask.size != size:
        mask = mask.resize(size, Image.Resampling.BILINEAR)
    return np.asarray(mask, dtype=np.float32) / 255


def tiny_onnx_model(path: Path, side: int = 8, *, channel: int = 0) -> Path:
    """An ONNX model that returns one input channel as its [1, 1, side, side] output."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.zeros((1, 3, 1, 1), dtype=np.float32)
    weights[0, channel] = 1.0
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["out"])],
        "pick_channel",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, side, side])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 1, side, side])],
        [numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path
