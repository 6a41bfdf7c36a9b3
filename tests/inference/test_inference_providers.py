"""CLEARBG_INFERENCE_PROVIDERS picks ONNX Runtime's execution providers (CUDA on a GPU worker); a provider
this onnxruntime lacks stops start-up with one clear line instead of falling back silently."""

from __future__ import annotations

import onnxruntime as ort
import pytest

from clearbg_app.inference import InferenceConfig, InferenceError
from clearbg_app.inference.model import SegmentationModel, check_providers
from clearbg_app.settings import DEFAULT_MODEL_PATH, Settings
from tests.factories import run_check


def test_cpu_by_default():
    assert Settings().inference_provider_list == ("CPUExecutionProvider",)
    assert InferenceConfig.from_settings(Settings()).providers == ("CPUExecutionProvider",)
    assert SegmentationModel(DEFAULT_MODEL_PATH).session.get_providers() == ["CPUExecutionProvider"]


def test_the_setting_is_a_list_in_order_of_preference():
    settings = Settings(inference_providers=" CUDAExecutionProvider , CPUExecutionProvider,")
    assert settings.inference_provider_list == ("CUDAExecutionProvider", "CPUExecutionProvider")
    assert Settings(inference_providers=" , ").inference_provider_list == ("CPUExecutionProvider",)


@pytest.mark.skipif("CUDAExecutionProvider" in ort.get_available_providers(), reason="a GPU build of onnxruntime")
def test_cuda_without_onnxruntime_gpu_is_a_clear_error(tmp_path):
    with pytest.raises(InferenceError, match="CUDAExecutionProvider.*onnxruntime-gpu.*available: .*CPUExecutionProvider"):
        SegmentationModel(DEFAULT_MODEL_PATH, providers=("CUDAExecutionProvider", "CPUExecutionProvider"))
    result = run_check({"CLEARBG_INFERENCE_PROVIDERS": "CUDAExecutionProvider,CPUExecutionProvider"}, tmp_path)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("clearbg: CLEARBG_INFERENCE_PROVIDERS names CUDAExecutionProvider") and "onnxruntime-gpu" in line


def test_a_misspelt_provider_is_named():
    with pytest.raises(InferenceError, match="names CPUExecutionProvder, which this onnxruntime does not offer; available"):
        check_providers(("CPUExecutionProvder",))
