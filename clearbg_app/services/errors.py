"""Domain errors. `str(error)` is a sentence for the person who caused it."""


class ServiceError(Exception):
    """Base class of errors a user can act on."""


class UploadRejected(ServiceError):
    """The upload is not acceptable (too large, not an image, damaged)."""


class NotFound(ServiceError):
    """The thing does not exist, has expired, or is not the caller's."""
