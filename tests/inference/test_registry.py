"""Model registry: built-in entries, custom models by path, downloads with checksums, and
the normalisation/output variants, checked on tiny ONNX models built here."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from clearbg_app.inference import InferenceConfig, InferenceError, ModelDownloadError, ModelNotFound, SegmentationModel
from clearbg_app.inference.model import verify_configured_models
from clearbg_app.inference.registry import (
    BUILTIN,
    DEFAULT_MODEL,
    FAST_MODEL,
    ModelSpec,
    all_models,
    available,
    download,
    get_spec,
    model_path,
    register_custom,
)
from clearbg_app.settings import FAST_MODEL_PATH
from tests.inference.conftest import MODEL_PATH, subject_image, tiny_onnx_model

FAMILY = {"u2netp", "u2net", "u2net_human_seg", "silueta", "isnet-general-use",
          "birefnet-general", "birefnet-general-lite", "birefnet-portrait"}


@pytest.fixture
def config(tmp_path):
    return InferenceConfig(model_path=MODEL_PATH, models_dir=tmp_path / "models")


def test_registry_knows_the_rembg_family_with_sources(config):
    assert FAMILY <= set(BUILTIN)
    for spec in BUILTIN.values():
        assert spec.url.startswith("https://") and spec.checksum.startswith("md5:")
        assert spec.side in (320, 1024)
    assert BUILTIN["isnet-general-use"].std == (1.0, 1.0, 1.0)
    assert BUILTIN["birefnet-general"].output_ops[0] == "sigmoid"


def test_default_and_fast_models_are_the_shared_files(config):
    assert DEFAULT_MODEL == "u2net" and FAST_MODEL == "u2netp"
    assert model_path(get_spec("u2net", config), config) == MODEL_PATH
    assert model_path(get_spec("u2netp", config), config) == config.fast_model_path == FAST_MODEL_PATH
    assert model_path(get_spec("silueta", config), config) == config.models_dir / "silueta.onnx"
    assert available(config) == ["u2net", "u2netp"]


def test_model_file_of_the_wrong_shape_is_one_clear_line(config, tmp_path):
    wrong = tiny_onnx_model(tmp_path / "tiny.onnx", side=8)
    problems = verify_configured_models(replace(config, fast_model_path=wrong))
    assert problems == [f"The model file {wrong} takes input 1x3x8x8, but u2netp needs 1x3x320x320; check CLEARBG_FAST_MODEL_PATH."]
    with pytest.raises(InferenceError, match="CLEARBG_MODEL_PATH"):
        SegmentationModel(wrong)


def test_unknown_model_names_the_known_ones(config):
    with pytest.raises(ModelNotFound, match="u2netp"):
        get_spec("nope", config)


def test_custom_model_registered_by_path_persists_and_runs(config):
    spec = register_custom("mine", MODEL_PATH, config)
    assert spec.side == 320 and spec.path == MODEL_PATH.resolve()
    reloaded = all_models(config)["mine"]  # read back from the models dir
    assert reloaded == spec
    mask = SegmentationModel(model_path(reloaded, config), spec=reloaded).predict(subject_image())
    assert mask.shape == (320, 320) and mask.max() == pytest.approx(1.0)


def test_custom_model_cannot_shadow_or_point_nowhere(config, tmp_path):
    with pytest.raises(Exception, match="built-in"):
        register_custom("u2net", MODEL_PATH, config)
    with pytest.raises(ModelNotFound):
        register_custom("ghost", tmp_path / "missing.onnx", config)


def _served_spec(tmp_path, payload: bytes, checksum: str) -> ModelSpec:
    source = tmp_path / "upstream.onnx"
    source.write_bytes(payload)
    return ModelSpec("served", 320, url=source.as_uri(), checksum=checksum)


def test_download_verifies_the_checksum(config, tmp_path):
    payload = MODEL_PATH.read_bytes()
    good = _served_spec(tmp_path, payload, "md5:" + hashlib.md5(payload).hexdigest())
    target = download(good, config, progress=False)
    assert target.read_bytes() == payload
    bad = _served_spec(tmp_path, payload, "md5:" + "0" * 32)
    target.unlink()
    with pytest.raises(ModelDownloadError, match="checksum") as error:
        download(bad, config, progress=False)
    assert "\n" not in str(error.value)
    assert not target.exists() and not list(config.models_dir.glob("*.part"))


def test_download_offline_fails_with_one_line(config):
    spec = ModelSpec("offline", 320, url="http://127.0.0.1:9/offline.onnx", checksum="md5:" + "0" * 32)
    with pytest.raises(ModelDownloadError, match="Could not download offline") as error:
        download(spec, config, progress=False, timeout=5)
    assert "\n" not in str(error.value)


def _tensor_seen(tmp_path, spec: ModelSpec, image: Image.Image) -> np.ndarray:
    model = SegmentationModel(tiny_onnx_model(tmp_path / f"{spec.name}.onnx"), spec=spec)
    return model.predict(image)


@pytest.mark.parametrize("divide_by_max", [True, False])
def test_normalisation_variants_reach_the_model(tmp_path, divide_by_max):
    image = Image.new("RGB", (8, 8), (100, 50, 200))
    spec = ModelSpec("raw", 8, mean=(0.5, 0.5, 0.5), std=(0.25, 1.0, 1.0),
                     divide_by_max=divide_by_max, output_ops=())
    red = _tensor_seen(tmp_path, spec, image)
    scale = 200 if divide_by_max else 255
    np.testing.assert_allclose(red, (100 / scale - 0.5) / 0.25, rtol=1e-5)


def test_sigmoid_then_minmax_output(tmp_path):
    image = Image.new("RGB", (8, 8), (0, 0, 0))
    image.paste((255, 0, 0), (0, 0, 4, 8))
    sigmoid_only = ModelSpec("sig", 8, mean=(0, 0, 0), std=(1, 1, 1), output_ops=("sigmoid",))
    values = _tensor_seen(tmp_path, sigmoid_only, image)
    assert values[:, 0] == pytest.approx(1 / (1 + np.exp(-1.0)), rel=1e-4)
    assert values[:, 7] == pytest.approx(0.5, rel=1e-4)
    scaled = _tensor_seen(tmp_path, ModelSpec("sigmm", 8, mean=(0, 0, 0), std=(1, 1, 1),
                                              output_ops=("sigmoid", "minmax")), image)
    assert scaled.min() == 0.0 and scaled.max() == pytest.approx(1.0)


def test_model_with_dynamic_side_uses_the_spec(tmp_path):
    import onnx

    path = tiny_onnx_model(tmp_path / "dyn.onnx", side=16)
    graph = onnx.load(path)
    for value in (*graph.graph.input, *graph.graph.output):
        value.type.tensor_type.shape.dim[2].dim_param = "h"
        value.type.tensor_type.shape.dim[3].dim_param = "w"
    onnx.save(graph, path)
    model = SegmentationModel(path, spec=ModelSpec("dyn", 24))
    assert model.side == 24 and model.predict(subject_image()).shape == (24, 24)


def test_invalid_onnx_file_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"not a model")
    with pytest.raises(Exception, match="not a valid ONNX model"):
        SegmentationModel(path)
