"""Configuration from the environment (`CLEARBG_` prefix, `.env` read).

Every knob has a default that runs the embedded setup: SQLite and blobs under
`./data/`, the shared u2netp model beside the checkout, in-process jobs.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_PATH = PROJECT_ROOT.parent / "shared" / "models" / "u2netp.onnx"


class Settings(BaseSettings):
    """All of ClearBG's configuration; see the README's table."""

    model_config = SettingsConfigDict(
        env_prefix="CLEARBG_",
        env_file=PROJECT_ROOT / ".env",
        extra="ignore",
    )

    env: str = Field("development", description="development or production")
    data_dir: Path = Field(PROJECT_ROOT / "data", description="SQLite file, blobs, outbox")
    database_url: str = Field("", description="SQLAlchemy URL; empty means SQLite in data_dir")
    model_path: Path = Field(DEFAULT_MODEL_PATH, description="ONNX background-removal model")
    max_upload_bytes: int = Field(25_000_000, gt=0, description="largest accepted file, in bytes")
    max_megapixels: float = Field(50.0, gt=0, description="largest accepted image, in megapixels")
    preview_megapixels: float = Field(0.25, gt=0, description="result size for anonymous visitors")
    retention_minutes: int = Field(60, gt=0, description="how long originals and results are kept")
    purge_interval_seconds: int = Field(300, gt=0, description="how often the purge job runs")
    inference_threads: int = Field(0, ge=0, description="ORT intra-op threads; 0 = all cores")

    @field_validator("data_dir", "model_path", mode="after")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value if value.is_absolute() else (PROJECT_ROOT / value).resolve()

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'clearbg.db'}"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def max_pixels(self) -> int:
        return int(self.max_megapixels * 1_000_000)

    @property
    def preview_pixels(self) -> int:
        return int(self.preview_megapixels * 1_000_000)


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (tests clear the cache to change them)."""
    return Settings()
