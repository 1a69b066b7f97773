"""The one settings object. Every knob is an environment variable with the prefix SHOEBOX_."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOEBOX_", env_file=".env", extra="ignore")

    data_dir: Path = REPO_ROOT / "data"
    # Default: a SQLite file inside data_dir (filled in below when unset).
    database_url: str = ""
    blob_dir: Path | None = None
    model_dir: Path = REPO_ROOT / "models"
    # Where set-up copies pretrained files from (a read-only mirror of verified weights).
    model_mirror: Path | None = None

    max_upload_bytes: int = 50 * 1024 * 1024
    # Decompression-bomb guard: images with more pixels than this are rejected.
    max_image_pixels: int = 120_000_000
    bootstrap_key: str | None = None

    # Inference
    # Threads per model session; 0 picks half the cores (sessions run side by side with the job worker
    # and the API, and oversubscribed thread pools spin against each other on small machines).
    onnx_intra_op_threads: int = 0
    onnx_inter_op_threads: int = 1
    onnx_providers: list[str] | None = None  # None: CUDA when available, then CPU
    load_models_at_start: bool = False
    # Manifest name of the object detector (e.g. "yolov8n_int8"); None: the manifest's default.
    objects_model: str | None = None
    analysis_batch_size: int = 8
    # Analyse new photos automatically (off: only `POST /v1/jobs {"type": "analyze"}` does).
    analyze_on_upload: bool = True
    # Look for sideways photos among files without a camera orientation (costs up to 3 detector runs).
    suggest_rotation: bool = True

    # Jobs
    job_workers: int = 1
    run_job_workers: bool = True
    job_poll_seconds: float = 0.5

    # Library: photos stay in the trash this many days before they (and unshared bytes) are purged.
    trash_days: int = Field(default=30, ge=0)
    # Bulk edits over more photos than this run as a job (202) instead of inside the request: about
    # 10 ms a photo on a busy 2-core machine (bench/bulk_edit.py), so a request stays near 5 s.
    bulk_sync_max: int = Field(default=500, ge=1)

    @model_validator(mode="after")
    def _fill_derived_paths(self) -> "Settings":
        if self.blob_dir is None:
            self.blob_dir = self.data_dir / "blobs"
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'shoebox.db'}"
        return self

    @property
    def blob_root(self) -> Path:
        assert self.blob_dir is not None
        return self.blob_dir


@lru_cache
def get_settings() -> Settings:
    return Settings()
