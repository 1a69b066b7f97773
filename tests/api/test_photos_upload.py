"""Upload through real HTTP: EXIF, thumbnails, bad files, de-duplication, owners."""

import io
import json
import random
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageOps
from sqlalchemy import func, select

from db.models import Job, Photo
from tests.conftest import OwnerAuth, new_owner
from tests.helpers import upload
from tests.paths import TESTDATA_DIR

EXIF_DIR = TESTDATA_DIR / "exif"
EXIF_TRUTH: dict[str, dict] = json.loads((EXIF_DIR / "ground_truth.json").read_text())


@pytest.fixture(scope="module")
def exif_library(client: TestClient) -> tuple[OwnerAuth, dict[str, dict]]:
    """Every EXIF sample uploaded once, in one multi-file request."""
    owner = new_owner(client)
    files = [(name, (EXIF_DIR / "images" / name).read_bytes()) for name in sorted(EXIF_TRUTH)]
    response = upload(client, owner, files)
    assert response.status_code == 201, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["created"] * len(files)
    return owner, {r["filename"]: r["photo"] for r in results}


def expected_capture_time(truth: dict) -> str | None:
    # Documented fallback order: DateTimeOriginal, then DateTimeDigitized, then IFD0 DateTime.
    raw = truth["datetime_original"] or truth["datetime_digitized"] or truth["datetime"]
    if not raw or not raw[:4].strip(" :0"):
        return None
    date, time = raw.split(" ")
    return f"{date.replace(':', '-')}T{time}"


def test_every_exif_photo_matches_ground_truth(exif_library: tuple[OwnerAuth, dict[str, dict]]) -> None:
    _, photos = exif_library
    for name, truth in EXIF_TRUTH.items():
        photo = photos[name]
        assert photo["orientation"] == (truth["orientation"] or 1), name
        assert (photo["width"], photo["height"]) == (truth["width"], truth["height"]), name
        expected = expected_capture_time(truth)
        if truth["datetime_original"]:
            assert photo["taken_at_source"] == "DateTimeOriginal", name
        if expected is None:
            assert photo["taken_at"] is None, name
        else:
            assert photo["taken_at"] is not None and photo["taken_at"].startswith(expected), name
            if truth.get("offset_time_original"):
                assert photo["taken_at"].endswith(truth["offset_time_original"]), name
        gps = truth["gps"]
        if gps is None or (gps["lat"] == 0 and gps["lon"] == 0):
            assert photo["gps"] is None, name
        else:
            assert photo["gps"]["lat"] == pytest.approx(gps["lat"], abs=1e-5), name
            assert photo["gps"]["lon"] == pytest.approx(gps["lon"], abs=1e-5), name
            if gps.get("alt_m") is not None:
                assert photo["gps"]["alt"] == pytest.approx(gps["alt_m"], abs=0.01), name
        if truth["make"]:
            assert photo["camera"]["make"] == truth["make"].strip(), name


def test_thumbnails_come_out_upright(
    client: TestClient, exif_library: tuple[OwnerAuth, dict[str, dict]]
) -> None:
    owner, photos = exif_library
    rotated = [name for name, truth in EXIF_TRUTH.items() if (truth["orientation"] or 1) in range(2, 9)]
    assert rotated, "the EXIF set should hold rotated samples"
    for name in rotated:
        response = client.get(f"/v1/photos/{photos[name]['id']}/thumbnail?size=256", headers=owner.headers)
        assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
        thumb = Image.open(io.BytesIO(response.content)).convert("RGB")
        expected = ImageOps.exif_transpose(Image.open(EXIF_DIR / "images" / name)).convert("RGB")
        assert max(thumb.size) <= 256
        assert (thumb.width >= thumb.height) == (expected.width >= expected.height), name
        difference = _mean_difference(thumb, expected)
        # Upright means: closer to the exif_transpose result than any other way of turning the pixels.
        wrong = min(
            _mean_difference(thumb.transpose(t), expected)
            for t in _ORIENTATION_CHANGES
            if thumb.transpose(t).size[0] / thumb.transpose(t).size[1] > 0
        )
        assert difference < wrong / 2, f"{name}: {difference:.1f} vs {wrong:.1f}"


_ORIENTATION_CHANGES = [
    Image.Transpose.FLIP_LEFT_RIGHT,
    Image.Transpose.FLIP_TOP_BOTTOM,
    Image.Transpose.ROTATE_90,
    Image.Transpose.ROTATE_180,
    Image.Transpose.ROTATE_270,
    Image.Transpose.TRANSPOSE,
    Image.Transpose.TRANSVERSE,
]


def _mean_difference(image: Image.Image, reference: Image.Image) -> float:
    # Compare at a small common size so resampling filters do not matter, only the pixel layout.
    size = (48, 48)
    a = np.asarray(image.resize(size, Image.Resampling.BOX), dtype=np.float32)
    b = np.asarray(reference.resize(size, Image.Resampling.BOX), dtype=np.float32)
    return float(np.abs(a - b).mean())


def test_thumbnail_is_cached_and_answers_etag(client: TestClient, exif_library) -> None:
    owner, photos = exif_library
    photo_id = next(iter(photos.values()))["id"]
    first = client.get(f"/v1/photos/{photo_id}/thumbnail?size=1024", headers=owner.headers)
    again = client.get(
        f"/v1/photos/{photo_id}/thumbnail?size=1024",
        headers={**owner.headers, "If-None-Match": first.headers["etag"]},
    )
    assert first.status_code == 200 and again.status_code == 304
    bad_size = client.get(f"/v1/photos/{photo_id}/thumbnail?size=300", headers=owner.headers)
    assert bad_size.status_code == 422
    assert bad_size.headers["content-type"] == "application/problem+json"


def test_original_is_returned_untouched(client: TestClient, exif_library) -> None:
    owner, photos = exif_library
    name = sorted(photos)[0]
    response = client.get(f"/v1/photos/{photos[name]['id']}/original", headers=owner.headers)
    assert response.status_code == 200
    assert response.content == (EXIF_DIR / "images" / name).read_bytes()
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["etag"] == f'"{photos[name]["sha256"]}"'
    assert name in response.headers["content-disposition"]


def _png_header_claiming(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    idat_data = zlib.compress(b"\x00" * 64)
    idat = (
        struct.pack(">I", len(idat_data))
        + b"IDAT"
        + idat_data
        + struct.pack(">I", zlib.crc32(b"IDAT" + idat_data))
    )
    return b"\x89PNG\r\n\x1a\n" + chunk + idat


def _state(client: TestClient) -> tuple[int, int, list[str]]:
    settings = client.app.state.settings
    with client.app.state.sessions() as db:
        photos = db.scalar(select(func.count()).select_from(Photo))
        jobs = db.scalar(select(func.count()).select_from(Job))
    blobs = sorted(str(p.relative_to(settings.blob_root)) for p in Path(settings.blob_root).rglob("*"))
    return photos, jobs, blobs


def bad_files(max_bytes: int) -> dict[str, bytes]:
    real = (EXIF_DIR / "images" / sorted(EXIF_TRUTH)[0]).read_bytes()
    rng = random.Random(7)
    return {
        "truncated.jpg": real[: len(real) // 2],
        "random.jpg": bytes(rng.getrandbits(8) for _ in range(4096)),
        "empty.jpg": b"",
        "bomb.png": _png_header_claiming(50_000, 50_000),
        "huge.jpg": real + b"\0" * max_bytes,
    }


def test_bad_files_are_rejected_and_leave_nothing_behind(client: TestClient, owner: OwnerAuth) -> None:
    files = bad_files(client.app.state.settings.max_upload_bytes)
    before = _state(client)
    for name, data in files.items():
        response = upload(client, owner, [(name, data)])
        assert 400 <= response.status_code < 500, name
        assert response.headers["content-type"] == "application/problem+json", name
        problem = response.json()
        assert problem["errors"][0]["status"] == response.status_code, name
        assert problem["errors"][0]["filename"] == name and problem["detail"], name
    statuses = {name: upload(client, owner, [(name, data)]).status_code for name, data in files.items()}
    assert statuses["huge.jpg"] == 413
    assert statuses["random.jpg"] == 415
    assert _state(client) == before


def test_a_mixed_upload_keeps_the_good_files(client: TestClient, owner: OwnerAuth) -> None:
    good = (EXIF_DIR / "images" / sorted(EXIF_TRUTH)[1]).read_bytes()
    response = upload(client, owner, [("good.jpg", good), ("empty.jpg", b""), ("../../etc/evil.jpg", good)])
    assert response.status_code == 201
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["created", "rejected", "duplicate"]
    assert results[1]["error"]["status"] in (400, 422) and "empty" in results[1]["error"]["detail"]
    assert results[2]["photo"]["id"] == results[0]["photo"]["id"]
    assert results[0]["photo"]["filename"] == "good.jpg"


def test_same_file_twice_is_one_photo_and_two_owners_get_one_each(
    client: TestClient, owner: OwnerAuth, other_owner: OwnerAuth
) -> None:
    # Bytes nobody else in this module uploads, so the blob's fate depends on these two owners only.
    pixels = np.random.default_rng().integers(0, 255, (32, 32, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    data = buffer.getvalue()
    first = upload(client, owner, [("a.png", data)])
    second = upload(client, owner, [("b.jpg", data)])
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["results"][0]["status"] == "duplicate"
    assert second.json()["results"][0]["photo"]["id"] == first.json()["results"][0]["photo"]["id"]
    listed = client.get("/v1/photos", headers=owner.headers).json()["items"]
    assert len(listed) == 1
    theirs = upload(client, other_owner, [("c.jpg", data)])
    assert theirs.status_code == 201
    their_id = theirs.json()["results"][0]["photo"]["id"]
    assert their_id != first.json()["results"][0]["photo"]["id"]
    # The bytes are shared: purging one owner's photo keeps them for the other.
    store = client.app.state.store
    sha = first.json()["results"][0]["photo"]["sha256"]
    assert client.delete(f"/v1/photos/{their_id}", headers=other_owner.headers).status_code == 204
    assert client.request("DELETE", "/v1/trash", headers=other_owner.headers).json()["purged"] == 1
    assert store.exists(sha)
    mine = first.json()["results"][0]["photo"]["id"]
    assert client.delete(f"/v1/photos/{mine}", headers=owner.headers).status_code == 204
    assert store.exists(sha)  # in the trash, the bytes stay
    assert client.request("DELETE", "/v1/trash", headers=owner.headers).json()["purged"] == 1
    assert not store.exists(sha)


def test_other_formats_are_sniffed_from_bytes(client: TestClient, owner: OwnerAuth) -> None:
    image = Image.new("RGB", (64, 48), (200, 30, 30))
    cases = {"image/png": "PNG", "image/webp": "WEBP", "image/gif": "GIF", "image/tiff": "TIFF"}
    for content_type, fmt in cases.items():
        buffer = io.BytesIO()
        image.save(buffer, fmt)
        # A misleading name: the type must come from the bytes.
        response = upload(client, owner, [(f"picture-{fmt}.jpg", buffer.getvalue())])
        assert response.status_code == 201, (fmt, response.text)
        photo = response.json()["results"][0]["photo"]
        assert photo["content_type"] == content_type and (photo["width"], photo["height"]) == (64, 48)


def test_missing_files_field_is_a_problem(client: TestClient, owner: OwnerAuth) -> None:
    response = client.post("/v1/photos", headers=owner.headers, data={"nothing": "here"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "files" in response.json()["detail"]
