"""Sideways photos without a camera orientation get a rotation suggestion; the user's choice sticks."""

import io

from fastapi.testclient import TestClient
from PIL import Image

from tests.api.test_tagging import DETECTION_DIR, most_prominent
from tests.conftest import OwnerAuth
from tests.helpers import wait_until_analysed


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=92)  # no EXIF: nothing says which way is up
    return buffer.getvalue()


def test_sideways_photos_get_the_right_suggestion(client: TestClient, owner: OwnerAuth) -> None:
    names = most_prominent("person", count=4)
    files, expected = [], []
    for index, name in enumerate(names):
        upright = Image.open(DETECTION_DIR / "images" / name)
        turn = (0, 90, 180, 270)[index]
        # Image.rotate turns counter-clockwise, so the fix is a clockwise turn by the same angle.
        files.append(("files", (f"turned-{turn}.jpg", jpeg(upright.rotate(turn, expand=True)))))
        expected.append(turn)
    results = client.post("/v1/photos", headers=owner.headers, files=files).json()["results"]
    ids = [r["photo"]["id"] for r in results]
    wait_until_analysed(client, owner, ids)
    photos = [client.get(f"/v1/photos/{i}", headers=owner.headers).json() for i in ids]
    suggestions = [p["suggested_rotation"] for p in photos]
    assert sum(s == e for s, e in zip(suggestions, expected, strict=True)) >= 3, suggestions
    assert suggestions[0] == 0, "an upright photo is left as it is"
    assert all(0 < p["suggested_rotation_confidence"] <= 1 for p in photos)


def test_user_rotation_turns_thumbnails(client: TestClient, owner: OwnerAuth) -> None:
    image = Image.open(DETECTION_DIR / "images" / most_prominent("person", count=1)[0])
    result = client.post("/v1/photos", headers=owner.headers, files=[("files", ("p.jpg", jpeg(image)))])
    photo_id = result.json()["results"][0]["photo"]["id"]
    before = Image.open(
        io.BytesIO(client.get(f"/v1/photos/{photo_id}/thumbnail", headers=owner.headers).content)
    )
    assert (
        client.patch(f"/v1/photos/{photo_id}", headers=owner.headers, json={"rotation": 90}).status_code
        == 200
    )
    after = Image.open(
        io.BytesIO(client.get(f"/v1/photos/{photo_id}/thumbnail", headers=owner.headers).content)
    )
    assert after.size == (before.height, before.width)
