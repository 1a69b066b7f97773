"""The library through HTTP on real photos: favourites, ratings, archive, trash, albums, bulk edits,
timeline, places, map and facets, on both databases."""

import io
import json
import subprocess
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import delete, update

import services.library.facets as facet_service
import services.library.timeline as timeline_service
from api.main import create_app
from db.models import Photo
from db.search_models import FacetCount, PhotoSearchDoc, SearchOwnerState
from db.session import session_scope
from db.types import utcnow
from services.library.trash import purge_expired
from services.photos.filters import PhotoFilters
from services.search.columns import owner_columns
from services.search.documents import build_facet_counts
from services.search.facet_counts import counts_ready
from tests.api.test_photos_upload import expected_capture_time
from tests.api.test_search import EXIF_DIR, EXIF_TRUTH, jpeg_copy, located, search_all
from tests.conftest import OwnerAuth, make_settings, new_owner
from tests.helpers import upload_ids as upload
from tests.helpers import wait_for_export, wait_for_state, wait_until_analysed
from tests.paths import TESTDATA_DIR

FACES_DIR = TESTDATA_DIR / "faces"
FACES_TRUTH: dict[str, str] = json.loads((FACES_DIR / "ground_truth.json").read_text())
# Small, so that the bulk edit's job path is reached by a test-sized selection.
BULK_SYNC_MAX = 5


@pytest.fixture(scope="module")
def app_client(
    backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[TestClient]:
    """An app that analyses only when asked (most checks here need no model), bulk jobs above 5."""
    settings = make_settings(
        backend,
        tmp_path_factory.mktemp(f"library-{backend}"),
        request,
        analyze_on_upload=False,
        bulk_sync_max=BULK_SYNC_MAX,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def exif_files(names: list[str] | None = None) -> list[tuple[str, bytes]]:
    return [(name, (EXIF_DIR / "images" / name).read_bytes()) for name in sorted(names or EXIF_TRUTH)]


def analyse(client: TestClient, owner: OwnerAuth, photo_ids: list[str]) -> None:
    job = client.post("/v1/jobs", headers=owner.headers, json={"type": "analyze", "photo_ids": photo_ids})
    assert job.status_code == 202, job.text
    wait_until_analysed(client, owner, photo_ids, timeout=300)


@pytest.fixture(scope="module")
def exif_library(app_client: TestClient) -> tuple[OwnerAuth, dict[str, str]]:
    """Every EXIF sample; the located ones analysed, so they have place names."""
    owner = new_owner(app_client)
    ids = upload(app_client, owner, exif_files())
    analyse(app_client, owner, [ids[name] for name in ids if located(name)])
    return owner, ids


def listed(client: TestClient, owner: OwnerAuth, **params: Any) -> set[str]:
    return {p["id"] for p in search_all(client, owner, "/v1/photos", {"limit": 200, **params})}


def patch(client: TestClient, owner: OwnerAuth, photo_id: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.patch(f"/v1/photos/{photo_id}", headers=owner.headers, json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_favourite_rating_archive_and_their_filters(app_client: TestClient) -> None:
    owner = new_owner(app_client)
    ids = list(upload(app_client, owner, exif_files()[:6]).values())
    first = patch(app_client, owner, ids[0], {"favorite": True, "rating": 5})
    assert (first["favorite"], first["rating"], first["archived"]) == (True, 5, False)
    patch(app_client, owner, ids[1], {"rating": 3})
    patch(app_client, owner, ids[2], {"archived": True, "favorite": True})
    assert listed(app_client, owner, favorite="true") == {ids[0]}  # the archived favourite stays hidden
    assert listed(app_client, owner, favorite="true", archived="true") == {ids[2]}
    assert listed(app_client, owner, min_rating=3) == {ids[0], ids[1]}
    assert listed(app_client, owner, min_rating=4) == {ids[0]}
    assert listed(app_client, owner) == set(ids) - {ids[2]}
    assert listed(app_client, owner, archived="true") == {ids[2]}
    page = app_client.get("/v1/photos", headers=owner.headers, params={"include_total": "true", "limit": 1})
    assert page.json()["total"] == 5 and len(page.json()["items"]) == 1
    rated = app_client.get(
        "/v1/photos", headers=owner.headers, params={"include_total": "true", "min_rating": 3}
    )
    assert rated.json()["total"] == 2
    assert app_client.get("/v1/photos", headers=owner.headers).json().get("total") is None
    search = app_client.get("/v1/search", headers=owner.headers, params={"q": "exif"}).json()["items"]
    assert ids[2] not in {item["photo"]["id"] for item in search} and search
    for bad in ({"rating": 6}, {"rating": -1}, {"favourite": True}):
        assert app_client.patch(f"/v1/photos/{ids[0]}", headers=owner.headers, json=bad).status_code == 422
    assert app_client.get("/v1/photos", headers=owner.headers, params={"min_rating": 9}).status_code == 422


def test_timeline_counts_equal_the_exif_ground_truth(app_client: TestClient, exif_library) -> None:
    owner, _ = exif_library
    captured = [expected_capture_time(truth) for truth in EXIF_TRUTH.values()]
    for bucket, width in (("year", 4), ("month", 7), ("day", 10)):
        response = app_client.get("/v1/timeline", headers=owner.headers, params={"bucket": bucket})
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        expected = Counter(c[:width] if c else None for c in captured)
        assert {item["bucket"]: item["count"] for item in items} == expected
        dated = [item["bucket"] for item in items if item["bucket"] is not None]
        assert dated == sorted(dated, reverse=True) and items[-1]["bucket"] is None  # undated last
    # Each bucket's first photo is its earliest.
    years = app_client.get("/v1/timeline", headers=owner.headers, params={"bucket": "year"}).json()["items"]
    for item in years[:3]:
        photo = app_client.get(f"/v1/photos/{item['first_photo_id']}", headers=owner.headers).json()
        earliest = min(c for c in captured if c and c.startswith(item["bucket"]))
        assert photo["taken_at"][:19] == earliest
    # With a filter: the camera filter counts only that camera's photos.
    nikon = app_client.get(
        "/v1/timeline", headers=owner.headers, params={"bucket": "year", "camera": "nikon"}
    ).json()["items"]
    expected_nikon = Counter(
        expected_capture_time(t)[:4] if expected_capture_time(t) else None  # type: ignore[index]
        for t in EXIF_TRUTH.values()
        if "nikon" in (t["make"] or "").lower() or "nikon" in (t["model"] or "").lower()
    )
    assert {i["bucket"]: i["count"] for i in nikon} == expected_nikon
    assert app_client.get("/v1/timeline", headers=owner.headers, params={"bucket": "week"}).status_code == 422


def test_map_finds_a_gps_photo_and_not_one_far_away(app_client: TestClient, exif_library) -> None:
    owner, ids = exif_library
    lat, lon = located("exif_0042.jpg")  # type: ignore[misc]  # Kenya, alone in its region
    around = f"{lon - 0.5},{lat - 0.5},{lon + 0.5},{lat + 0.5}"
    clusters = app_client.get("/v1/map", headers=owner.headers, params={"bbox": around, "zoom": 8}).json()
    assert [(c["count"], c["photo_id"]) for c in clusters["items"]] == [(1, ids["exif_0042.jpg"])]
    assert abs(clusters["items"][0]["lat"] - lat) < 1e-5
    far = app_client.get("/v1/map", headers=owner.headers, params={"bbox": "150,-40,155,-30", "zoom": 8})
    assert far.json()["items"] == []
    # The whole world at zoom 0 holds every located photo; Arezzo's five merge into one cluster there.
    world = app_client.get("/v1/map", headers=owner.headers, params={"bbox": "-180,-90,180,90", "zoom": 0})
    located_count = sum(1 for name in EXIF_TRUTH if located(name))
    assert sum(c["count"] for c in world.json()["items"]) == located_count
    arezzo = [name for name in EXIF_TRUTH if (pos := located(name)) and abs(pos[0] - 43.468) < 0.01]
    assert max(c["count"] for c in world.json()["items"]) >= len(arezzo)
    # Zoomed in to street level, Arezzo's photos split into several clusters.
    box = "11.87,43.46,11.89,43.47"
    street = app_client.get("/v1/map", headers=owner.headers, params={"bbox": box, "zoom": 18}).json()
    assert len(street["items"]) > 1 and sum(c["count"] for c in street["items"]) == len(arezzo)
    assert listed(app_client, owner, has_gps="true") == {ids[n] for n in EXIF_TRUTH if located(n)}
    for bad in (
        {"bbox": "1,2,3"},
        {"bbox": "0,10,1,5"},
        {"bbox": "a,b,c,d"},
        {"bbox": "0,0,1,1", "zoom": 40},
    ):
        assert app_client.get("/v1/map", headers=owner.headers, params=bad).status_code == 422


def test_places_with_counts_and_the_place_filter(app_client: TestClient, exif_library) -> None:
    owner, _ = exif_library
    response = app_client.get("/v1/places", headers=owner.headers)
    assert response.status_code == 200, response.text
    places = response.json()["items"]
    assert sum(p["count"] for p in places) == sum(1 for name in EXIF_TRUTH if located(name))
    top = places[0]
    assert top["country"] == "Italy" and top["count"] >= 5
    name = top["city"] or top["region"]
    in_place = listed(app_client, owner, place=name)
    assert len(in_place) == top["count"] and top["photo_id"] in in_place
    assert listed(app_client, owner, place="italy") >= in_place


def test_facets_count_what_the_filters_leave(app_client: TestClient, exif_library) -> None:
    owner, _ = exif_library
    response = app_client.get("/v1/facets", headers=owner.headers, params={"limit": 200})
    assert response.status_code == 200, response.text
    facets = response.json()
    assert facets["total"] == len(EXIF_TRUTH)
    years = Counter(c[:4] if (c := expected_capture_time(t)) else None for t in EXIF_TRUTH.values())
    assert {y["value"]: y["count"] for y in facets["years"]} == years
    makes = Counter((t["make"] or None) for t in EXIF_TRUTH.values() if t["make"] or t["model"])
    by_make = Counter()
    for camera in facets["cameras"]:
        by_make[camera["make"]] += camera["count"]
    for make, count in makes.most_common(3):
        assert by_make[make] == count
    assert facets["favorite"] == [{"value": False, "count": len(EXIF_TRUTH)}]
    italy = app_client.get("/v1/facets", headers=owner.headers, params={"place": "italy"}).json()
    assert italy["total"] == sum(p["count"] for p in italy["places"]) >= 5
    assert all(p["country"] == "Italy" for p in italy["places"])


def test_filtered_overviews_equal_the_grouped_queries(
    app_client: TestClient, exif_library: tuple[OwnerAuth, dict[str, str]]
) -> None:
    """Every filter of the one filter model, counted on the photo columns, against the grouped queries:
    text filters with LIKE's wildcards or non-ASCII letters (asked of the database), a radius across
    the antimeridian, an album."""
    owner, ids = exif_library
    lat, lon = located("exif_0042.jpg")  # type: ignore[misc]
    chosen = sorted(ids.values())[:4]
    chosen_album = album(app_client, owner, name="overview")["id"]
    added = app_client.post(
        f"/v1/albums/{chosen_album}/photos", headers=owner.headers, json={"photo_ids": chosen}
    )
    assert added.status_code < 300, added.text
    filter_sets: list[dict[str, Any]] = [
        {"camera": "nikon"},
        {"camera": "p60_0"},
        {"camera": "canon eos"},
        {"camera": "Ñikon"},
        {"place": "italy"},
        {"place": " ITALY "},
        {"place": "İtaly"},
        {"lat": lat, "lon": lon, "radius_km": 50},
        {"lat": 43.47, "lon": 11.88, "radius_km": 2000},
        {"lat": 0.0, "lon": 179.9, "radius_km": 1000},
        {"has_gps": "true"},
        {"has_gps": "false", "taken_after": "2008-01-01T00:00:00+02:00"},
        {"taken_before": "2012-12-31T23:59:59"},
        {"min_quality": 40},
        {"album": chosen_album},
        {"album": chosen_album, "camera": "canon"},
        {"tags": "nothing-has-this"},
        {"people": "no-such-person"},
    ]
    assert_overviews_exact(app_client, owner, filter_sets)
    some = http_answers(app_client, owner, {"camera": "p60_0"})
    assert some[1]["total"] > 0, "the wildcard should match the COOLPIX P6000"


def canonical(facets: dict[str, Any]) -> dict[str, Any]:
    """Facets with each list in one order (ties may come back in any order)."""

    def ordered(items: list[Any]) -> list[Any]:
        return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))

    return {
        name: {kind: ordered(v) for kind, v in value.items()}
        if name == "tags"
        else ordered(value)
        if isinstance(value, list)
        else value
        for name, value in facets.items()
    }


def grouped_answers(
    client: TestClient, owner: OwnerAuth, params: dict[str, Any]
) -> tuple[dict[str, list[tuple[Any, ...]]], dict[str, Any]]:
    """The timelines and facets for these filters as the grouped SQL queries count them."""
    filters = PhotoFilters(**params)
    with session_scope(client.app.state.sessions) as db:  # type: ignore[attr-defined]
        timelines = {
            bucket: [
                (b.bucket, b.count, b.first_photo_id)
                for b in timeline_service.grouped_timeline(
                    db, owner_id=owner.id, filters=filters, bucket=bucket
                )
            ]
            for bucket in ("year", "month", "day")
        }
        facets = facet_service.counted_facets(db, owner_id=owner.id, filters=filters, limit=200)
    return timelines, canonical(facets)


def http_answers(
    client: TestClient, owner: OwnerAuth, params: dict[str, Any]
) -> tuple[dict[str, list[tuple[Any, ...]]], dict[str, Any]]:
    timelines = {}
    for bucket in ("year", "month", "day"):
        response = client.get("/v1/timeline", headers=owner.headers, params={"bucket": bucket, **params})
        assert response.status_code == 200, response.text
        timelines[bucket] = [(i["bucket"], i["count"], i["first_photo_id"]) for i in response.json()["items"]]
    response = client.get("/v1/facets", headers=owner.headers, params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    return timelines, canonical(response.json())


def assert_overviews_exact(client: TestClient, owner: OwnerAuth, filter_sets: list[dict[str, Any]]) -> None:
    """Timeline and facets through HTTP (photo columns in memory, overview cache) equal the grouped
    queries over the database, for each set of filters. The undated bucket's first photo is left out:
    SQLite's bare column of an all-NULL min() is any of its photos."""
    with session_scope(client.app.state.sessions) as db:  # type: ignore[attr-defined]
        assert owner_columns(db, owner.id).serves(PhotoFilters()), "the columns should count"
    for params in filter_sets:
        (timelines, facets), (expected_timelines, expected_facets) = (
            http_answers(client, owner, params),
            grouped_answers(client, owner, params),
        )
        for bucket, items in timelines.items():
            expected = expected_timelines[bucket]
            assert [(b, n) for b, n, _ in items] == [(b, n) for b, n, _ in expected], (params, bucket)
            assert [(b, p) for b, _, p in items if b] == [(b, p) for b, _, p in expected if b], (
                params,
                bucket,
            )
        if params:  # unfiltered facets come from the kept counts, compared above
            assert facets == expected_facets, params


def test_kept_facet_counts_equal_counting_after_every_kind_of_change(app_client: TestClient) -> None:
    owner = new_owner(app_client)
    ids = upload(app_client, owner, exif_files(sorted(EXIF_TRUTH)[:12]))
    face_names = [name for name in sorted(FACES_TRUTH) if FACES_TRUTH[name] == "Elton John"][:2]
    faces = upload(app_client, owner, [(n, (FACES_DIR / "images" / n).read_bytes()) for n in face_names])
    analyse(app_client, owner, [*list(ids.values())[:3], *faces.values()])
    sessions = app_client.app.state.sessions  # type: ignore[attr-defined]

    def both() -> tuple[dict[str, Any], dict[str, Any]]:
        with session_scope(sessions) as db:
            kept = facet_service.facets_from_counts(db, owner_id=owner.id, limit=1000)
            counted = facet_service.counted_facets(db, owner_id=owner.id, filters=PhotoFilters(), limit=1000)
        return canonical(kept), canonical(counted)

    kept, counted = both()
    assert kept == counted and kept["total"] == 14
    # Filtered overviews through HTTP, asked before and after each change: never a stale count.
    filter_sets: list[dict[str, Any]] = [
        {},
        {"favorite": "true"},
        {"min_rating": 2},
        {"tags": "kept"},
        {"any_tags": "kept,bulked"},
        {"has_faces": "true"},
        {"has_faces": "false"},
        {"taken_after": "2005-01-01T00:00:00"},
        {"camera": "canon"},
        {"min_rating": 1, "has_gps": "false"},
        {"archived": "true"},
    ]
    assert_overviews_exact(app_client, owner, filter_sets)
    photo_ids = list(ids.values())
    face_ids = [
        app_client.get(f"/v1/photos/{p}/faces", headers=owner.headers).json()["items"][0]["id"]
        for p in faces.values()
    ]
    changes = [
        ("patch", lambda: patch(app_client, owner, photo_ids[0], {"favorite": True, "rating": 4})),
        ("archive", lambda: patch(app_client, owner, photo_ids[1], {"archived": True})),
        (
            "user tag",
            lambda: app_client.post(
                f"/v1/photos/{photo_ids[2]}/tags", headers=owner.headers, json={"name": "kept"}
            ),
        ),
        (
            "label",
            lambda: app_client.post(
                "/v1/faces/label", headers=owner.headers, json={"face_ids": face_ids, "name": "Elton"}
            ),
        ),
        ("trash", lambda: app_client.delete(f"/v1/photos/{photo_ids[3]}", headers=owner.headers)),
        (
            "bulk",
            lambda: app_client.post(
                "/v1/photos/bulk",
                headers=owner.headers,
                json={"photo_ids": photo_ids[4:7], "operations": {"rating": 2, "add_tags": ["bulked"]}},
            ),
        ),
        (
            "restore",
            lambda: app_client.post(
                "/v1/trash/restore", headers=owner.headers, json={"photo_ids": [photo_ids[3]]}
            ),
        ),
        ("unarchive", lambda: patch(app_client, owner, photo_ids[1], {"archived": False})),
        (
            "purge",
            lambda: (
                app_client.delete(f"/v1/photos/{photo_ids[5]}", headers=owner.headers),
                app_client.request(
                    "DELETE", "/v1/trash", headers=owner.headers, json={"photo_ids": [photo_ids[5]]}
                ),
            ),
        ),
    ]
    for what, change in changes:
        answers = change()
        for answer in answers if isinstance(answers, tuple) else [answers]:
            assert not hasattr(answer, "status_code") or answer.status_code < 300, (what, answer.text)
        kept, counted = both()
        assert kept == counted, what
        people = [{"people": person["value"]} for person in kept["people"]]
        assert_overviews_exact(app_client, owner, [*filter_sets, *people])
    person = next(iter(kept["people"]))
    assert person["name"] == "Elton" and person["count"] == 2 and kept["total"] == 13
    # Filtered facets sum the matching photos' kept keys: the same as counting them.
    for filters in (
        PhotoFilters(favorite=True),
        PhotoFilters(min_rating=2),
        PhotoFilters(tags=["bulked"]),
        PhotoFilters(people=[person["value"]]),
        PhotoFilters(has_faces=False),
    ):
        with session_scope(sessions) as db:
            summed = facet_service.filtered_facets_from_keys(
                db, owner_id=owner.id, filters=filters, limit=1000
            )
            counted_now = facet_service.counted_facets(db, owner_id=owner.id, filters=filters, limit=1000)
        assert canonical(summed) == canonical(counted_now), filters
        assert summed["total"] > 0, filters
    assert (
        canonical(app_client.get("/v1/facets", headers=owner.headers, params={"limit": 200}).json()) == kept
    )

    # A library whose documents predate the counts (migration 0010) is counted by the maintenance step.
    with session_scope(sessions) as db:
        db.execute(delete(FacetCount).where(FacetCount.owner_id == owner.id))
        db.execute(update(PhotoSearchDoc).where(PhotoSearchDoc.owner_id == owner.id).values(facet_keys=None))
        db.execute(
            update(SearchOwnerState).where(SearchOwnerState.owner_id == owner.id).values(facets_ready=False)
        )
        db.commit()
        assert not counts_ready(db, owner.id)
    assert (
        canonical(app_client.get("/v1/facets", headers=owner.headers, params={"limit": 200}).json()) == kept
    )
    with session_scope(sessions) as db:
        assert build_facet_counts(db, owner.id, batch=5) == 14  # the purged photo's tombstone included
        assert counts_ready(db, owner.id)
    assert both()[0] == kept


def test_filtered_overviews_follow_every_change_and_stay_owner_scoped(app_client: TestClient) -> None:
    """The filtered timeline and facets come from photo columns kept in memory: through HTTP, each
    answer after a change equals the grouped queries, and another owner's changes never show."""
    names = sorted(EXIF_TRUTH)[:10]
    mine, theirs = new_owner(app_client), new_owner(app_client)
    ids = list(upload(app_client, mine, exif_files(names)).values())
    their_ids = list(upload(app_client, theirs, exif_files(names)).values())
    filter_sets: list[dict[str, Any]] = [
        {},
        {"favorite": "true"},
        {"min_rating": 3},
        {"tags": "sea"},
        {"tags": "sea,boat"},
        {"any_tags": "boat,sky"},
        {"taken_before": "2010-01-01T00:00:00"},
        {"has_gps": "true", "min_rating": 1},
        {"camera": "nikon", "favorite": "false"},
    ]
    assert_overviews_exact(app_client, mine, filter_sets)
    before = [http_answers(app_client, mine, params) for params in filter_sets]

    def tag(owner: OwnerAuth, photo_id: str, name: str) -> None:
        response = app_client.post(f"/v1/photos/{photo_id}/tags", headers=owner.headers, json={"name": name})
        assert response.status_code in (200, 201), response.text

    # The other owner changes the same files: my answers stay what they were.
    patch(app_client, theirs, their_ids[0], {"favorite": True, "rating": 5})
    tag(theirs, their_ids[1], "sea")
    patch(app_client, theirs, their_ids[2], {"archived": True})
    assert app_client.delete(f"/v1/photos/{their_ids[3]}", headers=theirs.headers).status_code == 204
    assert [http_answers(app_client, mine, params) for params in filter_sets] == before
    assert_overviews_exact(app_client, theirs, filter_sets)

    changes: list[Callable[[], Any]] = [
        lambda: patch(app_client, mine, ids[0], {"rating": 4}),
        lambda: patch(app_client, mine, ids[0], {"favorite": True}),
        lambda: tag(mine, ids[1], "sea"),
        lambda: tag(mine, ids[1], "boat"),
        lambda: tag(mine, ids[2], "sky"),
        lambda: patch(app_client, mine, ids[1], {"rating": 3, "archived": True}),
        lambda: patch(app_client, mine, ids[1], {"archived": False}),
        lambda: app_client.delete(f"/v1/photos/{ids[1]}/tags/boat", headers=mine.headers),
        lambda: app_client.delete(f"/v1/photos/{ids[0]}", headers=mine.headers),
        lambda: app_client.post(
            "/v1/photos/bulk",
            headers=mine.headers,
            json={"photo_ids": ids[3:6], "operations": {"rating": 5, "favorite": True, "add_tags": ["sea"]}},
        ),
        lambda: app_client.post("/v1/trash/restore", headers=mine.headers, json={"photo_ids": [ids[0]]}),
    ]
    for change in changes:
        answer = change()
        assert not isinstance(answer, Response) or answer.status_code < 300, answer.text
        assert_overviews_exact(app_client, mine, filter_sets)
    # The rows of changed photos, squeezed out, leave the same counts.
    with session_scope(app_client.app.state.sessions) as db:  # type: ignore[attr-defined]
        columns = owner_columns(db, mine.id)
        assert columns.dead > 0
        columns._compact()
        assert columns.dead == 0 and columns.size == len(ids)
        for params in filter_sets:  # in process: the overview cache would answer through HTTP
            filters = PhotoFilters(**params)
            expected_timelines, expected_facets = grouped_answers(app_client, mine, params)
            got = timeline_service.timeline(db, owner_id=mine.id, filters=filters, bucket="month")
            assert [(b.bucket, b.count, b.first_photo_id if b.bucket else None) for b in got] == [
                (b, n, p if b else None) for b, n, p in expected_timelines["month"]
            ]
            if params:
                got_facets = facet_service.facets(db, owner_id=mine.id, filters=filters, limit=200)
                assert canonical(got_facets) == expected_facets, params
    favourites = app_client.get("/v1/facets", headers=mine.headers, params={"favorite": "true"}).json()
    assert favourites["total"] == 4 and {"value": "sea", "count": 3} in favourites["tags"]["user"]


def album(client: TestClient, owner: OwnerAuth, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/albums", headers=owner.headers, json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def album_photo_ids(client: TestClient, owner: OwnerAuth, album_id: str) -> list[str]:
    return [p["id"] for p in search_all(client, owner, f"/v1/albums/{album_id}/photos", {"limit": 3})]


def test_albums_by_ids_and_by_search_in_order_and_owner_scoped(app_client: TestClient) -> None:
    owner = new_owner(app_client)
    ids = upload(app_client, owner, exif_files())
    holiday = album(app_client, owner, name="Holiday", description="summer")
    by_id = [ids["exif_0005.jpg"], ids["exif_0001.jpg"], ids["exif_0002.jpg"]]
    added = app_client.post(
        f"/v1/albums/{holiday['id']}/photos", headers=owner.headers, json={"photo_ids": by_id}
    )
    assert added.status_code == 200, added.text
    assert added.json()["changed"] == 3 and added.json()["album"]["photo_count"] == 3
    assert album_photo_ids(app_client, owner, holiday["id"]) == by_id  # the order they were added in
    nikon = {ids[n] for n, t in EXIF_TRUTH.items() if "nikon" in (t["make"] or "").lower()}
    by_search = app_client.post(
        f"/v1/albums/{holiday['id']}/photos", headers=owner.headers, json={"search": {"camera": "nikon"}}
    ).json()
    assert by_search["album"]["photo_count"] == len(nikon | set(by_id))
    members = set(album_photo_ids(app_client, owner, holiday["id"]))
    timeline = app_client.get("/v1/timeline", headers=owner.headers, params={"album": holiday["id"]})
    assert sum(item["count"] for item in timeline.json()["items"]) == len(members)
    assert members == nikon | set(by_id) == listed(app_client, owner, album=holiday["id"])
    taken = [expected_capture_time(EXIF_TRUTH[n]) for n in EXIF_TRUTH if ids[n] in members]
    got = app_client.get(f"/v1/albums/{holiday['id']}", headers=owner.headers).json()
    assert got["taken_from"][:19] == min(t for t in taken if t) and got["taken_to"][:19] == max(
        t for t in taken if t
    )
    # Manual order, then by date.
    wanted = [ids["exif_0002.jpg"], ids["exif_0001.jpg"]]
    reordered = app_client.patch(
        f"/v1/albums/{holiday['id']}",
        headers=owner.headers,
        json={"photo_order": wanted, "cover_photo_id": wanted[0]},
    )
    assert reordered.status_code == 200 and reordered.json()["cover_photo_id"] == wanted[0]
    assert album_photo_ids(app_client, owner, holiday["id"])[:2] == wanted
    app_client.patch(f"/v1/albums/{holiday['id']}", headers=owner.headers, json={"sort": "taken_at"})
    dated = [
        p["taken_at"]
        for p in search_all(app_client, owner, f"/v1/albums/{holiday['id']}/photos", {"limit": 4})
    ]
    assert [d for d in dated if d] == sorted(d for d in dated if d)
    # The album filter works in search too.
    found = search_all(app_client, owner, "/v1/search", {"q": "exif", "album": holiday["id"], "limit": 50})
    assert found and {item["photo"]["id"] for item in found} <= members
    # Removing photos and deleting the album never deletes photos.
    removed = app_client.request(
        "DELETE", f"/v1/albums/{holiday['id']}/photos", headers=owner.headers, json={"photo_ids": [wanted[0]]}
    )
    assert removed.json()["changed"] == 1 and wanted[0] not in album_photo_ids(
        app_client, owner, holiday["id"]
    )
    timeline = app_client.get("/v1/timeline", headers=owner.headers, params={"album": holiday["id"]})
    assert sum(item["count"] for item in timeline.json()["items"]) == len(members) - 1  # not a stale count
    # Another owner sees none of it.
    stranger = new_owner(app_client)
    for method, path in (("GET", ""), ("PATCH", ""), ("DELETE", ""), ("GET", "/photos")):
        body = {"name": "x"} if method == "PATCH" else None
        answer = app_client.request(
            method, f"/v1/albums/{holiday['id']}{path}", headers=stranger.headers, json=body
        )
        assert answer.status_code == 404, (method, path)
    their_add = app_client.post(
        f"/v1/albums/{holiday['id']}/photos", headers=stranger.headers, json={"photo_ids": [wanted[0]]}
    )
    assert their_add.status_code == 404
    assert app_client.get("/v1/albums", headers=stranger.headers).json()["items"] == []
    assert app_client.delete(f"/v1/albums/{holiday['id']}", headers=owner.headers).status_code == 204
    assert listed(app_client, owner) == set(ids.values())
    assert app_client.post("/v1/albums", headers=owner.headers, json={"name": ""}).status_code == 422
    bad = app_client.post(
        f"/v1/albums/{album(app_client, owner, name='x')['id']}/photos", headers=owner.headers, json={}
    )
    assert bad.status_code == 422


def exiftool(paths: list[Path]) -> list[dict[str, Any]]:
    out = subprocess.run(
        ["exiftool", "-json", "-XMP:Rating", "-XMP:HierarchicalSubject", *map(str, paths)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: list[dict[str, Any]] = json.loads(out)
    return result


def test_an_album_export_carries_rating_and_album_keyword(app_client: TestClient, tmp_path: Path) -> None:
    owner = new_owner(app_client)
    ids = upload(app_client, owner, exif_files(["exif_0001.jpg", "exif_0002.jpg", "exif_0003.jpg"]))
    trip = album(app_client, owner, name="Tuscany 2008")
    chosen = [ids["exif_0001.jpg"], ids["exif_0002.jpg"]]
    app_client.post(f"/v1/albums/{trip['id']}/photos", headers=owner.headers, json={"photo_ids": chosen})
    patch(app_client, owner, chosen[0], {"rating": 4})
    created = app_client.post("/v1/exports", headers=owner.headers, json={"search": {"album": trip["id"]}})
    assert created.status_code == 202, created.text
    export = wait_for_export(app_client, owner, created.json()["id"])
    assert export["state"] == "ready" and export["total"] == 2
    data = app_client.get(export["download_url"], headers=owner.headers).content
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        archive.extractall(tmp_path)
    files = {row["photo_id"]: tmp_path / row["file"] for row in manifest["photos"]}
    assert set(files) == set(chosen)
    read = {Path(item["SourceFile"]).name: item for item in exiftool(list(files.values()))}
    rated, unrated = read[files[chosen[0]].name], read[files[chosen[1]].name]
    assert rated["Rating"] == 4 and "Rating" not in unrated
    for item in (rated, unrated):
        subjects = item["HierarchicalSubject"]
        assert "Albums|Tuscany 2008" in ([subjects] if isinstance(subjects, str) else subjects)


def test_trash_hides_everywhere_and_restore_brings_it_back_whole(app_client: TestClient) -> None:
    owner = new_owner(app_client)
    face_name = sorted(FACES_TRUTH)[0]
    face_bytes = (FACES_DIR / "images" / face_name).read_bytes()
    ids = upload(
        app_client, owner, [("trash-me.jpg", face_bytes), ("trash-copy.jpg", jpeg_copy(face_bytes, 0.8))]
    )
    photo_id, copy_id = ids["trash-me.jpg"], ids["trash-copy.jpg"]
    analyse(app_client, owner, [photo_id, copy_id])
    faces = app_client.get(f"/v1/photos/{photo_id}/faces", headers=owner.headers).json()["items"]
    assert faces, "the test photo should show a face"
    labelled = app_client.post(
        "/v1/faces/label", headers=owner.headers, json={"face_ids": [faces[0]["id"]], "name": "Trash Person"}
    )
    assert labelled.status_code == 200, labelled.text
    people = app_client.get("/v1/people", headers=owner.headers).json()["items"]
    person_id = next(p["id"] for p in people if p["name"] == "Trash Person")
    app_client.post(f"/v1/photos/{photo_id}/tags", headers=owner.headers, json={"name": "keepsake"})
    keep = album(app_client, owner, name="Keep")
    app_client.post(f"/v1/albums/{keep['id']}/photos", headers=owner.headers, json={"photo_ids": [photo_id]})
    before = app_client.get(f"/v1/photos/{photo_id}", headers=owner.headers).json()
    groups = app_client.get("/v1/duplicates", headers=owner.headers).json()["items"]
    assert any({p["id"] for p in g["photos"]} == {photo_id, copy_id} for g in groups)

    def visible_everywhere() -> dict[str, bool]:
        searched = app_client.get("/v1/search", headers=owner.headers, params={"q": "keepsake"}).json()[
            "items"
        ]
        dups = app_client.get("/v1/duplicates", headers=owner.headers).json()["items"]
        person = search_all(app_client, owner, f"/v1/people/{person_id}/photos", {})
        return {
            "list": photo_id in listed(app_client, owner),
            "search": photo_id in {i["photo"]["id"] for i in searched},
            "duplicates": any(photo_id in {p["id"] for p in g["photos"]} for g in dups),
            "people": photo_id in {p["id"] for p in person},
            "faces": photo_id in {f["photo_id"] for f in search_all(app_client, owner, "/v1/faces", {})},
            "album": photo_id in album_photo_ids(app_client, owner, keep["id"]),
            "timeline": sum(
                i["count"] for i in app_client.get("/v1/timeline", headers=owner.headers).json()["items"]
            )
            == 2,
        }

    assert all(visible_everywhere().values()), visible_everywhere()
    assert app_client.delete(f"/v1/photos/{photo_id}", headers=owner.headers).status_code == 204
    assert not any(visible_everywhere().values()), visible_everywhere()
    # The person's counts leave the trashed photo out too.
    counted = app_client.get(f"/v1/people/{person_id}", headers=owner.headers).json()["photo_count"]
    assert counted == len(search_all(app_client, owner, f"/v1/people/{person_id}/photos", {}))
    export = app_client.post("/v1/exports", headers=owner.headers, json={"photo_ids": [photo_id]})
    assert export.status_code == 404
    everything = app_client.post("/v1/exports", headers=owner.headers, json={"search": {}}).json()
    assert wait_for_export(app_client, owner, everything["id"])["total"] == 1
    trash = app_client.get("/v1/trash", headers=owner.headers).json()["items"]
    assert [p["id"] for p in trash] == [photo_id] and trash[0]["trashed_at"]
    store = app_client.app.state.store  # type: ignore[attr-defined]
    assert store.exists(before["sha256"])  # the bytes stay while it is in the trash

    restored = app_client.post("/v1/trash/restore", headers=owner.headers, json={"photo_ids": [photo_id]})
    assert restored.status_code == 200, restored.text
    assert all(visible_everywhere().values()), visible_everywhere()
    after = app_client.get(f"/v1/photos/{photo_id}", headers=owner.headers).json()
    assert after["tags"] == before["tags"] and after["faces_count"] == before["faces_count"]
    named = app_client.get(f"/v1/photos/{photo_id}/faces", headers=owner.headers).json()["items"]
    assert any((f["person"] or {}).get("name") == "Trash Person" for f in named)
    assert app_client.get("/v1/trash", headers=owner.headers).json()["items"] == []
    again = app_client.post("/v1/trash/restore", headers=owner.headers, json={"photo_ids": [photo_id]})
    assert again.status_code == 404
    assert (
        app_client.delete(f"/v1/photos/{photo_id}", headers=new_owner(app_client).headers).status_code == 404
    )


def test_a_persons_cover_face_thumbnail_hiding_and_birth_date(app_client: TestClient) -> None:
    owner = new_owner(app_client)
    names = [name for name in sorted(FACES_TRUTH) if FACES_TRUTH[name] == "Madonna"][:2]
    ids = upload(app_client, owner, [(name, (FACES_DIR / "images" / name).read_bytes()) for name in names])
    analyse(app_client, owner, list(ids.values()))
    face_ids = [
        app_client.get(f"/v1/photos/{ids[name]}/faces", headers=owner.headers).json()["items"][0]["id"]
        for name in names
    ]
    labelled = app_client.post(
        "/v1/faces/label", headers=owner.headers, json={"face_ids": face_ids, "name": "Cover Person"}
    )
    assert labelled.status_code == 200, labelled.text
    people = app_client.get("/v1/people", headers=owner.headers).json()["items"]
    person = next(p for p in people if p["name"] == "Cover Person")
    assert person["cover_face_id"] in face_ids and not person["hidden"] and person["birth_date"] is None
    # The signed URL works without the key, as an <img src> would use it.
    crop = app_client.get(person["thumbnail_url"])
    assert crop.status_code == 200 and crop.headers["content-type"] == "image/jpeg"
    thumbnail = app_client.get(f"/v1/people/{person['id']}/thumbnail", headers=owner.headers)
    assert thumbnail.status_code == 200 and thumbnail.content[:2] == b"\xff\xd8"

    other_cover = next(face_id for face_id in face_ids if face_id != person["cover_face_id"])
    changed = app_client.patch(
        f"/v1/people/{person['id']}",
        headers=owner.headers,
        json={"cover_face_id": other_cover, "birth_date": "1958-08-16", "hidden": True},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["cover_face_id"] == other_cover
    assert changed.json()["birth_date"] == "1958-08-16" and changed.json()["hidden"] is True
    assert changed.json()["name"] == "Cover Person"  # fields not sent keep their value
    listed_people = app_client.get("/v1/people", headers=owner.headers).json()["items"]
    assert person["id"] not in {p["id"] for p in listed_people}
    with_hidden = app_client.get("/v1/people", headers=owner.headers, params={"include_hidden": True})
    assert person["id"] in {p["id"] for p in with_hidden.json()["items"]}
    facet_people = app_client.get("/v1/facets", headers=owner.headers).json()["people"]
    assert person["id"] not in {p["value"] for p in facet_people}
    # Hidden is about lists: the person's own page and photos still answer.
    assert app_client.get(f"/v1/people/{person['id']}/photos", headers=owner.headers).json()["items"]

    # A face of someone else cannot be the cover; an empty PATCH says what it wants.
    stranger = app_client.post("/v1/people", headers=owner.headers, json={"name": "Nobody Yet"}).json()
    refused = app_client.patch(
        f"/v1/people/{stranger['id']}", headers=owner.headers, json={"cover_face_id": other_cover}
    )
    assert refused.status_code == 422 and "cover_face_id" in refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    empty = app_client.patch(f"/v1/people/{person['id']}", headers=owner.headers, json={})
    assert empty.status_code == 422 and "at least one" in empty.text
    faceless = app_client.get(f"/v1/people/{stranger['id']}/thumbnail", headers=owner.headers)
    assert faceless.status_code == 404 and "no face" in faceless.json()["detail"]
    assert stranger["thumbnail_url"] is None and stranger["cover_face_id"] is None

    # null puts the cover back to automatic and clears the birth date; the cover follows the trash.
    cleared = app_client.patch(
        f"/v1/people/{person['id']}",
        headers=owner.headers,
        json={"cover_face_id": None, "birth_date": None, "hidden": False},
    ).json()
    assert cleared["cover_face_id"] in face_ids and cleared["birth_date"] is None and not cleared["hidden"]
    photo_of = {face_ids[i]: ids[name] for i, name in enumerate(names)}
    trashed = app_client.delete(f"/v1/photos/{photo_of[cleared['cover_face_id']]}", headers=owner.headers)
    assert trashed.status_code == 204
    after_trash = app_client.get(f"/v1/people/{person['id']}", headers=owner.headers).json()
    assert after_trash["cover_face_id"] in set(face_ids) - {cleared["cover_face_id"]}
    assert after_trash["photo_count"] == 1


def test_purge_deletes_bytes_only_when_no_other_photo_uses_them(app_client: TestClient) -> None:
    owner, other = new_owner(app_client), new_owner(app_client)
    data = jpeg_copy((EXIF_DIR / "images" / "exif_0003.jpg").read_bytes(), 0.9)
    mine = upload(app_client, owner, [("shared.jpg", data)])["shared.jpg"]
    theirs = upload(app_client, other, [("shared.jpg", data)])["shared.jpg"]
    sha = app_client.get(f"/v1/photos/{mine}", headers=owner.headers).json()["sha256"]
    store = app_client.app.state.store  # type: ignore[attr-defined]
    sessions = app_client.app.state.sessions  # type: ignore[attr-defined]
    settings = app_client.app.state.settings  # type: ignore[attr-defined]
    # Emptying the trash purges at once; the other owner's photo keeps the bytes.
    app_client.delete(f"/v1/photos/{mine}", headers=owner.headers)
    emptied = app_client.request("DELETE", "/v1/trash", headers=owner.headers, json={"photo_ids": [mine]})
    assert emptied.status_code == 200 and emptied.json()["purged"] == 1
    assert app_client.get(f"/v1/photos/{mine}", headers=owner.headers).status_code == 404
    assert store.exists(sha)
    # The maintenance step purges what has been in the trash longer than SHOEBOX_TRASH_DAYS, only that.
    app_client.delete(f"/v1/photos/{theirs}", headers=other.headers)
    with session_scope(sessions) as db:
        assert purge_expired(db, store, settings) == 0
        assert store.exists(sha)
        db.execute(
            update(Photo)
            .where(Photo.id == theirs)
            .values(trashed_at=utcnow() - timedelta(days=settings.trash_days, hours=1))
        )
        db.commit()
        assert purge_expired(db, store, settings) == 1
    assert not store.exists(sha)
    assert app_client.get(f"/v1/photos/{theirs}", headers=other.headers).status_code == 404


def test_bulk_edit_in_one_transaction_with_results_and_a_job_when_large(app_client: TestClient) -> None:
    owner = new_owner(app_client)
    ids = upload(app_client, owner, exif_files())
    shelf = album(app_client, owner, name="Shelf")
    chosen = [ids["exif_0001.jpg"], ids["exif_0002.jpg"], ids["exif_0003.jpg"]]
    operations = {"favorite": True, "rating": 2, "add_tags": ["Boxed"], "add_to_album": shelf["id"]}
    response = app_client.post(
        "/v1/photos/bulk", headers=owner.headers, json={"photo_ids": chosen, "operations": operations}
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["photo_id"] for r in results] == chosen and {r["status"] for r in results} == {"updated"}
    assert listed(app_client, owner, favorite="true", min_rating=2, tags="boxed", album=shelf["id"]) == set(
        chosen
    )
    # Rejecting a tag only one photo has: the others say so.
    app_client.post(f"/v1/photos/{chosen[0]}/tags", headers=owner.headers, json={"name": "solo"})
    solo = app_client.post(
        "/v1/photos/bulk",
        headers=owner.headers,
        json={"photo_ids": chosen, "operations": {"remove_tags": ["solo"]}},
    ).json()["results"]
    assert [r["status"] for r in solo] == ["updated", "unchanged", "unchanged"]
    # One transaction: an unknown album refuses the whole edit, nothing changes.
    failed = app_client.post(
        "/v1/photos/bulk",
        headers=owner.headers,
        json={"photo_ids": chosen, "operations": {"rating": 5, "add_to_album": "no-such-album"}},
    )
    assert failed.status_code == 404
    assert listed(app_client, owner, min_rating=5) == set()
    # Trash and restore in bulk.
    trashed = app_client.post(
        "/v1/photos/bulk", headers=owner.headers, json={"photo_ids": chosen, "operations": {"trash": True}}
    )
    assert trashed.status_code == 200 and not listed(app_client, owner) & set(chosen)
    back = app_client.post(
        "/v1/photos/bulk", headers=owner.headers, json={"photo_ids": chosen, "operations": {"restore": True}}
    )
    assert back.status_code == 200 and listed(app_client, owner) >= set(chosen)
    # Above the synchronous limit: a job (202), same outcome.
    nikon = listed(app_client, owner, camera="nikon")
    assert len(nikon) > BULK_SYNC_MAX
    started = app_client.post(
        "/v1/photos/bulk",
        headers=owner.headers,
        json={"search": {"camera": "nikon"}, "operations": {"archived": True}},
    )
    assert started.status_code == 202, started.text
    job = wait_for_state(
        app_client, owner, f"/v1/jobs/{started.json()['job']['id']}", ("succeeded", "failed")
    )
    assert job["state"] == "succeeded" and job["done"] == len(nikon)
    assert listed(app_client, owner, archived="true") == nikon
    for bad in (
        {"photo_ids": chosen, "operations": {}},
        {"photo_ids": chosen, "operations": {"rating": 7}},
        {"operations": {"favorite": True}},
        {"photo_ids": chosen, "operations": {"trash": True, "restore": True}},
    ):
        assert app_client.post("/v1/photos/bulk", headers=owner.headers, json=bad).status_code == 422, bad
