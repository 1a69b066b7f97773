"""A restarted API loads the overview columns of the owners who uploaded last before any request."""

import logging
import time

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from core.config import Settings
from tests.api.test_photos_upload import EXIF_DIR, EXIF_TRUTH
from tests.conftest import OwnerAuth
from tests.helpers import upload, wait_for_job


def loaded_by_warm_up(caplog: pytest.LogCaptureFixture, owner_id: str) -> set[str]:
    """What the start-up warm-up thread logged loading for this owner."""
    return {
        record.name.rsplit(".", 1)[-1]
        for record in caplog.records
        if record.threadName == "warm-owners" and f"owner {owner_id} loaded" in record.getMessage()
    }


def test_a_restarted_api_has_the_recent_owners_overview_columns_loaded(
    client: TestClient, owner: OwnerAuth, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    names = sorted(EXIF_TRUTH)[:3]
    uploaded = upload(client, owner, [(n, (EXIF_DIR / "images" / n).read_bytes()) for n in names])
    wait_for_job(client, owner, uploaded.json()["job_id"], timeout=120)
    caplog.set_level(logging.INFO, logger="services.search")
    with TestClient(create_app(settings)) as restarted:
        deadline = time.monotonic() + 60
        while not loaded_by_warm_up(caplog, owner.id) and time.monotonic() < deadline:
            time.sleep(0.05)
        # Loaded by the warm-up thread, no request made; the search indexes wait for a search.
        assert loaded_by_warm_up(caplog, owner.id) == {"columns"}
        timeline = restarted.get("/v1/timeline", headers=owner.headers, params={"bucket": "year"})
        assert timeline.status_code == 200
        assert sum(bucket["count"] for bucket in timeline.json()["items"]) == len(names)
