"""Configuration from the environment (`CLEARBG_` prefix, `.env` read).

Every knob has a default that runs the embedded setup: SQLite and blobs under
`./data/`, the shared u2net model (u2netp for fast mode) beside the checkout, in-process jobs.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_MODELS_DIR = PROJECT_ROOT.parent / "shared" / "models"
DEFAULT_MODEL_PATH = SHARED_MODELS_DIR / "u2net.onnx"  # the large U^2-Net: the default model
FAST_MODEL_PATH = SHARED_MODELS_DIR / "u2netp.onnx"  # the small U^2-Net: fast mode


DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_origin(url: str) -> str | None:
    """`scheme://host[:port]` as browsers send it in `Origin` (default port left out, host lower-case),
    or None for anything that is not an http(s) URL with a host."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in DEFAULT_PORTS or not host:
        return None
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" if port in (None, DEFAULT_PORTS[scheme]) else f"{scheme}://{host}:{port}"


class Settings(BaseSettings):
    """All of ClearBG's configuration; see the README's table."""

    model_config = SettingsConfigDict(
        env_prefix="CLEARBG_",
        env_file=PROJECT_ROOT / ".env",
        extra="ignore",
    )

    env: str = Field("development", description="development or production")
    log_level: str = Field("INFO", description="level of ClearBG's own log lines")
    log_format: Literal["text", "json"] = Field("text", description="json: one JSON object per log line, with its request id")
    metrics_token: SecretStr = Field(SecretStr(""), description="bearer token for /metrics; empty: loopback clients only")
    readiness_timeout_seconds: float = Field(2.0, gt=0, description="/readyz: how long each part may take to answer")
    data_dir: Path = Field(PROJECT_ROOT / "data", description="SQLite file, blobs, outbox")
    database_url: str = Field("", description="SQLAlchemy URL; empty means SQLite in data_dir")
    storage_url: str = Field("", description="empty: blobs in data_dir/blobs; s3://bucket/prefix: an S3 bucket")
    s3_endpoint_url: str = Field("", description="S3-compatible service (MinIO, R2...); empty: AWS")
    s3_region: str = Field("", description="the bucket's region; empty: boto3's default")
    s3_access_key_id: str = Field("", description="empty: boto3's default credentials (AWS_* variables, instance role)")
    s3_secret_access_key: SecretStr = SecretStr("")
    s3_connect_timeout_seconds: float = Field(5.0, gt=0, description="S3: connect timeout")
    s3_read_timeout_seconds: float = Field(30.0, gt=0, description="S3: timeout between reads")
    s3_max_attempts: int = Field(3, ge=1, description="S3: attempts per request (retries with back-off)")
    model_path: Path = Field(DEFAULT_MODEL_PATH, description="the default model, u2net (ONNX)")
    fast_model_path: Path = Field(FAST_MODEL_PATH, description="the fast mode's model, u2netp (ONNX)")
    max_upload_bytes: int = Field(25_000_000, gt=0, description="largest accepted file, in bytes")
    max_megapixels: float = Field(50.0, gt=0, description="largest accepted image, in megapixels")
    preview_megapixels: float = Field(0.25, gt=0, description="result size for anonymous visitors")
    retention_minutes: int = Field(60, gt=0, description="how long originals and results are kept")
    purge_interval_seconds: int = Field(300, gt=0, description="how often the purge job runs")
    inference_threads: int = Field(0, ge=0, description="ORT threads of each model's one shared session; 0 = every core")
    inference_workers: int = Field(0, ge=0, description="images processed at once; 0 = one per core")
    inference_queue_size: int = Field(8, ge=0, description="requests waiting before 'busy' is answered")
    inference_web_reserved: int = Field(4, ge=0, description="of those, slots only web uploads may take (at most half the queue)")
    inference_warm_up: bool = Field(True, description="run the model once when the pool starts")
    inference_providers: str = Field("CPUExecutionProvider", description="ONNX Runtime execution providers, comma-separated, preferred first")
    models_dir: Path | None = Field(None, description="downloaded and derived models; default data_dir/models")
    enable_fast_mode: bool = Field(True, description="offer fast mode (u2netp, loaded on first use)")

    redis_url: str = Field("", description="empty: API rate limits are kept in memory (one process)")
    queue_url: str = Field("", description="redis://... : the task queue (Dramatiq) on Redis; empty: the same tasks run in-process")
    inference: Literal["local", "queue"] = Field("local", description="queue: web processes hold no model and send images to `worker` processes")
    queue_max_attempts: int = Field(3, gt=0, description="a batch item whose worker died this many times is dead-lettered (failed, uncharged)")
    queue_result_timeout_seconds: float = Field(60.0, gt=0, description="CLEARBG_INFERENCE=queue: how long a request waits for a worker")
    queue_heartbeat_ms: int = Field(60_000, gt=0, description="a worker silent this long is dead: its unfinished messages go to another")
    queue_maintenance_chance: int = Field(1000, gt=0, description="of a million queue commands, how many check for dead workers")
    instance_name: str = Field("", description="this process's name in job-run records; empty: host name and process id")
    api_rate_limit_per_key: int = Field(500, gt=0, description="megapixel images per minute per API key")
    api_rate_limit_per_ip: int = Field(1000, gt=0, description="megapixel images (or requests) per minute per IP")
    url_fetch_connect_seconds: float = Field(5.0, gt=0, description="image_url: connect timeout")
    url_fetch_read_seconds: float = Field(10.0, gt=0, description="image_url: timeout between reads")
    url_fetch_total_seconds: float = Field(30.0, gt=0, description="image_url: the whole download")
    batch_max_items: int = Field(50, gt=0, description="images in one batch job")
    batch_max_bytes: int = Field(100_000_000, gt=0, description="uploaded bytes in one batch job")
    batch_retention_hours: int = Field(24, gt=0, description="how long batch results are kept after the batch finishes")

    public_url: str = Field("http://localhost:3000", description="base URL used in emails; its origin is the site's")
    cors_origins: str = Field("", description="comma-separated further origins of this site (e.g. https://www.example.com)")
    secret_key: SecretStr = Field(SecretStr(""), description="signs email links; required in production")
    session_days: int = Field(30, gt=0, description="how long a sign-in lasts without activity")
    state_expiry_minutes: int = Field(60, gt=0, description="a browser tab's page state is dropped this long after its last event")
    request_log_days: int = Field(90, gt=0, description="how long request logs are kept")
    request_log_ip_days: int = Field(7, gt=0, description="after this many days request logs lose their IP prefix")
    history_retention_days: int = Field(30, gt=0, description="how long images are kept with processing-history consent")
    export_link_days: int = Field(7, gt=0, description="how long a data export can be downloaded before it is purged")
    export_interval_seconds: int = Field(60, gt=0, description="how often pending data exports are built")
    deletion_grace_days: int = Field(7, ge=0, description="days to cancel an account deletion before it is anonymized")
    login_max_failures: int = Field(5, gt=0, description="failed sign-ins before a lockout")
    login_lockout_minutes: int = Field(15, gt=0, description="how long a lockout lasts")
    signup_reset_per_network_per_hour: int = Field(20, gt=0, description="sign-ups and password-reset requests from one network (/24, /48)")
    signup_reset_per_address_per_hour: int = Field(3, gt=0, description="sign-ups and password-reset requests for one email address")

    smtp_host: str = Field("", description="empty: mail goes to data_dir/outbox as .eml files")
    smtp_port: int = Field(587, gt=0)
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_starttls: bool = True
    mail_from: str = Field("ClearBG <no-reply@localhost>", description="sender of service emails")

    google_client_id: str = Field("", description="empty: Google sign-in is off")
    google_client_secret: SecretStr = SecretStr("")
    google_discovery_url: str = "https://accounts.google.com/.well-known/openid-configuration"

    stripe_secret_key: SecretStr = Field(SecretStr(""), description="empty: purchases are off, the rest works")
    stripe_webhook_secret: SecretStr = Field(SecretStr(""), description="whsec_... of the webhook endpoint")
    stripe_api_base: str = Field("", description="empty: Stripe's own API; tests point it at loopback")
    free_monthly_credits: Decimal = Field(Decimal("12.5"), ge=0, decimal_places=2, description="granted to every verified account each month (12.5 = 50 API previews)")
    credit_expiry_days: int = Field(730, gt=0, description="how long pay-as-you-go credits last")

    operator_name: str = Field("", description="who runs this site (person or company); required in production")
    operator_address: str = Field("", description="the operator's postal address; required in production")
    operator_email: str = Field("", description="the operator's general contact address; required in production")
    operator_privacy_contact: str = Field("", description="where privacy questions go (address or name and address); required in production")
    contact_per_network_per_hour: int = Field(5, gt=0, description="/contact requests from one network (/24, /48) per moving hour")
    contact_per_address_per_hour: int = Field(3, gt=0, description="/contact requests for one email address per moving hour")
    privacy_request_retention_days: int = Field(1095, gt=0, description="how long closed privacy requests are kept")

    @field_validator("data_dir", "model_path", "fast_model_path", "models_dir", mode="after")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return value if value is None or value.is_absolute() else (PROJECT_ROOT / value).resolve()

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'clearbg.db'}"

    @property
    def inference_provider_list(self) -> tuple[str, ...]:
        return tuple(name.strip() for name in self.inference_providers.split(",") if name.strip()) or ("CPUExecutionProvider",)

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def google_enabled(self) -> bool:
        return bool(self.google_client_id and self.google_client_secret.get_secret_value())

    @property
    def stripe_enabled(self) -> bool:
        return bool(self.stripe_secret_key.get_secret_value() and self.stripe_webhook_secret.get_secret_value())

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def site_origins(self) -> list[str]:
        """The site's own origins: CLEARBG_PUBLIC_URL's and those in CLEARBG_CORS_ORIGINS. Only these may
        use the site's cookies from another origin; a malformed entry is left out (see `problems`)."""
        candidates = [self.public_url, *self.cors_origins.split(",")]
        origins = [origin for url in candidates if (origin := canonical_origin(url))]
        return list(dict.fromkeys(origins))

    def instance(self) -> str:
        """This process's name in job-run records: CLEARBG_INSTANCE_NAME, or host name and process id."""
        return self.instance_name or f"{socket.gethostname()}-{os.getpid()}"

    def problems(self) -> list[str]:
        """Settings that must not be used as they are (insecure defaults are refused in production)."""
        found = []
        if canonical_origin(self.public_url) is None:
            found.append("CLEARBG_PUBLIC_URL must be an http(s) URL, like https://clearbg.example.com.")
        if bad := [entry.strip() for entry in self.cors_origins.split(",") if entry.strip() and not canonical_origin(entry)]:
            found.append(f"CLEARBG_CORS_ORIGINS must list origins like https://www.example.com, not {', '.join(bad)!s}.")
        if self.storage_url:
            from clearbg_app.storage.base import parse_s3_url  # noqa: PLC0415 - storage imports settings

            try:
                parse_s3_url(self.storage_url)
            except ValueError as error:
                found.append(str(error))
        if self.queue_url and urlsplit(self.queue_url).scheme not in ("redis", "rediss", "unix"):
            found.append("CLEARBG_QUEUE_URL must be a redis:// (or rediss://) URL, or empty for the in-process queue.")
        if self.inference == "queue" and not self.queue_url:
            found.append("CLEARBG_INFERENCE=queue needs CLEARBG_QUEUE_URL: the workers are reached through it.")
        if self.is_production:
            if len(self.secret_key.get_secret_value()) < 32:
                found.append("CLEARBG_SECRET_KEY must be set to at least 32 random characters in production.")
            if not self.public_url.startswith("https://"):
                found.append("CLEARBG_PUBLIC_URL must be an https:// URL in production.")
            if missing := [f"CLEARBG_OPERATOR_{name.upper()}" for name, value in self.operator_fields().items() if not value.strip()]:
                found.append(f"{', '.join(missing)} must say who runs this site in production (shown in the policy, the terms and every email).")
        return found

    def operator_fields(self) -> dict[str, str]:
        return {"name": self.operator_name, "address": self.operator_address, "email": self.operator_email,
                "privacy_contact": self.operator_privacy_contact}  # fmt: skip

    def operator(self) -> dict[str, str]:
        """The operator's identity as shown to people; unset fields read "(not configured)" (development only:
        production refuses to start without them)."""
        return {name: value.strip() or "(not configured)" for name, value in self.operator_fields().items()}

    def operator_signature(self) -> str:
        """The lines every service email ends with: who sends it and how to reach them."""
        who = self.operator()
        return (f"ClearBG is operated by {who['name']}, {who['address']}. Contact: {who['email']}. "
                f"Privacy questions: {who['privacy_contact']} or {self.public_url.rstrip('/')}/contact")  # fmt: skip

    def signing_key(self) -> bytes:
        """The configured secret, or in development one generated once and kept in the data dir."""
        if configured := self.secret_key.get_secret_value():
            return configured.encode()
        if self.is_production:
            raise RuntimeError("CLEARBG_SECRET_KEY is not set.")
        path = self.data_dir / "secret_key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            draft = path.with_name(f".secret_key.{secrets.token_hex(8)}")
            draft.write_text(secrets.token_urlsafe(48))
            draft.chmod(0o600)
            with contextlib.suppress(FileExistsError):  # another process won the race: use its key
                os.link(draft, path)
            draft.unlink()
        return path.read_text().strip().encode()

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
