"""The "fast" model: an int8 (static, QDQ) variant of u2netp derived at set-up time.

The sensitive convolutions stay in float: the first one (it sees the raw image) and the
seven heads (six side outputs and the fusion convolution), as the models README suggests.
Activations are calibrated on the sample photos with flips and crops.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from PIL import Image, ImageOps

from clearbg_app.inference.config import InferenceConfig
from clearbg_app.inference.model import SegmentationModel


def clean_float_model(source: Path) -> onnx.ModelProto:
    """The model with its fp16->fp32 weight casts folded into fp32 weights and every node named."""
    model = onnx.load(source)
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    kept = []
    for node in graph.node:
        if node.op_type == "Cast" and node.input[0] in initializers:
            weights = numpy_helper.to_array(initializers[node.input[0]]).astype(np.float32)
            graph.initializer.append(numpy_helper.from_array(weights, node.output[0]))
        else:
            kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)
    used = {name for node in graph.node for name in node.input}
    remaining = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(remaining)
    for index, node in enumerate(graph.node):
        node.name = f"{node.op_type}_{index}"
    return model


def sensitive_convolutions(model: onnx.ModelProto) -> list[str]:
    """The first convolution and the one behind each output (through Resize, Sigmoid, Identity)."""
    producers = {output: node for node in model.graph.node for output in node.output}
    convolutions = [node for node in model.graph.node if node.op_type == "Conv"]
    names = [convolutions[0].name]  # nodes are in topological order
    for output in model.graph.output:
        node = producers[output.name]
        while node.op_type != "Conv":
            node = producers[node.input[0]]
        names.append(node.name)
    return names


def calibration_tensors(images: list[Path], model: SegmentationModel) -> list[np.ndarray]:
    """Prepared inputs for each photo, its mirror image and two centre crops."""
    tensors = []
    for path in images:
        photo = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
        width, height = photo.size
        variants = [photo, ImageOps.mirror(photo)]
        for share in (0.8, 0.6):
            dx, dy = int(width * (1 - share) / 2), int(height * (1 - share) / 2)
            variants.append(photo.crop((dx, dy, width - dx, height - dy)))
        tensors += [model.prepare(variant) for variant in variants]
    return tensors


class _Reader:
    """onnxruntime.quantization's CalibrationDataReader over a list of tensors."""

    def __init__(self, input_name: str, tensors: list[np.ndarray]) -> None:
        self._items = iter([{input_name: tensor} for tensor in tensors])

    def get_next(self):
        return next(self._items, None)

    def rewind(self) -> None:  # pragma: no cover - only some calibrators call it
        pass


def build_fast_model(config: InferenceConfig, *, method: str = "MinMax") -> Path:
    """Write the int8 model to `config.int8_model_path` and return that path.

    MinMax is the default because ORT's histogram calibrators (Percentile, Entropy) held
    more than 9 GB for this model and were killed on the 24 GB build machine.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    float_model = SegmentationModel(config.fast_model_path)
    images = sorted(p for p in config.calibration_dir.iterdir() if p.is_file())
    tensors = calibration_tensors(images, float_model)
    # ORT keeps every intermediate activation of every calibration input unless told to reduce
    # every few inputs (24 GB here otherwise); it fails if the last group is empty, so pick a
    # group size that leaves a remainder.
    group = next(size for size in (4, 5, 6, 7) if len(tensors) % size)
    config.models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        cleaned = Path(scratch) / "float.onnx"
        model = clean_float_model(config.fast_model_path)
        onnx.save(model, cleaned)
        quantize_static(
            str(cleaned),
            str(config.int8_model_path),
            _Reader(float_model.input_name, tensors),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=getattr(CalibrationMethod, method),
            nodes_to_exclude=sensitive_convolutions(model),
            extra_options={"CalibPercentile": 99.99, "CalibMaxIntermediateOutputs": group},
        )
    return config.int8_model_path


def agreement_with_official_masks(model_path: Path, samples: Path) -> dict[str, float]:
    """IoU of the default pipeline's mask with the official u2netp mask, per sample photo."""
    from clearbg_app.inference.decode import decode_image
    from clearbg_app.inference.pipeline import cut_out
    from clearbg_app.inference.quality import as_unit, iou

    model = SegmentationModel(model_path)
    scores = {}
    for photo in sorted((samples / "images").iterdir()):
        decoded = decode_image(photo.read_bytes(), max_pixels=200_000_000)
        reference = Image.open(samples / "u2netp_reference" / f"{photo.stem}.png").convert("L").resize(decoded.size)
        scores[photo.stem] = iou(as_unit(cut_out(decoded, model).alpha), as_unit(reference))
    return scores
