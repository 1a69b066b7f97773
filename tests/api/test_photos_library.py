"""Listing, filters, sorting, pagination, patching, owner isolation and problem answers."""

import json
import math

import pytest
from fastapi.testclient import TestClient

from tests.api.test_photos_upload import EXIF_DIR, EXIF_TRUTH
from tests.conftest import OwnerAuth, new_owner
from tests.helpers import upload


@pytest.fixture(scope="module")
def library(client: TestClient) -> tuple[OwnerAuth, dict[str, dict]]:
    owner = new_owner(client)
    files = [(name, (EXIF_DIR / "images" / name).read_bytes()) for name in sorted(EXIF_TRUTH)]
    results = upload(client, owner, files).json()["results"]
    return owner, {r["filename"]: r["photo"] for r in results}


def list_all(client: TestClient, owner: OwnerAuth, limit: int = 7, **params: object) -> list[dict]:
    items: list[dict] = []
    cursor = None
    for _ in range(100):
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = client.get("/v1/photos", headers=owner.headers, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize("sort", ["taken_at", "-taken_at", "uploaded_at", "-uploaded_at"])
def test_pagination_walks_every_photo_once_in_order(client: TestClient, library, sort: str) -> None:
    owner, photos = library
    items = list_all(client, owner, sort=sort)
    assert sorted(p["id"] for p in items) == sorted(p["id"] for p in photos.values())
    field = sort.lstrip("-")
    dated = [p[field] for p in items if p[field] is not None]
    assert dated == sorted(dated, reverse=sort.startswith("-"))
    if field == "taken_at":  # photos without a capture time come last either way
        flags = [p["taken_at"] is None for p in items]
        assert flags == sorted(flags)


@pytest.mark.parametrize("sort", ["-taken_at", "taken_at"])
def test_every_page_size_walks_the_same_order(client: TestClient, library, sort: str) -> None:
    """Pages end anywhere: inside the dated photos, exactly at their end, or among the undated ones."""
    owner, photos = library
    whole = [p["id"] for p in list_all(client, owner, limit=200, sort=sort)]
    dated = sum(p["taken_at"] is not None for p in photos.values())
    assert 0 < dated < len(whole)
    for limit in sorted({1, 2, 3, 5, dated, dated - 1, dated + 1, len(whole) - dated}):
        assert [p["id"] for p in list_all(client, owner, limit=limit, sort=sort)] == whole, limit


def test_date_range_filter(client: TestClient, library) -> None:
    owner, photos = library
    items = list_all(client, owner, taken_after="2008-01-01T00:00:00", taken_before="2009-12-31T23:59:59")
    expected = {
        p["id"]
        for p in photos.values()
        if p["taken_at"] and "2008-01-01" <= p["taken_at"][:10] <= "2009-12-31"
    }
    assert expected and {p["id"] for p in items} == expected


def test_camera_filter(client: TestClient, library) -> None:
    owner, photos = library
    items = list_all(client, owner, camera="nikon")
    expected = {
        p["id"] for p in photos.values() if p["camera"] and "nikon" in (p["camera"]["make"] or "").lower()
    }
    assert expected and {p["id"] for p in items} == expected


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0088 * math.asin(math.sqrt(a))


def test_gps_radius_filter_agrees_with_haversine(client: TestClient, library) -> None:
    owner, photos = library
    located = [p for p in photos.values() if p["gps"]]
    assert located
    centre = located[0]["gps"]
    for radius in (0.5, 5, 50, 2000):
        items = list_all(client, owner, lat=centre["lat"], lon=centre["lon"], radius_km=radius)
        expected = {
            p["id"]
            for p in located
            if haversine_km(centre["lat"], centre["lon"], p["gps"]["lat"], p["gps"]["lon"]) <= radius
        }
        assert {p["id"] for p in items} == expected, radius


def test_radius_needs_lat_and_lon(client: TestClient, library) -> None:
    owner, _ = library
    response = client.get("/v1/photos", headers=owner.headers, params={"lat": 10, "radius_km": 5})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "lon"


def test_patch_rotation_and_caption(client: TestClient, library) -> None:
    owner, photos = library
    photo = next(iter(photos.values()))
    response = client.patch(
        f"/v1/photos/{photo['id']}", headers=owner.headers, json={"rotation": 90, "caption": "Holiday"}
    )
    assert response.status_code == 200
    assert (response.json()["rotation"], response.json()["caption"]) == (90, "Holiday")
    bad = client.patch(f"/v1/photos/{photo['id']}", headers=owner.headers, json={"rotation": 45})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "rotation"
    client.patch(f"/v1/photos/{photo['id']}", headers=owner.headers, json={"rotation": 0})


def test_another_owner_sees_nothing(client: TestClient, library, other_owner: OwnerAuth) -> None:
    owner, photos = library
    photo_id = next(iter(photos.values()))["id"]
    assert client.get("/v1/photos", headers=other_owner.headers).json()["items"] == []
    for method, path in [
        ("GET", f"/v1/photos/{photo_id}"),
        ("GET", f"/v1/photos/{photo_id}/original"),
        ("GET", f"/v1/photos/{photo_id}/thumbnail"),
        ("PATCH", f"/v1/photos/{photo_id}"),
        ("DELETE", f"/v1/photos/{photo_id}"),
    ]:
        response = client.request(
            method, path, headers=other_owner.headers, json={"caption": "x"} if method == "PATCH" else None
        )
        assert response.status_code == 404, (method, path)
        assert response.headers["content-type"] == "application/problem+json"
    job = client.post(
        "/v1/jobs", headers=other_owner.headers, json={"type": "verify", "photo_ids": [photo_id]}
    )
    assert job.status_code == 404
    assert client.get(f"/v1/photos/{photo_id}", headers=owner.headers).status_code == 200


def test_missing_or_wrong_key_is_401(client: TestClient, library) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        response = client.get("/v1/photos", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["content-type"] == "application/problem+json"


def test_errors_are_problems(client: TestClient, owner: OwnerAuth) -> None:
    not_found = client.get("/v1/nothing-here", headers=owner.headers)
    assert not_found.status_code == 404 and not_found.json()["status"] == 404
    not_allowed = client.put("/v1/photos", headers=owner.headers)
    assert (
        not_allowed.status_code == 405 and not_allowed.headers["content-type"] == "application/problem+json"
    )
    bad_cursor = client.get("/v1/photos", headers=owner.headers, params={"cursor": "!!!"})
    assert bad_cursor.status_code == 422 and bad_cursor.json()["errors"][0]["field"] == "cursor"
    bad_json = client.patch(
        "/v1/photos/x", headers={**owner.headers, "content-type": "application/json"}, content=b"{not json"
    )
    # Not JSON at all is a malformed request: 400 (422 is for JSON with wrong values).
    assert bad_json.status_code == 400 and bad_json.headers["content-type"] == "application/problem+json"


def test_unexpected_errors_answer_500_without_internals(client: TestClient, owner: OwnerAuth) -> None:
    from api.deps import get_store

    def broken_store() -> None:
        raise RuntimeError("secret internal detail")

    client.app.dependency_overrides[get_store] = broken_store
    try:
        response = client.delete("/v1/trash", headers=owner.headers)  # emptying the trash needs the store
    finally:
        client.app.dependency_overrides.clear()
    assert response.status_code == 500
    body = response.json()
    assert body["request_id"] and "secret" not in json.dumps(body)


def test_metrics_count_requests_and_photos(client: TestClient, library) -> None:
    owner, _ = library
    client.get("/v1/photos", headers=owner.headers)
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'shoebox_http_requests_total{method="GET",route="/v1/photos",status="200"}' in text
    # Library figures span every owner: only a scraper holding SHOEBOX_METRICS_TOKEN sees them.
    assert "shoebox_photos{" not in text
    settings = client.app.state.settings  # type: ignore[attr-defined]
    client.app.state.settings = settings.model_copy(update={"metrics_token": "scrape"})  # type: ignore[attr-defined]
    try:
        text = client.get("/metrics", headers={"Authorization": "Bearer scrape"}).text
    finally:
        client.app.state.settings = settings  # type: ignore[attr-defined]
    assert "shoebox_photos{" in text and "shoebox_jobs{" in text
