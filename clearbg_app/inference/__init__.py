"""Background removal: decoding, the model, the cut-out. Knows nothing of users or HTTP."""

from clearbg_app.inference.decode import DecodedImage, decode_image, probe_image
from clearbg_app.inference.errors import ImageDecodeError, ImageTooLarge, InferenceError, ModelNotFound
from clearbg_app.inference.model import SegmentationModel, check_model_file, load_model
from clearbg_app.inference.pipeline import fit_within, remove_background

__all__ = [
    "DecodedImage",
    "ImageDecodeError",
    "ImageTooLarge",
    "InferenceError",
    "ModelNotFound",
    "SegmentationModel",
    "check_model_file",
    "decode_image",
    "fit_within",
    "load_model",
    "probe_image",
    "remove_background",
]
