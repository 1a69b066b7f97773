"""What the web app needs from the service: its files served at `/` without shadowing the API, the
first-run account, the exports list and a person's cover face."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from tests.conftest import OwnerAuth, make_settings
from tests.helpers import upload_ids, wait_for_export, wait_for_idle_jobs, wait_until_analysed
from tests.paths import TESTDATA_DIR

FACE_PHOTOS = ["face_0001.jpg", "face_0010.jpg"]  # Madonna twice


@pytest.fixture
def fresh_client(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    """A brand-new install: its own SQLite database, no owner yet."""
    settings = make_settings("sqlite", tmp_path, request, analyze_on_upload=False)
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def test_index_and_client_routes_answer_the_app_with_a_strict_policy(client: TestClient) -> None:
    for path in ("/", "/people", "/photo/123", "/search?q=dog&people=1"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/html")
        assert '<script type="module" src="/app.js">' in response.text
        assert "script-src 'self'" in response.headers["content-security-policy"]
    script = client.get("/app.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert client.head("/").status_code == 200


def test_the_app_never_shadows_the_api(client: TestClient) -> None:
    # An unknown API path is still the API's 404 problem, and a wrong method on it is not a 405.
    for method, path in (("GET", "/v1/nothing"), ("POST", "/v1/nothing"), ("GET", "/v1")):
        response = client.request(method, path)
        assert response.status_code == 404, (method, path)
        assert response.headers["content-type"] == "application/problem+json"
    assert client.get("/healthz").status_code == 200
    assert client.get("/openapi.json").json()["info"]["title"] == "Shoebox"
    assert "swagger" in client.get("/docs").text.lower()
    # A missing asset is a 404, not the page; nothing outside web/ is served.
    assert client.get("/missing.js").status_code == 404
    assert client.get("/%2e%2e/pyproject.toml").status_code == 404
    # The page is not part of the API's contract.
    assert "/" not in client.get("/openapi.json").json()["paths"]


def test_first_run_creates_one_owner_then_closes(fresh_client: TestClient) -> None:
    assert fresh_client.get("/v1/setup").json() == {"owner_needed": True}
    created = fresh_client.post("/v1/setup", json={"name": "alice"})
    assert created.status_code == 201, created.text
    first = created.json()
    assert first["name"] == "alice" and first["api_key"].startswith("sbx_")
    # The key works, for the API and for a session.
    headers = {"Authorization": f"Bearer {first['api_key']}"}
    assert fresh_client.get("/v1/photos", headers=headers).status_code == 200
    assert fresh_client.post("/v1/session", json={"api_key": first["api_key"]}).status_code == 200
    assert fresh_client.get("/v1/setup").json() == {"owner_needed": False}
    again = fresh_client.post("/v1/setup", json={"name": "mallory"})
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert "already set up" in again.json()["detail"]


def test_first_run_is_closed_when_owners_exist(client: TestClient, owner: OwnerAuth) -> None:
    assert client.get("/v1/setup").json() == {"owner_needed": False}
    answer = client.post("/v1/setup", json={"name": f"late-{uuid.uuid4().hex[:6]}"})
    assert answer.status_code == 409
    assert client.post("/v1/setup", json={"name": "x", "admin": True}).status_code == 422


def test_exports_are_listed_newest_first_and_a_named_person_has_a_cover_face(
    client: TestClient, owner: OwnerAuth, other_owner: OwnerAuth
) -> None:
    files = [(name, (TESTDATA_DIR / "faces" / "images" / name).read_bytes()) for name in FACE_PHOTOS]
    ids = upload_ids(client, owner, files)
    wait_until_analysed(client, owner, list(ids.values()))
    exports = [
        client.post("/v1/exports", headers=owner.headers, json={"photo_ids": selection}).json()
        for selection in ([ids[FACE_PHOTOS[0]]], list(ids.values()))
    ]
    first, second = exports
    wait_for_export(client, owner, second["id"])
    page = client.get("/v1/exports", headers=owner.headers, params={"limit": 1}).json()
    assert [e["id"] for e in page["items"]] == [second["id"]]
    rest = client.get("/v1/exports", headers=owner.headers, params={"cursor": page["next_cursor"]}).json()
    assert [e["id"] for e in rest["items"]] == [first["id"]] and rest["next_cursor"] is None
    assert client.get("/v1/exports", headers=other_owner.headers).json()["items"] == []

    faces = client.get(f"/v1/photos/{ids[FACE_PHOTOS[1]]}/faces", headers=owner.headers).json()["items"]
    labelled = client.post(
        "/v1/faces/label", headers=owner.headers, json={"face_ids": [faces[0]["id"]], "name": "Madonna"}
    )
    assert labelled.status_code == 200, labelled.text
    person_id = labelled.json()["items"][0]["person"]["id"]
    wait_for_idle_jobs(client, owner)
    cover = client.get(f"/v1/people/{person_id}/thumbnail", headers=owner.headers)
    assert cover.status_code == 200
    assert cover.headers["content-type"] == "image/jpeg" and cover.content[:2] == b"\xff\xd8"
    assert client.get(f"/v1/people/{person_id}/thumbnail", headers=other_owner.headers).status_code == 404
