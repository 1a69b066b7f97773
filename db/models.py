"""SQLAlchemy 2 typed ORM. Every owned row carries owner_id; services always filter by it."""

import unicodedata
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from db.base import Base, new_id
from db.types import UTCDateTime, utcnow


class Owner(Base):
    __tablename__ = "owners"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    api_keys: Mapped[list["ApiKey"]] = relationship(back_populates="owner", cascade="all, delete-orphan")


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), index=True)
    # sha256 of the key: keys are long random strings, so a fast hash is enough and lookups stay O(1).
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    owner: Mapped[Owner] = relationship(back_populates="api_keys")


class Photo(Base):
    __tablename__ = "photos"
    __table_args__ = (
        UniqueConstraint("owner_id", "sha256", name="uq_photos_owner_sha256"),
        Index("ix_photos_owner_taken", "owner_id", "taken_at"),
        Index("ix_photos_owner_uploaded", "owner_id", "uploaded_at"),
        Index("ix_photos_owner_gps", "owner_id", "gps_lat", "gps_lon"),
        # Covers the timeline's grouped count (visible photos by capture time, with the id for each
        # bucket's first photo) without reading the table: 4x less CPU at 100 000 photos on SQLite.
        Index("ix_photos_owner_visible_taken", "owner_id", "archived", "trashed_at", "taken_at", "id"),
        # The listing by upload time (the web app's "recently added") reads pages in this order.
        Index("ix_photos_owner_visible_uploaded", "owner_id", "archived", "trashed_at", "uploaded_at", "id"),
        # Partial: it holds the trash only. A full index on trashed_at led SQLite to scan every visible
        # photo (trashed_at IS NULL) instead of looking a handful of ids up by primary key.
        Index(
            "ix_photos_trashed_at",
            "trashed_at",
            sqlite_where=text("trashed_at IS NOT NULL"),
            postgresql_where=text("trashed_at IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    filename: Mapped[str] = mapped_column(String(500))
    content_type: Mapped[str] = mapped_column(String(50))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    # Camera-local wall time as written by the camera (naive); offset kept beside it when known.
    taken_at: Mapped[datetime | None] = mapped_column(nullable=True)
    taken_at_offset: Mapped[str | None] = mapped_column(String(6), nullable=True)
    taken_at_source: Mapped[str | None] = mapped_column(String(40), nullable=True)
    gps_lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    gps_lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    gps_alt: Mapped[float | None] = mapped_column(Float, nullable=True)
    camera_make: Mapped[str | None] = mapped_column(String(200), nullable=True)
    camera_model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    orientation: Mapped[int] = mapped_column(Integer, default=1)
    rotation: Mapped[int] = mapped_column(Integer, default=0)  # user's clockwise rotation on top
    caption: Mapped[str | None] = mapped_column(Text, nullable=True)
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    analysis_state: Mapped[str] = mapped_column(String(16), default="pending")
    analysis_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    quality_score: Mapped[float | None] = mapped_column(Float, nullable=True, index=True)
    quality_issues: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    quality_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    suggested_rotation: Mapped[int | None] = mapped_column(Integer, nullable=True)
    suggested_rotation_confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    place_city: Mapped[str | None] = mapped_column(String(200), nullable=True)
    place_region: Mapped[str | None] = mapped_column(String(200), nullable=True)
    place_country: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # Library fields the user sets (gallery state), never touched by analysis.
    favorite: Mapped[bool] = mapped_column(default=False, server_default=false())
    rating: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    archived: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Set when the photo is in the trash: hidden everywhere, purged after SHOEBOX_TRASH_DAYS.
    trashed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_state_created", "state", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="queued")
    # Work items (photo ids) in processing order; `position` says how many are finished.
    items: Mapped[list[Any]] = mapped_column(JSON, default=list)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    position: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list[Any]] = mapped_column(JSON, default=list)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # New on every claim; commits made for the job are fenced by it (services/jobs/service.py).
    claim_token: Mapped[str | None] = mapped_column(String(32), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class JobTask(Base):
    """A piece of a job (a batch of its items) sent to a broker in distributed mode.

    Its state is the exactly-once marker: the job's counters move in the same transaction that moves
    `position` here, under the job's row lock, so a redelivered task never counts an item twice.
    """

    __tablename__ = "job_tasks"
    __table_args__ = (
        UniqueConstraint("job_id", "seq", name="uq_job_tasks_job_seq"),
        Index("ix_job_tasks_state_queue", "state", "queue"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    queue: Mapped[str] = mapped_column(String(32))
    # queued (on the broker or in a worker's hands), done, cancelled
    state: Mapped[str] = mapped_column(String(16), default="queued")
    items: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Items of this task already counted in the job; a retry starts here.
    position: Mapped[int] = mapped_column(Integer, default=0)
    # Deliveries that started work (one more than the workers that died on it).
    deliveries: Mapped[int] = mapped_column(Integer, default=0)
    # Deliveries that started at the current `position` (a photo that kills workers is failed alone).
    deliveries_at_position: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class WorkerStat(Base):
    """Per worker process: what it has done (for /metrics), written with the job counters."""

    __tablename__ = "worker_stats"

    worker_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    queues: Mapped[str] = mapped_column(String(200), default="")
    items_done: Mapped[int] = mapped_column(Integer, default=0)
    items_failed: Mapped[int] = mapped_column(Integer, default=0)
    tasks: Mapped[int] = mapped_column(Integer, default=0)
    busy_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PhotoTag(Base):
    """A tag on a photo. Model tags carry the user's decision in `state`; user tags are always confirmed."""

    __tablename__ = "photo_tags"
    __table_args__ = (
        UniqueConstraint("photo_id", "kind", "name", name="uq_photo_tags_photo_kind_name"),
        Index("ix_photo_tags_owner_name", "owner_id", "name"),
        Index("ix_photo_tags_owner_state_conf", "owner_id", "state", "confidence"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    photo_id: Mapped[str] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), index=True)
    # Denormalised from the photo so tag listings and counts never need a join to stay owner-scoped.
    owner_id: Mapped[str] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # object | label | category | user
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    source: Mapped[str] = mapped_column(String(8))  # model | user
    state: Mapped[str] = mapped_column(String(16))  # suggested | confirmed | rejected
    model: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Detection(Base):
    """An object box from the detector, in normalised coordinates of the upright image."""

    __tablename__ = "detections"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    photo_id: Mapped[str] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), index=True)
    class_name: Mapped[str] = mapped_column(String(100))
    score: Mapped[float] = mapped_column(Float)
    box_x: Mapped[float] = mapped_column(Float)
    box_y: Mapped[float] = mapped_column(Float)
    box_w: Mapped[float] = mapped_column(Float)
    box_h: Mapped[float] = mapped_column(Float)
    model: Mapped[str] = mapped_column(String(100))


class PhotoEmbedding(Base):
    """An image embedding, kept with the model that made it: a new model re-embeds, never mixes."""

    __tablename__ = "photo_embeddings"

    photo_id: Mapped[str] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True)
    model: Mapped[str] = mapped_column(String(100), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), index=True)
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)  # float32, L2-normalised


class PhotoAnalysis(Base):
    """What the last analysis saw: raw classifier labels, models used, timing."""

    __tablename__ = "photo_analyses"

    photo_id: Mapped[str] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True)
    labels: Mapped[list[Any]] = mapped_column(JSON, default=list)
    models: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    analysed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    duration_ms: Mapped[float] = mapped_column(Float, default=0.0)


def person_name_key(name: str) -> str:
    """What makes two names one person: Unicode-normalised, single spaces, case-folded."""
    return " ".join(unicodedata.normalize("NFKC", name).split()).casefold()


class Person(Base):
    __tablename__ = "people"
    # Names are unique per owner regardless of letter case; the database enforces it on the key,
    # so concurrent requests naming "Alice" and "ALICE" cannot create two people.
    __table_args__ = (UniqueConstraint("owner_id", "name_key", name="uq_people_owner_name_key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(800))
    # The face shown for the person; unset (or its face gone): their best user-labelled face.
    cover_face_id: Mapped[str | None] = mapped_column(
        ForeignKey("faces.id", ondelete="SET NULL", use_alter=True, name="fk_people_cover_face_id_faces"),
        nullable=True,
    )
    # Hidden people (strangers in the background, a statue) stay named but leave lists and facets.
    hidden: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    birth_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    @validates("name")
    def _keep_name_key(self, _attribute: str, name: str) -> str:
        self.name_key = person_name_key(name)
        return name


class Face(Base):
    """A detected face. `person_source` says who named it: a user label always beats the model."""

    __tablename__ = "faces"
    __table_args__ = (
        Index("ix_faces_owner_person", "owner_id", "person_id"),
        Index("ix_faces_owner_source_conf", "owner_id", "person_source", "person_confidence"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    photo_id: Mapped[str] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), index=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"))
    box_x: Mapped[float] = mapped_column(Float)
    box_y: Mapped[float] = mapped_column(Float)
    box_w: Mapped[float] = mapped_column(Float)
    box_h: Mapped[float] = mapped_column(Float)
    landmarks: Mapped[list[Any]] = mapped_column(JSON, default=list)
    detection_score: Mapped[float] = mapped_column(Float)
    detector: Mapped[str] = mapped_column(String(100))
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    embedding_model: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # Too small or too blurred to recognise: kept and shown, left out of training and clustering.
    recognisable: Mapped[bool] = mapped_column(default=True)
    size_px: Mapped[float] = mapped_column(Float, default=0.0)
    sharpness: Mapped[float] = mapped_column(Float, default=0.0)
    person_id: Mapped[str | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"), nullable=True)
    person_source: Mapped[str | None] = mapped_column(String(8), nullable=True)  # user | model
    person_confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The model's plausible match that it will not assert (a look-alike, a relative, a poor photo):
    # shown for review, never counted as that person's face until a user confirms it.
    suggested_person_id: Mapped[str | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL"), nullable=True
    )
    suggestion_confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class FaceRejection(Base):
    """A user said "this face is not that person": recognition never names nor suggests it so.
    Goes with the face or the person (a deleted person leaves no trace on any face)."""

    __tablename__ = "face_rejections"

    face_id: Mapped[str] = mapped_column(ForeignKey("faces.id", ondelete="CASCADE"), primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), index=True)


class Export(Base):
    """A zip of photos with their metadata written in, built by a job and kept until it expires."""

    __tablename__ = "exports"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="queued")  # queued|running|ready|failed|expired
    request: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # photo id -> unique, safe file name inside the zip, fixed when the export is created.
    entries: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Album(Base):
    """A named, ordered set of the owner's photos; deleting it never deletes a photo."""

    __tablename__ = "albums"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    cover_photo_id: Mapped[str | None] = mapped_column(
        ForeignKey("photos.id", ondelete="SET NULL"), nullable=True
    )
    # `manual` lists photos by position (settable); `taken_at` by capture time.
    sort: Mapped[str] = mapped_column(String(16), default="manual")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class AlbumPhoto(Base):
    __tablename__ = "album_photos"
    __table_args__ = (Index("ix_album_photos_photo", "photo_id"),)

    album_id: Mapped[str] = mapped_column(ForeignKey("albums.id", ondelete="CASCADE"), primary_key=True)
    photo_id: Mapped[str] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
