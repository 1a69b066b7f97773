"""Exports through HTTP: zip contents read back with exiftool, originals untouched."""

import hashlib
import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.api.test_faces import FACES_DIR, FACES_TRUTH
from tests.api.test_photos_upload import EXIF_DIR, EXIF_TRUTH
from tests.conftest import new_owner
from tests.helpers import wait_for_export, wait_until_analysed


def exiftool(paths: list[Path]) -> list[dict]:
    assert shutil.which("exiftool"), "exiftool is required (Debian package libimage-exiftool-perl)"
    out = subprocess.run(
        ["exiftool", "-json", "-struct", *map(str, paths)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def as_list(value: object) -> list:
    return value if isinstance(value, list) else [] if value is None else [value]


@pytest.fixture(scope="module")
def exported(client: TestClient, tmp_path_factory: pytest.TempPathFactory):
    owner = new_owner(client)
    rotated = next(n for n, t in sorted(EXIF_TRUTH.items()) if t["orientation"] == 6 and t["make"])
    face_photo = sorted(FACES_TRUTH)[0]
    gif = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 10)).save(gif, "GIF")
    files = [
        ("files", ("rotated.jpg", (EXIF_DIR / "images" / rotated).read_bytes(), "image/jpeg")),
        ("files", ("face.jpg", (FACES_DIR / "images" / face_photo).read_bytes(), "image/jpeg")),
        ("files", ("face.jpg", (EXIF_DIR / "images" / sorted(EXIF_TRUTH)[0]).read_bytes(), "image/jpeg")),
        ("files", ("../../green.gif", gif.getvalue(), "image/gif")),
    ]
    results = client.post("/v1/photos", headers=owner.headers, files=files).json()["results"]
    photos = [r["photo"] for r in results]
    wait_until_analysed(client, owner, [p["id"] for p in photos])
    rotated_id, face_id, _, gif_id = (p["id"] for p in photos)
    client.post(f"/v1/photos/{rotated_id}/tags", headers=owner.headers, json={"name": "Holiday"})
    client.patch(f"/v1/photos/{rotated_id}", headers=owner.headers, json={"caption": "Sunset at the pier"})
    faces = client.get(f"/v1/photos/{face_id}/faces", headers=owner.headers).json()["items"]
    main = max(faces, key=lambda f: f["bbox"][2] * f["bbox"][3])
    client.post(
        "/v1/faces/label", headers=owner.headers, json={"face_ids": [main["id"]], "name": "Zoë Ångström"}
    )
    client.post(f"/v1/photos/{gif_id}/tags", headers=owner.headers, json={"name": "green"})
    blobs_before = {p["id"]: client.app.state.store.read(p["sha256"]) for p in photos}

    created = client.post("/v1/exports", headers=owner.headers, json={"photo_ids": [p["id"] for p in photos]})
    assert created.status_code == 202, created.text
    export = wait_for_export(client, owner, created.json()["id"])
    assert export["state"] == "ready" and export["done"] == 4, export
    download = client.get(f"/v1/exports/{export['id']}/download", headers=owner.headers)
    assert download.status_code == 200 and download.headers["content-type"] == "application/zip"
    folder = tmp_path_factory.mktemp("export")
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        names = archive.namelist()
        archive.extractall(folder)
    return owner, photos, blobs_before, folder, names, main


def test_zip_names_are_safe_unique_and_listed(exported) -> None:
    _, photos, _, folder, names, _ = exported
    assert "manifest.json" in names and "manifest.csv" in names
    assert all("/" not in n and ".." not in n for n in names)
    assert {"rotated.jpg", "face.jpg", "face (2).jpg", "green.gif", "green.gif.xmp"} <= set(names)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert {row["photo_id"] for row in manifest["photos"]} == {p["id"] for p in photos}


def test_tags_caption_and_orientation_are_in_the_file(exported) -> None:
    _, _, _, folder, _, _ = exported
    meta = exiftool([folder / "rotated.jpg"])[0]
    assert "holiday" in as_list(meta.get("Keywords")) and "holiday" in as_list(meta.get("Subject"))
    assert "Tags|holiday" in as_list(meta.get("HierarchicalSubject"))
    assert meta.get("Description") == "Sunset at the pier"
    assert meta.get("Orientation") == "Rotate 90 CW"
    assert meta.get("Make"), "existing camera metadata is kept"


def test_named_face_region_is_written(exported) -> None:
    _, _, _, folder, _, main = exported
    meta = exiftool([folder / "face.jpg"])[0]
    regions = meta["RegionInfo"]["RegionList"]
    named = [r for r in regions if r.get("Name") == "Zoë Ångström"]
    assert named and named[0]["Type"] == "Face"
    area = named[0]["Area"]
    x, y, w, h = main["bbox"]
    # The faces-set photos carry no EXIF rotation, so stored and displayed coordinates agree.
    assert (area["X"], area["Y"]) == (pytest.approx(x + w / 2, abs=0.01), pytest.approx(y + h / 2, abs=0.01))
    assert (area["W"], area["H"]) == (pytest.approx(w, abs=0.01), pytest.approx(h, abs=0.01))
    assert "People|Zoë Ångström" in as_list(meta.get("HierarchicalSubject"))
    assert "Zoë Ångström" in as_list(meta.get("Keywords"))


def test_gif_gets_a_sidecar(exported) -> None:
    _, _, _, folder, _, _ = exported
    sidecar = exiftool([folder / "green.gif.xmp"])[0]
    assert "green" in as_list(sidecar.get("Subject"))


def test_originals_are_untouched(client: TestClient, exported) -> None:
    owner, photos, blobs_before, _, _, _ = exported
    for photo in photos:
        stored = client.app.state.store.read(photo["sha256"])
        assert stored == blobs_before[photo["id"]]
        assert hashlib.sha256(stored).hexdigest() == photo["sha256"]
        original = client.get(f"/v1/photos/{photo['id']}/original", headers=owner.headers)
        assert hashlib.sha256(original.content).hexdigest() == photo["sha256"]


def test_export_by_search_and_errors(client: TestClient, exported) -> None:
    owner, photos, _, _, _, _ = exported
    created = client.post("/v1/exports", headers=owner.headers, json={"search": {"tags": ["green"]}})
    assert created.status_code == 202
    export = wait_for_export(client, owner, created.json()["id"])
    assert (export["state"], export["total"]) == ("ready", 1)
    assert export["search"] == {"tags": ["green"]}  # what the export holds, for a list of exports
    by_ids = client.get("/v1/exports", headers=owner.headers).json()["items"][-1]
    assert by_ids["search"] is None and by_ids["total"] == len(photos)
    by_words = client.post("/v1/exports", headers=owner.headers, json={"search": {"q": "holiday"}})
    assert by_words.status_code == 202
    found = client.get("/v1/search", headers=owner.headers, params={"q": "holiday", "limit": 100}).json()[
        "items"
    ]
    assert any("holiday" in {t["name"] for t in hit["photo"]["tags"]} for hit in found)
    assert wait_for_export(client, owner, by_words.json()["id"])["total"] == len(found) < len(photos)
    stranger = new_owner(client)
    assert client.get(f"/v1/exports/{export['id']}", headers=stranger.headers).status_code == 404
    assert client.get(f"/v1/exports/{export['id']}/download", headers=stranger.headers).status_code == 404
    theirs = client.post("/v1/exports", headers=stranger.headers, json={"photo_ids": [photos[0]["id"]]})
    assert theirs.status_code == 404
    assert client.post("/v1/exports", headers=owner.headers, json={}).status_code == 422
    nothing = client.post("/v1/exports", headers=owner.headers, json={"search": {"tags": ["no-such-tag"]}})
    assert nothing.status_code == 422 and nothing.headers["content-type"] == "application/problem+json"
