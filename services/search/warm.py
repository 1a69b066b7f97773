"""Load the overview columns of the owners who uploaded last in a background thread when the API
starts: the gallery opens on the timeline and the facet counts, which after a restart then find the
columns ready instead of loading them in the request (2.3 s at 100 000 photos, about 50 MB;
bench/reports/search.md). A request that comes first waits on the same per-owner lock, never loads
twice. The search indexes still load on an owner's first search: at 100 000 photos the text index
holds about 0.9 GB and the image vectors 0.5 GB, too much to spend on a library nobody searches."""

from __future__ import annotations

import logging
import threading

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Photo
from services.search.columns import owner_columns

log = logging.getLogger(__name__)


def recent_owners(db: Session, limit: int) -> list[str]:
    """Owners by their latest upload, newest first."""
    latest = func.max(Photo.uploaded_at)
    query = select(Photo.owner_id).group_by(Photo.owner_id).order_by(latest.desc()).limit(limit)
    return list(db.scalars(query))


def warm_owners(sessions: sessionmaker[Session], limit: int, stop: threading.Event) -> list[str]:
    """Load the columns of up to `limit` recent owners (until `stop` is set); the owners done."""
    with sessions() as db:
        owners = recent_owners(db, limit)
    done = []
    for owner_id in owners:
        if stop.is_set():
            break
        with sessions() as db:
            owner_columns(db, owner_id)
        done.append(owner_id)
    return done


class Warmer:
    """The start-up warm-up of one API process; `stop()` ends it between two owners."""

    def __init__(self, sessions: sessionmaker[Session], limit: int) -> None:
        self._sessions = sessions
        self._limit = limit
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="warm-owners", daemon=True)

    def start(self) -> None:
        if self._limit > 0:
            self._thread.start()

    def _run(self) -> None:
        try:
            done = warm_owners(self._sessions, self._limit, self._stop)
        except Exception:  # a warm-up is an optimisation: the requests load what it could not
            log.exception("loading the owners' overview columns at start failed")
            return
        log.info("overview columns of %d owners loaded at start", len(done))

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
