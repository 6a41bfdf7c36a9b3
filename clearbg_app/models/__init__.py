"""SQLModel tables. Importing this package registers every table on `SQLModel.metadata`."""

from clearbg_app.models.images import ImageStatus, ProcessedImage

__all__ = ["ImageStatus", "ProcessedImage"]
