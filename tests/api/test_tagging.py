"""Automatic tagging through HTTP with the real models, and the user's decisions surviving re-runs."""

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import OwnerAuth, new_owner
from tests.helpers import wait_for_job, wait_until_analysed
from tests.paths import TESTDATA_DIR

DETECTION_DIR = TESTDATA_DIR / "detection"
Tagged = tuple[OwnerAuth, dict[str, list[dict[str, Any]]]]
DETECTION_TRUTH: dict[str, list[dict[str, Any]]] = json.loads(
    (DETECTION_DIR / "ground_truth.json").read_text()
)


def most_prominent(class_name: str, with_class: str | None = None, count: int = 3) -> list[str]:
    """The photos where `class_name` has its largest boxes (optionally also showing `with_class`)."""

    def area(box: list[float]) -> float:
        return (box[2] - box[0]) * (box[3] - box[1])

    candidates = {
        name: max(area(o["bbox_xyxy_normalised"]) for o in objects if o["class_name"] == class_name)
        for name, objects in DETECTION_TRUTH.items()
        if any(o["class_name"] == class_name for o in objects)
        and (with_class is None or any(o["class_name"] == with_class for o in objects))
    }
    return sorted(candidates, key=candidates.__getitem__, reverse=True)[:count]


@pytest.fixture(scope="module")
def tagged(client: TestClient) -> Tagged:
    """The three photos where a bus (with people), a cat and a bowl are most prominent, analysed.

    (Not cups: of the three most prominent cups, one is a blurred foreground cup YOLO26n does not see
    and one it scores 0.17, under its fitted tag threshold; bench/reports/tagging.md lists the misses.)
    """
    owner = new_owner(client)
    samples = {
        "bus": most_prominent("bus", "person"),
        "cat": most_prominent("cat"),
        "bowl": most_prominent("bowl"),
    }
    files = [
        ("files", (f"{key}-{index}.jpg", (DETECTION_DIR / "images" / name).read_bytes(), "image/jpeg"))
        for key, names in samples.items()
        for index, name in enumerate(names)
    ]
    results = client.post("/v1/photos", headers=owner.headers, files=files).json()["results"]
    assert [r["status"] for r in results] == ["created"] * len(files)
    wait_until_analysed(client, owner, [r["photo"]["id"] for r in results])
    photos: dict[str, list[dict[str, Any]]] = {key: [] for key in samples}
    for result in results:
        photo = client.get(f"/v1/photos/{result['photo']['id']}", headers=owner.headers).json()
        photos[result["filename"].split("-")[0]].append(photo)
    return owner, photos


def share_with(photos: list[dict[str, Any]], name: str, kind: str | None = None) -> float:
    return sum(name in tag_names(photo, kind) for photo in photos) / len(photos)


def tag_names(photo: dict[str, Any], kind: str | None = None) -> set[str]:
    return {
        t["name"] for t in photo["tags"] if (kind is None or t["kind"] == kind) and t["state"] != "rejected"
    }


def test_street_photos_have_a_bus_and_people(tagged: Tagged) -> None:
    _, photos = tagged
    assert share_with(photos["bus"], "bus", "object") >= 2 / 3
    assert share_with(photos["bus"], "person", "object") >= 2 / 3
    assert share_with(photos["bus"], "vehicles", "category") >= 2 / 3


def test_cat_photos_are_cats_and_animals(tagged: Tagged) -> None:
    _, photos = tagged
    assert share_with(photos["cat"], "cat", "object") >= 2 / 3
    assert share_with(photos["cat"], "animals", "category") >= 2 / 3


def test_bowl_photos_have_bowls(tagged: Tagged) -> None:
    _, photos = tagged
    assert share_with(photos["bowl"], "bowl") >= 2 / 3
    for photo in photos["bowl"]:
        tags = photo["tags"]
        assert all(t["source"] == "model" and 0 < t["confidence"] <= 1 for t in tags)
        assert len({(t["name"], t["kind"]) for t in tags}) == len(tags), "no duplicate tags"


def test_user_tag_and_rejection_survive_reanalysis(client: TestClient, tagged: Tagged) -> None:
    owner, photos = tagged
    photo_id = next(p["id"] for p in photos["bus"] if {"bus", "person"} <= tag_names(p, "object"))
    assert (
        client.post(
            f"/v1/photos/{photo_id}/tags", headers=owner.headers, json={"name": "Trip  to London"}
        ).status_code
        == 201
    )
    rejected = client.patch(
        f"/v1/photos/{photo_id}/tags/person", headers=owner.headers, json={"state": "rejected"}
    )
    assert rejected.status_code == 200
    confirmed = client.patch(
        f"/v1/photos/{photo_id}/tags/bus", headers=owner.headers, json={"state": "confirmed"}
    )
    assert confirmed.status_code == 200
    job = client.post("/v1/jobs", headers=owner.headers, json={"type": "analyze", "photo_ids": [photo_id]})
    assert job.status_code == 202
    assert wait_for_job(client, owner, job.json()["id"])["state"] == "succeeded"
    after = client.get(f"/v1/photos/{photo_id}", headers=owner.headers).json()
    states = {(t["name"], t["kind"]): (t["source"], t["state"]) for t in after["tags"]}
    assert states[("trip to london", "user")] == ("user", "confirmed")
    assert states[("person", "object")] == ("model", "rejected")
    assert states[("bus", "object")] == ("model", "confirmed")
    assert len(states) == len(after["tags"]), "re-analysis must not duplicate tags"
    # A rejected tag no longer matches a filter; the user's tag does.
    listed = client.get("/v1/photos", headers=owner.headers, params={"tags": "person"}).json()["items"]
    assert photo_id not in {p["id"] for p in listed}, after["tags"]
    listed = client.get("/v1/photos", headers=owner.headers, params={"tags": "trip to london,bus"}).json()[
        "items"
    ]
    assert [p["id"] for p in listed] == [photo_id]


def test_tag_filters_all_of_and_any_of(client: TestClient, tagged: Tagged) -> None:
    owner, photos = tagged
    every = [photo for group in photos.values() for photo in group]
    any_of = client.get("/v1/photos", headers=owner.headers, params={"any_tags": ["cat", "bowl"]}).json()[
        "items"
    ]
    fresh = {
        p["id"]: p for p in (client.get(f"/v1/photos/{q['id']}", headers=owner.headers).json() for q in every)
    }
    assert {p["id"] for p in any_of} == {i for i, p in fresh.items() if tag_names(p) & {"cat", "bowl"}}
    both = client.get("/v1/photos", headers=owner.headers, params={"tags": ["cat", "person"]}).json()["items"]
    assert {p["id"] for p in both} == {i for i, p in fresh.items() if {"cat", "person"} <= tag_names(p)}


def test_review_queue_is_least_confident_first(client: TestClient, tagged: Tagged) -> None:
    owner, _ = tagged
    confidences: list[float] = []
    cursor = None
    while True:
        page = client.get(
            "/v1/review/tags",
            headers=owner.headers,
            params={"limit": 3, **({"cursor": cursor} if cursor else {})},
        ).json()
        for item in page["items"]:
            assert item["tag"]["state"] == "suggested" and item["tag"]["source"] == "model"
            assert any(t["name"] == item["tag"]["name"] for t in item["photo"]["tags"])
            confidences.append(item["tag"]["confidence"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(confidences) > 3 and confidences == sorted(confidences)


def test_vocabulary_counts(client: TestClient, tagged: Tagged) -> None:
    owner, photos = tagged
    vocabulary = {e["name"]: e for e in client.get("/v1/tags", headers=owner.headers).json()["items"]}
    assert vocabulary["cat"]["kinds"]["object"] >= 1
    expected_people = sum("person" in tag_names(p, "object") for group in photos.values() for p in group)
    assert vocabulary.get("person", {"kinds": {}})["kinds"].get("object", 0) <= expected_people


def test_tag_errors_are_problems(client: TestClient, tagged: Tagged) -> None:
    owner, photos = tagged
    photo_id = photos["cat"][0]["id"]
    assert (
        client.post(f"/v1/photos/{photo_id}/tags", headers=owner.headers, json={"name": "  "}).status_code
        == 422
    )
    missing = client.patch(
        f"/v1/photos/{photo_id}/tags/zebra-crossing", headers=owner.headers, json={"state": "confirmed"}
    )
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    stranger = new_owner(client)
    assert (
        client.post(f"/v1/photos/{photo_id}/tags", headers=stranger.headers, json={"name": "x"}).status_code
        == 404
    )
    assert client.get("/v1/review/tags", headers=stranger.headers).json()["items"] == []
