"""Blobs no photo references and temp files of crashed writes are swept by maintenance once
they are an hour old; everything referenced or recent stays (issue 17, item 11)."""

import os
import time
from pathlib import Path

from fastapi.testclient import TestClient

from core.storage import sha256_hex
from services.photos.orphans import sweep_orphans
from tests.api.test_jobs import upload_some
from tests.conftest import OwnerAuth

HOUR = 3600.0


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_maintenance_sweeps_orphan_blobs_and_temp_files(client: TestClient, owner: OwnerAuth) -> None:
    store = client.app.state.store  # type: ignore[attr-defined]
    [photo_id] = upload_some(client, owner, 1)
    kept_sha = client.get(f"/v1/photos/{photo_id}", headers=owner.headers).json()["sha256"]
    _age(store.path_for(kept_sha), 2 * HOUR)

    # What a crash between the blob write and the row commit leaves behind, old and new.
    old_orphan = store.put(b"old orphan " + os.urandom(8))
    new_orphan = store.put(b"new orphan " + os.urandom(8))
    _age(store.path_for(old_orphan), 2 * HOUR)
    # What a crash in the middle of an atomic write leaves behind.
    old_temp = store.path_for(sha256_hex(b"x")).parent / ".tmp-crashed"
    old_temp.parent.mkdir(parents=True, exist_ok=True)
    old_temp.write_bytes(b"half a file")
    _age(old_temp, 2 * HOUR)
    new_temp = old_temp.with_name(".tmp-in-flight")
    new_temp.write_bytes(b"being written")

    with client.app.state.sessions() as db:  # type: ignore[attr-defined]
        result = sweep_orphans(db, store, min_age_seconds=HOUR)

    assert (result.orphan_blobs, result.temp_files) == (1, 1)
    assert not store.exists(old_orphan) and not old_temp.exists()
    assert store.exists(kept_sha) and store.exists(new_orphan) and new_temp.exists()
    assert client.get(f"/v1/photos/{photo_id}/original", headers=owner.headers).status_code == 200


def test_re_uploading_an_old_blob_protects_it_from_the_sweep(client: TestClient, owner: OwnerAuth) -> None:
    store = client.app.state.store  # type: ignore[attr-defined]
    data = b"about to be referenced " + os.urandom(8)
    sha256 = store.put(data)
    _age(store.path_for(sha256), 2 * HOUR)
    store.put(data)  # an upload of the same bytes, its row not committed yet
    with client.app.state.sessions() as db:  # type: ignore[attr-defined]
        sweep_orphans(db, store, min_age_seconds=HOUR)
    assert store.exists(sha256)
