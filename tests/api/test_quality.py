"""Quality scores with reasons on real photos, the min_quality filter, and low-light enhancement."""

import io
import json
from collections import defaultdict

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.api.test_tagging import wait_until_analysed
from tests.conftest import OwnerAuth, new_owner
from tests.paths import TESTDATA_DIR

QUALITY_DIR = TESTDATA_DIR / "quality"
QUALITY_TRUTH: dict[str, dict] = json.loads((QUALITY_DIR / "ground_truth.json").read_text())


@pytest.fixture(scope="module")
def assessed(client: TestClient) -> tuple[OwnerAuth, dict[str, dict]]:
    owner = new_owner(client)
    files = [
        ("files", (name, (QUALITY_DIR / "images" / name).read_bytes())) for name in sorted(QUALITY_TRUTH)
    ]
    results = client.post("/v1/photos", headers=owner.headers, files=files).json()["results"]
    wait_until_analysed(client, owner, [r["photo"]["id"] for r in results])
    photos = {
        r["filename"]: client.get(f"/v1/photos/{r['photo']['id']}", headers=owner.headers).json()
        for r in results
    }
    return owner, photos


def test_sharp_shots_beat_their_blurred_versions(assessed) -> None:
    _, photos = assessed
    scenes: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for name, truth in QUALITY_TRUTH.items():
        scenes[truth["scene"]][truth["label"]].append(photos[name])
    compared = 0
    for labels in scenes.values():
        for sharp in labels.get("sharp", []):
            assert not {"blurry", "motion_blur"} & set(sharp["quality"]["issues"])
            for label in ("defocus_blur", "motion_blur"):
                for blurred in labels.get(label, []):
                    assert sharp["quality"]["score"] > blurred["quality"]["score"]
                    assert {"blurry", "motion_blur"} & set(blurred["quality"]["issues"])
                    compared += 1
    assert compared, "the quality set should hold sharp/blurred scenes"


def test_dark_photos_are_dark_and_can_be_brightened(client: TestClient, assessed) -> None:
    owner, photos = assessed
    dark = [photos[n] for n, t in QUALITY_TRUTH.items() if t["label"] == "dark"]
    assert dark
    for photo in dark:
        assert "dark" in photo["quality"]["issues"]
        assert {"mean_luminance", "edge_sharpness", "noise_sigma"} <= set(photo["quality"]["metrics"])
        response = client.get(f"/v1/photos/{photo['id']}/enhanced?mode=low_light", headers=owner.headers)
        assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
        original = client.get(f"/v1/photos/{photo['id']}/original", headers=owner.headers).content
        before = np.asarray(Image.open(io.BytesIO(original)).convert("L"), dtype=float)
        after = np.asarray(Image.open(io.BytesIO(response.content)).convert("L"), dtype=float)
        assert after.mean() > before.mean() + 30 and after.std() > before.std()
        hsv_before = np.asarray(Image.open(io.BytesIO(original)).convert("HSV"), dtype=float)
        hsv_after = np.asarray(Image.open(io.BytesIO(response.content)).convert("HSV"), dtype=float)
        colourful = (hsv_before[..., 1] > 60) & (hsv_before[..., 2] > 15)
        shift = np.abs(hsv_before[..., 0] - hsv_after[..., 0])[colourful]
        assert np.median(np.minimum(shift, 256 - shift)) < 12, "colours must stay natural"
    assert (
        client.get(f"/v1/photos/{dark[0]['id']}/enhanced?mode=sepia", headers=owner.headers).status_code
        == 422
    )


def test_min_quality_filter(client: TestClient, assessed) -> None:
    owner, photos = assessed
    threshold = 80
    listed = client.get("/v1/photos", headers=owner.headers, params={"min_quality": threshold, "limit": 100})
    expected = {p["id"] for p in photos.values() if p["quality"]["score"] >= threshold}
    assert {p["id"] for p in listed.json()["items"]} == expected
    assert expected and len(expected) < len(photos)
