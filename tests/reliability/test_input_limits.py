"""Input limits are part of the contract: bad input answers 4xx on both databases, never 500
(issue 17, items 2, 3, 4)."""

import io
import struct
import zlib

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from tests.api.test_photos_upload import upload
from tests.conftest import OwnerAuth


def _assert_nul_refused(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "NUL" in response.json()["detail"]


def test_nul_in_a_path_id_is_refused(client: TestClient, owner: OwnerAuth) -> None:
    _assert_nul_refused(client.get("/v1/photos/a%00b", headers=owner.headers))
    _assert_nul_refused(client.delete("/v1/people/a%00b", headers=owner.headers))


def test_nul_in_a_filter_is_refused(client: TestClient, owner: OwnerAuth) -> None:
    _assert_nul_refused(client.get("/v1/photos", headers=owner.headers, params={"camera": "a\x00b"}))
    _assert_nul_refused(client.get("/v1/search", headers=owner.headers, params={"q": "dog\x00"}))


def test_nul_in_an_id_list_or_a_name_is_refused(client: TestClient, owner: OwnerAuth) -> None:
    body = {"type": "analyze", "photo_ids": ["a\x00b"]}
    _assert_nul_refused(client.post("/v1/jobs", headers=owner.headers, json=body))
    _assert_nul_refused(client.post("/v1/people", headers=owner.headers, json={"name": "Al\x00ice"}))


def test_an_escaped_backslash_before_u0000_is_not_a_nul(client: TestClient, owner: OwnerAuth) -> None:
    # The JSON text `"\\u0000"` is a backslash followed by "u0000": a legal (if odd) name.
    response = client.post(
        "/v1/people",
        headers={**owner.headers, "Content-Type": "application/json"},
        content=b'{"name": "odd \\\\u0000 name"}',
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "odd \\u0000 name"


def _jpeg_with_camera(make: str, model: str) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = make
    exif[0x0110] = model
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (10, 120, 200)).save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


def test_overlong_exif_camera_text_is_cut_to_its_column(client: TestClient, owner: OwnerAuth) -> None:
    response = upload(client, owner, [("long-make.jpg", _jpeg_with_camera("M" * 300, "Model " * 60))])
    assert response.status_code == 201, response.text
    camera = response.json()["results"][0]["photo"]["camera"]
    assert camera["make"] == "M" * 200
    assert len(camera["model"]) <= 200 and camera["model"].startswith("Model Model")


def png_claiming_another_width(width: int) -> bytes:
    """A real PNG whose IHDR says `width` (CRC recomputed, so only decoding can tell)."""
    pixels = np.random.default_rng(7).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    header = bytearray(data[16:29])
    header[0:4] = struct.pack(">I", width)
    data[16:29] = header
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(header)))
    return bytes(data)


def test_a_png_whose_header_lies_about_its_size_is_rejected(client: TestClient, owner: OwnerAuth) -> None:
    response = upload(client, owner, [("lying.png", png_claiming_another_width(60))])
    assert response.status_code == 422, response.text
    [result] = response.json()["errors"]
    assert "damaged" in result["detail"]
    assert client.get("/v1/photos", headers=owner.headers).json()["items"] == []
