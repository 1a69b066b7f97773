"""Maintenance: blobs no photo references and temp files left by crashed writes are removed.

A crash between writing a blob and committing its photo row (or in the middle of an atomic write)
leaves files nothing will ever read. Only files older than `orphan_min_age_seconds` are touched, so
an upload still on its way to its commit keeps its blob; re-uploading an existing blob refreshes its
time stamp (BlobStore.put) for the same reason.
"""

import logging
import re
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.storage import BlobStore
from db.models import Photo
from services.jobs.service import JobContext

log = logging.getLogger(__name__)

_BLOB_NAME = re.compile(r"^[0-9a-f]{64}$")
_LOOKUP_CHUNK = 500


@dataclass
class SweepResult:
    orphan_blobs: int = 0
    temp_files: int = 0


def sweep_orphans(db: Session, store: BlobStore, *, min_age_seconds: float) -> SweepResult:
    result = SweepResult()
    cutoff = time.time() - min_age_seconds
    result.temp_files = store.remove_temp_files(cutoff)
    candidates = [
        sha256 for sha256, modified in store.iter_blobs() if _BLOB_NAME.match(sha256) and modified < cutoff
    ]
    for start in range(0, len(candidates), _LOOKUP_CHUNK):
        chunk = candidates[start : start + _LOOKUP_CHUNK]
        referenced = set(db.scalars(select(Photo.sha256).where(Photo.sha256.in_(chunk)).distinct()))
        for sha256 in chunk:
            # Checked again just before deleting: an upload may have reused the blob meanwhile.
            modified = store.modified_at(sha256)
            if sha256 not in referenced and modified is not None and modified < cutoff:
                store.delete(sha256)
                result.orphan_blobs += 1
    return result


def sweep_task(context: JobContext) -> None:
    with context.sessions() as db:
        result = sweep_orphans(db, context.store, min_age_seconds=context.settings.orphan_min_age_seconds)
    if result.orphan_blobs or result.temp_files:
        log.info("swept %d orphan blobs and %d temp files", result.orphan_blobs, result.temp_files)
