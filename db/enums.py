"""The closed sets of values stored in the database, shared by services and the API schemas."""

from enum import StrEnum


class TagKind(StrEnum):
    object = "object"
    label = "label"
    category = "category"
    user = "user"


class TagSource(StrEnum):
    model = "model"
    user = "user"


class TagState(StrEnum):
    suggested = "suggested"
    confirmed = "confirmed"
    rejected = "rejected"


class AnalysisState(StrEnum):
    pending = "pending"
    done = "done"
    failed = "failed"


class JobType(StrEnum):
    analyze = "analyze"
    recognize = "recognize"
    verify = "verify"
    export = "export"
    embed_text = "embed_text"
    bulk = "bulk"


class JobState(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


class ExportState(StrEnum):
    queued = "queued"
    running = "running"
    ready = "ready"
    failed = "failed"
    cancelled = "cancelled"
    expired = "expired"


class PersonSource(StrEnum):
    user = "user"
    model = "model"


class UploadStatus(StrEnum):
    created = "created"
    duplicate = "duplicate"
    rejected = "rejected"
