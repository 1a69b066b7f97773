"""What many tests do: upload real photos through the API and wait for the service's background work."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
from fastapi.testclient import TestClient

from tests.conftest import OwnerAuth

ACTIVE_JOB_STATES = ("queued", "running")
FINAL_JOB_STATES = ("succeeded", "failed", "cancelled")


def wait_until(check: Callable[[], Any], *, timeout: float, what: str, every: float = 0.05) -> Any:
    """Poll `check` until it returns something truthy (returned); fail naming `what` at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(every)


def upload(
    client: TestClient,
    owner: OwnerAuth,
    files: list[tuple[str, bytes]],
    content_type: str = "application/octet-stream",
) -> httpx.Response:
    """One multi-file upload request, as a client sends it."""
    return client.post(
        "/v1/photos",
        headers=owner.headers,
        files=[("files", (name, data, content_type)) for name, data in files],
    )


def upload_ids(client: TestClient, owner: OwnerAuth, files: list[tuple[str, bytes]]) -> dict[str, str]:
    """Upload new photos (16 per request) and return their ids by file name; every file must be created."""
    ids: dict[str, str] = {}
    for start in range(0, len(files), 16):
        batch = files[start : start + 16]
        response = upload(client, owner, batch, "image/jpeg")
        assert response.status_code == 201, response.text
        for (name, _), result in zip(batch, response.json()["results"], strict=True):
            assert result["status"] == "created", result
            ids[name] = result["photo"]["id"]
    return ids


def wait_for_state(
    client: TestClient, owner: OwnerAuth, path: str, final: tuple[str, ...], timeout: float = 60
) -> dict[str, Any]:
    """Poll a resource until its `state` is one of `final`."""

    def finished() -> dict[str, Any] | None:
        resource: dict[str, Any] = client.get(path, headers=owner.headers).json()
        return resource if resource["state"] in final else None

    result: dict[str, Any] = wait_until(finished, timeout=timeout, what=f"{path} finishing")
    return result


def wait_for_job(client: TestClient, owner: OwnerAuth, job_id: str, timeout: float = 60) -> dict[str, Any]:
    return wait_for_state(client, owner, f"/v1/jobs/{job_id}", FINAL_JOB_STATES, timeout)


def wait_for_export(
    client: TestClient, owner: OwnerAuth, export_id: str, timeout: float = 120
) -> dict[str, Any]:
    return wait_for_state(
        client, owner, f"/v1/exports/{export_id}", ("ready", "failed", "cancelled"), timeout
    )


def wait_for_idle_jobs(client: TestClient, owner: OwnerAuth, timeout: float = 60) -> None:
    """Every job of the owner finished (e.g. the recognition a label change queued)."""

    def idle() -> bool:
        jobs = client.get("/v1/jobs", headers=owner.headers, params={"limit": 200}).json()["items"]
        return not any(job["state"] in ACTIVE_JOB_STATES for job in jobs)

    wait_until(idle, timeout=timeout, what="the owner's jobs finishing")


def wait_until_analysed(
    client: TestClient, owner: OwnerAuth, photo_ids: list[str], timeout: float = 120
) -> None:
    """Every photo analysed successfully (a failed analysis fails the test at once)."""
    pending = set(photo_ids)

    def all_done() -> bool:
        for photo_id in list(pending):
            state = client.get(f"/v1/photos/{photo_id}", headers=owner.headers).json()["analysis_state"]
            assert state != "failed", f"analysis of {photo_id} failed"
            if state == "done":
                pending.discard(photo_id)
        return not pending

    wait_until(all_done, timeout=timeout, what=f"analysis of {len(photo_ids)} photos", every=0.1)
