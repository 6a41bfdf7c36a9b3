"""The int8 builder's pieces: the cleaned float model is the same model, and the layers kept
in float are the first convolution and the seven output heads."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from clearbg_app.inference import SegmentationModel, load_model
from clearbg_app.inference.quantize import calibration_tensors, clean_float_model, sensitive_convolutions
from clearbg_app.inference.registry import BUILTIN, FAST_MODEL
from clearbg_app.settings import get_settings
from tests.inference.conftest import SAMPLE_IMAGES, subject_image

MODEL_PATH = get_settings().fast_model_path  # the int8 variant is derived from the fast model, u2netp


@pytest.fixture(scope="module")
def model():
    return load_model(MODEL_PATH, spec=BUILTIN[FAST_MODEL])


def test_cleaned_model_folds_weight_casts_and_predicts_the_same(tmp_path, model):
    cleaned = clean_float_model(MODEL_PATH)
    assert not any(node.op_type == "Cast" for node in cleaned.graph.node)
    assert all(node.name for node in cleaned.graph.node)
    path = tmp_path / "clean.onnx"
    onnx.save(cleaned, path)
    image = subject_image()
    np.testing.assert_allclose(SegmentationModel(path, spec=BUILTIN[FAST_MODEL]).predict(image), model.predict(image), atol=1e-4)


def test_sensitive_convolutions_are_the_first_and_the_heads():
    cleaned = clean_float_model(MODEL_PATH)
    names = sensitive_convolutions(cleaned)
    convolutions = [node.name for node in cleaned.graph.node if node.op_type == "Conv"]
    assert len(names) == 8 == len(set(names)) and names[0] == convolutions[0]
    assert convolutions[-1] in names  # the fusion convolution behind d0


def test_calibration_uses_four_views_per_photo(model):
    tensors = calibration_tensors(SAMPLE_IMAGES[:2], model)
    assert len(tensors) == 8 and all(t.shape == (1, 3, 320, 320) for t in tensors)
    assert not np.allclose(tensors[0], tensors[1])
