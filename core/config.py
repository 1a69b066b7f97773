"""The one settings object. Every knob is an environment variable with the prefix SHOEBOX_."""

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core.storage import BlobStore, open_blob_store

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOEBOX_", env_file=".env", extra="ignore")

    data_dir: Path = REPO_ROOT / "data"
    # Default: a SQLite file inside data_dir (filled in below when unset).
    database_url: str = ""
    blob_dir: Path | None = None
    # Where originals live: `local` (blob_dir; a shared filesystem serves several machines) or `s3` (an
    # S3-compatible bucket; credentials from the usual AWS_* variables).
    blob_backend: Literal["local", "s3"] = "local"
    s3_bucket: str | None = None
    s3_prefix: str = ""
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    model_dir: Path = REPO_ROOT / "models"
    # Where set-up copies pretrained files from (a read-only mirror of verified weights).
    model_mirror: Path | None = None

    max_upload_bytes: int = 50 * 1024 * 1024
    # Decompression-bomb guard: images with more pixels than this are rejected.
    max_image_pixels: int = 120_000_000
    bootstrap_key: str | None = None

    # Input limits (the request guard and the schemas enforce them; see openapi.md "Limits").
    # Whole request body, counted while it is read: a bigger upload is refused before it is spooled.
    max_request_bytes: int = 100 * 1024 * 1024
    max_json_bytes: int = 1024 * 1024
    # Upload requests processed at once (each holds one file in memory and decodes it); more wait.
    # Two keep both cores of a small machine busy; each slot can cost ~3x the largest file in memory.
    max_concurrent_uploads: int = 2
    # A body that stalls this long between chunks, or takes longer than the total, answers 408.
    request_body_idle_timeout_seconds: float = 15.0
    request_body_timeout_seconds: float = 300.0
    # PostgreSQL cancels any one statement running longer than this (0: no limit).
    db_statement_timeout_ms: int = 30_000
    # /metrics shows per-library figures only to `Authorization: Bearer <token>`; unset: request
    # counters only.
    metrics_token: str | None = None
    # Blobs referenced by no photo and temp files older than this are swept by maintenance.
    orphan_min_age_seconds: float = 3600.0

    # Inference
    # Threads per model session; 0 picks half the cores (sessions run side by side with the job worker
    # and the API, and oversubscribed thread pools spin against each other on small machines).
    onnx_intra_op_threads: int = 0
    onnx_inter_op_threads: int = 1
    onnx_providers: list[str] | None = None  # None: CUDA when available, then CPU
    load_models_at_start: bool = False
    # Manifest name of the object detector (e.g. "yolov8n_int8"); None: the manifest's default.
    objects_model: str | None = None
    # Rank text search by the learned alignment of photos and sentences as well as by the words (off:
    # words and summaries only, the ranking before the alignment head; for comparisons).
    text_search_learned: bool = True
    # Photos per analysis batch of the local worker. On CPU batching buys nothing (bench/reports/
    # ingest.md: 1 and 8 within 1%), and 1 lets a job's progress move photo by photo; raise it on a GPU.
    analysis_batch_size: int = Field(default=1, ge=1)
    # Model lanes per analysis batch: 2 runs the squashed-photo embedding, the detector and the labeler
    # in a thread beside faces, quality metrics and the rotation check, so one job keeps two cores
    # busy; 1 runs them in turn (services/analysis/service.py analyze_images).
    analysis_lanes: int = Field(default=2, ge=1, le=2)
    # Analyse new photos automatically (off: only `POST /v1/jobs {"type": "analyze"}` does).
    analyze_on_upload: bool = True
    # Look for sideways photos among files without a camera orientation (three labeler passes, and one
    # detector pass over a mosaic where the rotation head hesitates).
    suggest_rotation: bool = True

    # Jobs
    job_workers: int = 1
    run_job_workers: bool = True
    job_poll_seconds: float = 0.5
    # A worker touches its job this often; a job untouched for job_stale_seconds is reclaimed.
    job_heartbeat_seconds: float = 3.0
    job_stale_seconds: float = 12.0
    # A job type split in two (analysis) has its next batch prepared while the current one is stored,
    # so the models keep the cores busy during the database writes (bench/reports/ingest.md).
    job_read_ahead: bool = True
    # A starting API loads the overview columns of this many owners (the last to upload first) in the
    # background, so the first timeline or facet count after a restart is not slow.
    warm_owners: int = Field(default=4, ge=0, le=64)
    # `local`: in-process worker threads claim jobs from the database (the embedded default). `dramatiq`:
    # the API splits jobs into tasks on a broker, separate `python -m services.jobs.worker` processes
    # run them (docs/distributed.md).
    job_backend: Literal["local", "dramatiq"] = "local"
    broker_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    # Prefix of the broker's queue names (several libraries, or test runs, on one broker).
    broker_namespace: str = ""
    # Photos per analysis task in distributed mode (a task is what one worker takes at a time).
    task_batch_size: int = Field(default=4, ge=1)
    # A task whose worker died this often on one photo fails that photo alone (a poison photo).
    task_max_crashes: int = Field(default=2, ge=1)

    # Browsers
    # Origins allowed to call the API from a web page, comma-separated (empty: none; same-origin only).
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Key for signed image URLs and session cookies; unset: a random one made once in data_dir.
    url_secret: str | None = None
    signed_url_seconds: int = Field(default=3600, ge=60, le=7 * 86400)
    session_seconds: int = Field(default=7 * 86400, ge=300)
    # How often an open event stream looks at the database for its owner's changes.
    events_poll_seconds: float = Field(default=1.0, gt=0)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip().rstrip("/") for origin in value.split(",") if origin.strip()]
        return value

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

    def open_blob_store(self) -> BlobStore:
        return open_blob_store(
            backend=self.blob_backend,
            blob_dir=self.blob_root,
            cache_dir=self.data_dir / "cache",
            s3_bucket=self.s3_bucket,
            s3_prefix=self.s3_prefix,
            s3_endpoint_url=self.s3_endpoint_url,
            s3_region=self.s3_region,
        )


@lru_cache
def get_settings() -> Settings:
    return Settings()
