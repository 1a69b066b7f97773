"""Search through HTTP with the real models on real photos: text, by image, similar, duplicates, filters."""

import io
import json
import math
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.api.test_tagging import DETECTION_DIR, most_prominent, tag_names
from tests.conftest import OwnerAuth, new_owner
from tests.helpers import upload_ids, wait_until_analysed
from tests.paths import TESTDATA_DIR

EXIF_DIR = TESTDATA_DIR / "exif"
EXIF_TRUTH: dict[str, dict[str, Any]] = json.loads((EXIF_DIR / "ground_truth.json").read_text())
AREZZO = (43.4684417, 11.881515)
PROBLEM = "application/problem+json"


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(a))


def located(name: str) -> tuple[float, float] | None:
    """The file's GPS position as the service should see it (all-zero GPS means no position)."""
    gps = EXIF_TRUTH[name]["gps"]
    if not gps or (gps["lat"] == 0 and gps["lon"] == 0):
        return None
    return gps["lat"], gps["lon"]


def jpeg_copy(data: bytes, scale: float = 0.5, quality: int = 70) -> bytes:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    image = image.resize((max(1, int(image.width * scale)), max(1, int(image.height * scale))))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def search_all(client: TestClient, owner: OwnerAuth, path: str, params: dict[str, Any]) -> list[dict]:
    """Every item of a search, following cursors."""
    items: list[dict] = []
    cursor = None
    for _ in range(100):
        page = client.get(
            path, headers=owner.headers, params={**params, **({"cursor": cursor} if cursor else {})}
        )
        assert page.status_code == 200, page.text
        body = page.json()
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if not cursor:
            return items
    raise AssertionError("pagination did not end")


@pytest.fixture(scope="module")
def library(client: TestClient) -> tuple[OwnerAuth, dict[str, str], dict[str, bytes]]:
    """Cats, buses and cups from the detection set plus every EXIF photo, analysed."""
    owner = new_owner(client)
    files: list[tuple[str, bytes]] = []
    for kind in ("cat", "bus", "cup"):
        for index, name in enumerate(most_prominent(kind, "person" if kind == "bus" else None)):
            files.append((f"{kind}-{index}.jpg", (DETECTION_DIR / "images" / name).read_bytes()))
    files.extend((name, (EXIF_DIR / "images" / name).read_bytes()) for name in sorted(EXIF_TRUTH))
    ids = upload_ids(client, owner, files)
    wait_until_analysed(client, owner, list(ids.values()), timeout=300)
    return owner, ids, dict(files)


def ids_of(items: list[dict]) -> list[str]:
    return [item["photo"]["id"] for item in items]


def test_words_of_the_content_find_the_photos(client: TestClient, library) -> None:
    owner, ids, _ = library
    for word, kind in (("cat", "cat"), ("Cats", "cat"), ("cups", "cup"), ("a red bus", "bus")):
        items = client.get("/v1/search", headers=owner.headers, params={"q": word}).json()["items"]
        wanted = {ids[f"{kind}-{i}.jpg"] for i in range(3)}
        top = set(ids_of(items)[:3])
        assert len(top & wanted) >= 2, (word, [i["matched"] for i in items[:3]])
        first = items[0]
        assert first["score"] > 0 and first["matched"], first
        assert any(m["query"] for m in first["matched"])
        scores = [item["score"] for item in items]
        assert scores == sorted(scores, reverse=True)


def test_words_find_photos_by_meaning(client: TestClient, library) -> None:
    owner, ids, _ = library
    items = client.get("/v1/search", headers=owner.headers, params={"q": "kitten"}).json()["items"]
    cats = {ids[f"cat-{i}.jpg"] for i in range(3)}
    assert set(ids_of(items)[:3]) & cats, [i["matched"] for i in items[:3]]
    by_meaning = [m for m in items[0]["matched"] if m["similarity"] is not None]
    assert by_meaning and by_meaning[0]["query"] in ("kitten",), items[0]["matched"]


def test_places_appear_on_photos_with_gps_and_are_searchable(client: TestClient, library) -> None:
    owner, ids, _ = library
    photo = client.get(f"/v1/photos/{ids['exif_0001.jpg']}", headers=owner.headers).json()
    assert photo["place"] == {"city": "Arezzo", "region": "Tuscany", "country": "Italy"}
    for name in ("exif_0011.jpg", "exif_0002.jpg"):  # all-zero GPS, no GPS: no place invented
        assert client.get(f"/v1/photos/{ids[name]}", headers=owner.headers).json()["place"] is None
    in_tuscany = {ids[n] for n in EXIF_TRUTH if (pos := located(n)) and haversine_km(*pos, *AREZZO) < 20}
    found = search_all(client, owner, "/v1/search", {"q": "Tuscany", "limit": 3})
    assert in_tuscany and set(ids_of(found)) == in_tuscany
    assert all(any(m["field"] == "place" for m in item["matched"]) for item in found)
    in_england = {ids[n] for n in EXIF_TRUTH if EXIF_TRUTH[n]["gps"] and -3 < EXIF_TRUTH[n]["gps"]["lon"] < 0}
    assert set(ids_of(search_all(client, owner, "/v1/search", {"q": "england"}))) == in_england


def test_capture_date_camera_and_file_name_are_searchable(client: TestClient, library) -> None:
    owner, ids, _ = library
    items = client.get("/v1/search", headers=owner.headers, params={"q": "coolpix october 2008"}).json()[
        "items"
    ]
    expected = {
        ids[n]
        for n, v in EXIF_TRUTH.items()
        if v["model"] == "COOLPIX P6000" and (v["datetime_original"] or "").startswith("2008:10")
    }
    assert expected and set(ids_of(items)[: len(expected)]) == expected, [
        (i["photo"]["filename"], i["score"], [(m["field"], m["value"]) for m in i["matched"]])
        for i in items[:7]
    ]
    assert {m["field"] for m in items[0]["matched"]} >= {"camera", "date"}
    by_name = client.get("/v1/search", headers=owner.headers, params={"q": "exif_0042"}).json()["items"]
    assert ids_of(by_name)[0] == ids["exif_0042.jpg"]
    # Kenya is south of the equator: an August photo there was taken in winter.
    winter = client.get("/v1/search", headers=owner.headers, params={"q": "winter 2005"}).json()["items"]
    assert ids_of(winter)[0] == ids["exif_0042.jpg"]


def test_radius_filter_agrees_with_haversine(client: TestClient, library) -> None:
    owner, ids, _ = library
    anchor = ids["exif_0001.jpg"]
    for radius_km in (0.5, 50, 400, 1500, 6000):
        expected = {
            ids[n] for n in EXIF_TRUTH if (pos := located(n)) and haversine_km(*AREZZO, *pos) <= radius_km
        }
        params = {"lat": AREZZO[0], "lon": AREZZO[1], "radius_km": radius_km, "limit": 4}
        similar = search_all(client, owner, f"/v1/photos/{anchor}/similar", params)
        assert set(ids_of(similar)) == expected - {anchor}, radius_km
        scores = [item["score"] for item in similar]
        assert scores == sorted(scores, reverse=True)
        text = search_all(client, owner, "/v1/search", {**params, "q": "nikon fujifilm kodak htc"})
        assert set(ids_of(text)) == expected, radius_km


def test_filters_combine_with_text_search_and_paginate(client: TestClient, library) -> None:
    owner, _, _ = library
    everything = client.get("/v1/search", headers=owner.headers, params={"q": "person", "limit": 200}).json()
    paged = search_all(client, owner, "/v1/search", {"q": "person", "limit": 2})
    assert ids_of(paged) == ids_of(everything["items"]) and len(paged) >= 3
    assert len(set(ids_of(paged))) == len(paged)
    tagged_bus = search_all(client, owner, "/v1/search", {"q": "person", "tags": "bus", "limit": 1})
    for item in tagged_bus:
        assert "bus" in tag_names(item["photo"])
    assert set(ids_of(tagged_bus)) <= set(ids_of(paged))
    after = datetime(2005, 1, 1)
    dated = search_all(
        client, owner, "/v1/search", {"q": "nikon", "taken_after": after.isoformat(), "limit": 2}
    )
    assert dated and all(datetime.fromisoformat(i["photo"]["taken_at"][:19]) >= after for i in dated)
    none = client.get("/v1/search", headers=owner.headers, params={"q": "cat", "min_quality": 100}).json()
    assert none["items"] == [] or all(i["photo"]["quality"]["score"] >= 100 for i in none["items"])
    faces = search_all(client, owner, "/v1/search", {"q": "person", "has_faces": "false"})
    assert all(item["photo"]["faces_count"] == 0 for item in faces)


def test_by_image_finds_the_query_photos_duplicate_first(client: TestClient, library) -> None:
    owner, ids, files = library
    for name in ("cat-0.jpg", "bus-1.jpg", "exif_0001.jpg"):
        copy = jpeg_copy(files[name])
        response = client.post(
            "/v1/search/by-image", headers=owner.headers, files={"file": ("q.jpg", copy, "image/jpeg")}
        )
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert items[0]["photo"]["id"] == ids[name]
        assert items[0]["matched"][0]["field"] == "image"
        assert items[0]["matched"][0]["value"] == "near-duplicate"
        assert items[0]["score"] > items[1]["score"]
    # The query photo was analysed, never stored.
    assert len(
        search_all(client, owner, "/v1/search", {"q": "cat dog bus cup person nikon", "limit": 200})
    ) <= len(ids)
    filtered = client.post(
        "/v1/search/by-image",
        headers=owner.headers,
        params={"tags": "cup"},
        files={"file": ("q.jpg", jpeg_copy(files["cat-0.jpg"]), "image/jpeg")},
    ).json()["items"]
    assert filtered and all("cup" in tag_names(item["photo"]) for item in filtered)


def test_similar_and_duplicates(client: TestClient, library) -> None:
    owner, ids, files = library
    # A smaller, recompressed copy of a photo: its nearest neighbour, and one duplicate group with it.
    copy_ids = upload_ids(client, owner, [("small-copy.jpg", jpeg_copy(files["bus-0.jpg"], scale=0.5))])
    copy_id = copy_ids["small-copy.jpg"]
    wait_until_analysed(client, owner, [copy_id])
    near = client.get(f"/v1/photos/{copy_id}/similar", headers=owner.headers).json()["items"]
    assert copy_id not in ids_of(near)
    assert ids_of(near)[0] == ids["bus-0.jpg"] and near[0]["matched"][0]["value"] == "near-duplicate"
    scores = [item["score"] for item in near]
    assert scores == sorted(scores, reverse=True) and near[-1]["score"] < 0.85
    groups = client.get("/v1/duplicates", headers=owner.headers).json()["items"]
    group = next(g for g in groups if copy_id in [p["id"] for p in g["photos"]])
    assert group["photos"][0]["id"] == ids["bus-0.jpg"] == group["best_photo_id"]
    assert group["size"] == len(group["photos"]) == 2 and group["similarity"] >= 0.85
    assert group["best_by"] == "quality_score"  # analysed photos carry a quality score
    # The EXIF set holds one photo under each of the 8 orientation tags: upright, they are duplicates.
    assert groups[0]["size"] >= 8
    assert [g["size"] for g in groups] == sorted((g["size"] for g in groups), reverse=True)
    paged = search_all(client, owner, "/v1/duplicates", {"limit": 1})
    assert [g["best_photo_id"] for g in paged] == [g["best_photo_id"] for g in groups]


def test_search_follows_every_change(client: TestClient, library) -> None:
    owner, ids, files = library
    photo_id = ids["cup-2.jpg"]

    def found(q: str) -> set[str]:
        return set(ids_of(client.get("/v1/search", headers=owner.headers, params={"q": q}).json()["items"]))

    assert photo_id not in found("grandma")
    client.post(f"/v1/photos/{photo_id}/tags", headers=owner.headers, json={"name": "Grandma"})
    assert found("grandma") == {photo_id}
    client.delete(f"/v1/photos/{photo_id}/tags/grandma", headers=owner.headers)
    assert photo_id not in found("grandma")
    client.patch(f"/v1/photos/{photo_id}", headers=owner.headers, json={"caption": "Breakfast in Zürich"})
    assert photo_id in found("zurich breakfast")
    rejected = next(
        iter(tag_names(client.get(f"/v1/photos/{photo_id}", headers=owner.headers).json(), "object"))
    )

    def tag_match(items: list[dict[str, Any]]) -> bool:
        """Whether the photo came back because of the tag's own words."""
        hit = next((i for i in items if i["photo"]["id"] == photo_id), None)
        return hit is not None and any(m["value"] == rejected for m in hit["matched"])

    search = {"q": rejected, "limit": 200}
    assert tag_match(client.get("/v1/search", headers=owner.headers, params=search).json()["items"])
    client.patch(f"/v1/photos/{photo_id}/tags/{rejected}", headers=owner.headers, json={"state": "rejected"})
    # It may still look like what the words say, but never because of the tag the user rejected.
    assert not tag_match(client.get("/v1/search", headers=owner.headers, params=search).json()["items"])
    extra = upload_ids(client, owner, [("zz-extra.jpg", jpeg_copy(files["cat-1.jpg"], scale=0.7))])[
        "zz-extra.jpg"
    ]
    assert extra in found("zz extra")
    assert client.delete(f"/v1/photos/{extra}", headers=owner.headers).status_code == 204
    assert extra not in found("zz extra")


def test_another_owners_photos_never_appear(client: TestClient, library) -> None:
    _, ids, files = library
    stranger = new_owner(client)
    mine = upload_ids(client, stranger, [("cat-mine.jpg", files["cat-0.jpg"])])
    wait_until_analysed(client, stranger, list(mine.values()))
    for path, params in (
        ("/v1/search", {"q": "cat"}),
        ("/v1/search", {"q": "arezzo"}),
        ("/v1/duplicates", {}),
    ):
        items = search_all(client, stranger, path, params)
        seen = (
            {p["id"] for g in items for p in g["photos"]} if path == "/v1/duplicates" else set(ids_of(items))
        )
        assert seen <= set(mine.values()), path
    by_image = client.post(
        "/v1/search/by-image",
        headers=stranger.headers,
        files={"file": ("q.jpg", files["bus-0.jpg"], "image/jpeg")},
    ).json()["items"]
    assert set(ids_of(by_image)) <= set(mine.values())
    similar = client.get(f"/v1/photos/{ids['cat-0.jpg']}/similar", headers=stranger.headers)
    assert similar.status_code == 404 and similar.headers["content-type"] == PROBLEM
    own = client.get(f"/v1/photos/{mine['cat-mine.jpg']}/similar", headers=stranger.headers).json()["items"]
    assert own == []


@pytest.mark.parametrize(
    ("method", "path", "params", "status"),
    [
        ("get", "/v1/search", {}, 422),
        ("get", "/v1/search", {"q": ""}, 422),
        ("get", "/v1/search", {"q": "   "}, 422),
        ("get", "/v1/search", {"q": "x" * 501}, 422),
        ("get", "/v1/search", {"q": "cat", "limit": 0}, 422),
        ("get", "/v1/search", {"q": "cat", "cursor": "not-a-cursor"}, 422),
        ("get", "/v1/search", {"q": "cat", "lat": 10}, 422),
        ("get", "/v1/search", {"q": "cat", "radius_km": -1, "lat": 1, "lon": 1}, 422),
        ("get", "/v1/search", {"q": "cat", "taken_after": "yesterday"}, 422),
        ("get", "/v1/search", {"q": "cat", "min_quality": 101}, 422),
        ("get", "/v1/photos/no-such-photo/similar", {}, 404),
        ("get", "/v1/duplicates", {"cursor": "eyJhIjoxfQ"}, 422),
        ("get", "/v1/duplicates", {"limit": 1000}, 422),
    ],
)
def test_bad_input_is_a_problem(client: TestClient, owner: OwnerAuth, method, path, params, status) -> None:
    response = getattr(client, method)(path, headers=owner.headers, params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["status"] == status


def test_by_image_rejects_what_is_not_an_image(client: TestClient, owner: OwnerAuth) -> None:
    any_photo = (EXIF_DIR / "images" / "exif_0001.jpg").read_bytes()
    cases = [
        ({"file": ("x.jpg", b"", "image/jpeg")}, {}, 422),
        ({"file": ("x.txt", b"hello, not an image", "text/plain")}, {}, 415),
        ({}, {}, 422),
        ({"file": ("x.jpg", jpeg_copy(any_photo), "image/jpeg")}, {"lat": 1}, 422),
    ]
    for files, params, status in cases:
        response = client.post(
            "/v1/search/by-image", headers=owner.headers, files=files or None, params=params
        )
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == PROBLEM
    assert client.get("/v1/search", params={"q": "cat"}).status_code == 401
