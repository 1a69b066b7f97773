"""How long a bulk edit takes inside one request, to size SHOEBOX_BULK_SYNC_MAX (above it: a job).

Usage: .venv/bin/python bench/bulk_edit.py [--sizes 200,1000,2000] [--postgres ADMIN_URL]

Uploads one real photo, copies its row (new ids and hashes) to reach the largest size with bulk
inserts, then times `POST /v1/photos/bulk` (favourite + rating + a user tag: every photo's search
document is rewritten in the same transaction) for each size, in process through the real app.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import insert, select, text
from sqlalchemy.engine import create_engine, make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.main import create_app
from core.config import Settings
from db.models import Photo
from db.session import session_scope

KEY = "sbx_bench_bulk_edit_key_0123456789"


def run(database_url: str | None, sizes: list[int]) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        values: dict[str, object] = {
            "data_dir": Path(data_dir),
            "bootstrap_key": KEY,
            "analyze_on_upload": False,
            "run_job_workers": False,
            "bulk_sync_max": max(sizes),
        }
        if database_url:
            values["database_url"] = database_url
        settings = Settings(**values)  # type: ignore[arg-type]
        with TestClient(create_app(settings)) as client:
            headers = {"Authorization": f"Bearer {KEY}"}
            sample = (
                Path(__file__).resolve().parent.parent.parent / "shared/testdata/exif/images/exif_0001.jpg"
            )
            client.post("/v1/photos", headers=headers, files=[("files", ("a.jpg", sample.read_bytes()))])
            with session_scope(client.app.state.sessions) as db:  # type: ignore[attr-defined]
                row = db.scalars(select(Photo)).one()
                base = {c.name: getattr(row, c.key) for c in Photo.__table__.columns}
                copies = [
                    {**base, "id": str(uuid.uuid4()), "sha256": uuid.uuid4().hex * 2, "filename": f"c{i}.jpg"}
                    for i in range(max(sizes))
                ]
                db.execute(insert(Photo.__table__), copies)
                db.commit()
            ids = [c["id"] for c in copies]
            for size in sizes:
                body = {
                    "photo_ids": ids[:size],
                    "operations": {"favorite": True, "rating": 3, "add_tags": [f"t{size}"]},
                }
                started = time.perf_counter()
                response = client.post("/v1/photos/bulk", headers=headers, json=body)
                elapsed = time.perf_counter() - started
                assert response.status_code == 200, response.text[:300]
                print(f"{settings.database_url.split(':')[0]:12s} {size:6d} photos: {elapsed:6.2f} s "
                      f"({elapsed / size * 1000:.2f} ms/photo)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="200,1000,2000")
    parser.add_argument("--postgres")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if not args.postgres:
        run(None, sizes)
        return
    admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
    name = f"shoebox_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        run(make_url(args.postgres).set(database=name).render_as_string(hide_password=False), sizes)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
