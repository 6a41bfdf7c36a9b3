"""Errors of the inference package. Their messages are meant for the person who sent the image."""


class InferenceError(Exception):
    """Base class; `str(error)` is a complete sentence a user can act on."""


class ImageDecodeError(InferenceError):
    """The bytes are not an image we can read (empty, not an image, damaged)."""


class ImageTooLarge(ImageDecodeError):
    """The image has more pixels than the configured limit."""


class ModelNotFound(InferenceError):
    """The ONNX model file is missing."""
