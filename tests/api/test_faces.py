"""Faces and people through HTTP with the real models: label, recognise, unknowns, merge, split."""

import io
import json
from collections import defaultdict

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import OwnerAuth, new_owner
from tests.helpers import wait_for_idle_jobs, wait_for_job, wait_until_analysed
from tests.paths import TESTDATA_DIR

FACES_DIR = TESTDATA_DIR / "faces"
FACES_TRUTH: dict[str, str] = json.loads((FACES_DIR / "ground_truth.json").read_text())
PHOTOS_PER_PERSON = 4


@pytest.fixture(scope="module")
def library(client: TestClient) -> tuple[OwnerAuth, dict[str, list[dict]]]:
    """A few photos of each of three people, uploaded and analysed; nobody named yet."""
    by_person = photos_by_person()
    people = sorted(by_person)[:3]
    owner = new_owner(client)
    files = [
        ("files", (f"{person}|{name}", (FACES_DIR / "images" / name).read_bytes(), "image/jpeg"))
        for person in people
        for name in by_person[person][:PHOTOS_PER_PERSON]
    ]
    results = client.post("/v1/photos", headers=owner.headers, files=files).json()["results"]
    wait_until_analysed(client, owner, [r["photo"]["id"] for r in results])
    photos: dict[str, list[dict]] = defaultdict(list)
    for result in results:
        person = result["filename"].split("|")[0]
        faces = client.get(f"/v1/photos/{result['photo']['id']}/faces", headers=owner.headers).json()["items"]
        assert faces, f"no face found in {result['filename']}"
        main = max(faces, key=lambda f: f["bbox"][2] * f["bbox"][3])
        photos[person].append({"photo_id": result["photo"]["id"], "face": main, "faces": faces})
    return owner, photos


def face(client: TestClient, owner: OwnerAuth, face_id: str) -> dict:
    faces = client.get("/v1/faces", headers=owner.headers, params={"limit": 500}).json()["items"]
    return next(f for f in faces if f["id"] == face_id)


def test_faces_are_found_with_boxes_and_landmarks(library) -> None:
    _, photos = library
    for entries in photos.values():
        for entry in entries:
            main = entry["face"]
            x, y, w, h = main["bbox"]
            assert min(x, y) >= 0 and x + w <= 1.0001 and y + h <= 1.0001 and min(w, h) > 0
            assert len(main["landmarks"]) == 5 and main["person"] is None


def test_one_label_names_the_other_photos_and_strangers_stay_unknown(client: TestClient, library) -> None:
    owner, photos = library
    alice, bob, stranger = sorted(photos)
    for person in (alice, bob):
        response = client.post(
            "/v1/faces/label",
            headers=owner.headers,
            json={"face_ids": [photos[person][0]["face"]["id"]], "name": person},
        )
        assert response.status_code == 200, response.text
        assert response.json()["items"][0]["person_source"] == "user"
    wait_for_idle_jobs(client, owner)
    for person in (alice, bob):
        for entry in photos[person][1:]:
            named = face(client, owner, entry["face"]["id"])
            assert named["person"] and named["person"]["name"] == person, (person, named)
            assert named["person_source"] == "model" and 0 < named["person_confidence"] <= 1
    for entry in photos[stranger]:
        assert face(client, owner, entry["face"]["id"])["person"] is None


def test_review_order_and_person_filters(client: TestClient, library) -> None:
    owner, photos = library
    alice = sorted(photos)[0]
    person = next(
        p for p in client.get("/v1/people", headers=owner.headers).json()["items"] if p["name"] == alice
    )
    assert person["labeled_count"] == 1 and person["face_count"] >= PHOTOS_PER_PERSON
    listed = client.get(f"/v1/people/{person['id']}/photos", headers=owner.headers).json()["items"]
    assert {p["id"] for p in listed} == {e["photo_id"] for e in photos[alice]}
    filtered = client.get("/v1/photos", headers=owner.headers, params={"people": person["id"]}).json()[
        "items"
    ]
    assert {p["id"] for p in filtered} == {e["photo_id"] for e in photos[alice]}
    ordered = client.get(
        "/v1/faces", headers=owner.headers, params={"order": "confidence", "unlabeled": True}
    ).json()["items"]
    keys = [f["person_confidence"] or 0.0 for f in ordered]
    assert keys == sorted(keys)


def test_reanalysis_keeps_user_labels(client: TestClient, library) -> None:
    owner, photos = library
    alice = sorted(photos)[0]
    labelled = photos[alice][0]
    job = client.post(
        "/v1/jobs", headers=owner.headers, json={"type": "analyze", "photo_ids": [labelled["photo_id"]]}
    )
    assert wait_for_job(client, owner, job.json()["id"])["state"] == "succeeded"
    wait_for_idle_jobs(client, owner)
    after = client.get(f"/v1/photos/{labelled['photo_id']}/faces", headers=owner.headers).json()["items"]
    kept = [f for f in after if f["person_source"] == "user"]
    assert len(kept) == 1 and kept[0]["person"]["name"] == alice
    assert kept[0]["id"] == labelled["face"]["id"], "the labelled face keeps its id across re-analysis"


def test_split_and_merge(client: TestClient, library) -> None:
    owner, photos = library
    alice, bob, _ = sorted(photos)
    moved = photos[alice][1]["face"]["id"]
    # Split: a face the model gave to Alice is moved to a new person by labelling it.
    response = client.post(
        "/v1/faces/label", headers=owner.headers, json={"face_ids": [moved], "name": "Carol"}
    )
    assert response.status_code == 200
    assert face(client, owner, moved)["person"]["name"] == "Carol"
    people = {p["name"]: p for p in client.get("/v1/people", headers=owner.headers).json()["items"]}
    merged = client.post(
        f"/v1/people/{people[alice]['id']}/merge",
        headers=owner.headers,
        json={"from_ids": [people["Carol"]["id"]]},
    )
    assert merged.status_code == 200
    assert face(client, owner, moved)["person"]["name"] == alice
    assert client.get(f"/v1/people/{people['Carol']['id']}", headers=owner.headers).status_code == 404
    assert (
        client.post(
            f"/v1/people/{people[bob]['id']}/merge",
            headers=owner.headers,
            json={"from_ids": [people[bob]["id"]]},
        ).status_code
        == 422
    )


def test_two_faces_of_one_photo_are_never_one_person(client: TestClient, library) -> None:
    owner, photos = library
    alice, bob, _ = sorted(photos)
    # One photo showing two people: two real portraits side by side.
    left = Image.open(FACES_DIR / "images" / photos_by_person()[alice][-1]).convert("RGB")
    right = Image.open(FACES_DIR / "images" / photos_by_person()[bob][-1]).convert("RGB")
    height = max(left.height, right.height)
    canvas = Image.new("RGB", (left.width + right.width, height), (255, 255, 255))
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width, 0))
    buffer = io.BytesIO()
    canvas.save(buffer, "JPEG", quality=95)
    result = client.post(
        "/v1/photos", headers=owner.headers, files=[("files", ("pair.jpg", buffer.getvalue()))]
    )
    photo_id = result.json()["results"][0]["photo"]["id"]
    wait_until_analysed(client, owner, [photo_id])
    wait_for_idle_jobs(client, owner)
    faces = client.get(f"/v1/photos/{photo_id}/faces", headers=owner.headers).json()["items"]
    assert len(faces) >= 2
    named = [f["person"]["id"] for f in faces if f["person"]]
    assert len(named) == len(set(named)), "the model named one person twice in a photo"
    ids = [f["id"] for f in faces[:2]]
    response = client.post("/v1/faces/label", headers=owner.headers, json={"face_ids": ids, "name": "Dave"})
    assert response.status_code == 409 and response.headers["content-type"] == "application/problem+json"


def photos_by_person() -> dict[str, list[str]]:
    by_person: dict[str, list[str]] = defaultdict(list)
    for name, person in sorted(FACES_TRUTH.items()):
        by_person[person].append(name)
    return by_person


def test_clusters_group_unnamed_faces(client: TestClient, library) -> None:
    owner, photos = library
    stranger = sorted(photos)[2]
    stranger_faces = {e["face"]["id"] for e in photos[stranger]}
    clusters = client.get("/v1/faces/clusters", headers=owner.headers).json()["items"]
    assert clusters and all(c["size"] == len(c["face_ids"]) >= 2 for c in clusters)
    best = max(clusters, key=lambda c: len(stranger_faces & set(c["face_ids"])))
    assert len(stranger_faces & set(best["face_ids"])) >= 2
    # Naming the whole group is one call.
    response = client.post(
        "/v1/faces/label", headers=owner.headers, json={"face_ids": best["face_ids"], "name": stranger}
    )
    assert response.status_code == 200


def test_unassign_is_remembered(client: TestClient, library) -> None:
    owner, photos = library
    bob = sorted(photos)[1]
    target = photos[bob][1]["face"]["id"]
    response = client.delete(f"/v1/faces/{target}/person", headers=owner.headers)
    assert response.status_code == 200 and response.json()["person"] is None
    wait_for_idle_jobs(client, owner)
    assert face(client, owner, target)["person"] is None


def test_face_crop_and_errors(client: TestClient, library) -> None:
    owner, photos = library
    face_id = next(iter(photos.values()))[0]["face"]["id"]
    crop = client.get(f"/v1/faces/{face_id}/thumbnail", headers=owner.headers)
    assert crop.status_code == 200 and crop.headers["content-type"] == "image/jpeg"
    both = client.post(
        "/v1/faces/label", headers=owner.headers, json={"face_ids": [face_id], "name": "x", "person_id": "y"}
    )
    assert both.status_code == 422
    stranger = new_owner(client)
    assert client.get("/v1/faces", headers=stranger.headers).json()["items"] == []
    assert (
        client.post(
            "/v1/faces/label", headers=stranger.headers, json={"face_ids": [face_id], "name": "Mallory"}
        ).status_code
        == 404
    )
    assert client.get(f"/v1/faces/{face_id}/thumbnail", headers=stranger.headers).status_code == 404
    assert client.delete(f"/v1/faces/{face_id}/person", headers=stranger.headers).status_code == 404
