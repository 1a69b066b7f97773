"""Every job type and maintenance task, registered once by each process that runs jobs (the API with
in-process workers, or a distributed worker)."""

from collections.abc import Callable

import services.analysis.service as analysis
import services.analysis.text_vectors as text_vectors
import services.exports.service as exports
import services.faces.service as faces
import services.library.bulk as bulk
import services.library.facets as facets
import services.library.trash as trash
import services.photos.integrity as integrity
import services.photos.orphans as orphans
from services.jobs.service import JobContext


def register_job_types() -> None:
    integrity.register()
    analysis.register()
    text_vectors.register()
    faces.register()
    exports.register()
    bulk.register()


def maintenance_tasks() -> list[Callable[[JobContext], None]]:
    return [
        exports.cleanup_task,
        text_vectors.queue_stale_text_vectors,
        orphans.sweep_task,
        trash.purge_task,
        facets.build_counts_task,
    ]
