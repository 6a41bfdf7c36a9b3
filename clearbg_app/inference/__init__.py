"""Background removal: decoding, the model registry, the pool, the cut-out and its rendering.
Knows nothing of users or HTTP."""

from clearbg_app.inference.config import InferenceConfig
from clearbg_app.inference.decode import DecodedImage, ImageInfo, decode_image, probe_image
from clearbg_app.inference.errors import ImageDecodeError, ImageTooLarge, InferenceError, ModelNotFound
from clearbg_app.inference.model import SegmentationModel, check_model_file, load_model
from clearbg_app.inference.pipeline import Cutout, CutoutOptions, cut_out, fit_within, remove_background
from clearbg_app.inference.pool import InferencePool, Job, JobResult, ServerBusy, Timings
from clearbg_app.inference.registry import ModelDownloadError, ModelSpec
from clearbg_app.inference.render import Rendered, RenderOptions, render

__all__ = [
    "Cutout",
    "CutoutOptions",
    "DecodedImage",
    "ImageDecodeError",
    "ImageInfo",
    "ImageTooLarge",
    "InferenceConfig",
    "InferenceError",
    "InferencePool",
    "Job",
    "JobResult",
    "ModelDownloadError",
    "ModelNotFound",
    "ModelSpec",
    "RenderOptions",
    "Rendered",
    "SegmentationModel",
    "ServerBusy",
    "Timings",
    "check_model_file",
    "cut_out",
    "decode_image",
    "fit_within",
    "load_model",
    "probe_image",
    "remove_background",
    "render",
]
