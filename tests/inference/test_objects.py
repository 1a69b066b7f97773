"""Object detection on real COCO photos with the real model files (yolov8n_int8 default, yolox_nano)."""

import json
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from core.config import Settings
from onnx_models.manifest import load_manifest
from services.inference.objects import COCO80, Detection, ObjectDetector
from services.inference.tensors import grouped_nms
from services.tagging.rules import derive_tags, load_rules
from tests.paths import MODEL_DIR, TESTDATA_DIR

DETECTION_DIR = TESTDATA_DIR / "detection"
# Picked from detection/ground_truth.json: a street scene with two buses and four people, and a
# photo whose only annotated object is a cat.
BUS_PHOTO = "000000000532.jpg"
CAT_PHOTO = "000000000575.jpg"


def _detector(name: str) -> ObjectDetector:
    return ObjectDetector(load_manifest().by_name(name), Settings(model_dir=MODEL_DIR))


@pytest.fixture(scope="module")
def yolov8() -> ObjectDetector:
    return _detector("yolov8n_int8")


@pytest.fixture(scope="module")
def ground_truth() -> dict[str, list[dict]]:
    return json.loads((DETECTION_DIR / "ground_truth.json").read_text())


@pytest.fixture
def bus_photo() -> Iterator[Image.Image]:
    with Image.open(DETECTION_DIR / "images" / BUS_PHOTO) as im:
        yield im.convert("RGB")


def _classes(dets: list[Detection]) -> set[str]:
    return {d.class_name for d in dets}


def _assert_boxes_normalised(dets: list[Detection]) -> None:
    for d in dets:
        x, y, w, h = d.box
        assert 0.0 <= x <= 1.0 and 0.0 <= y <= 1.0, d
        assert 0.0 < w <= 1.0 and 0.0 < h <= 1.0, d
        assert x + w <= 1.0 + 1e-6 and y + h <= 1.0 + 1e-6, d


def test_ground_truth_has_the_chosen_photos(ground_truth: dict[str, list[dict]]) -> None:
    assert {"bus", "person"} <= {o["class_name"] for o in ground_truth[BUS_PHOTO]}
    assert {o["class_name"] for o in ground_truth[CAT_PHOTO]} == {"cat"}


def test_yolov8_finds_bus_people_and_cat(yolov8: ObjectDetector, bus_photo: Image.Image) -> None:
    with Image.open(DETECTION_DIR / "images" / CAT_PHOTO) as im:
        cat_photo = im.convert("RGB")
    bus_dets, cat_dets = yolov8.detect([bus_photo, cat_photo])
    assert {"bus", "person"} <= _classes(bus_dets)
    assert "cat" in _classes(cat_dets)
    _assert_boxes_normalised(bus_dets + cat_dets)
    assert all(d.score >= yolov8.score_threshold for d in bus_dets + cat_dets)
    assert all(d.class_name == COCO80[d.class_id] for d in bus_dets)


def test_yolov8_boxes_match_ground_truth(
    yolov8: ObjectDetector, bus_photo: Image.Image, ground_truth: dict[str, list[dict]]
) -> None:
    """The big bus's box lands where the annotation is: the letterbox was undone correctly."""
    (dets,) = yolov8.detect([bus_photo])
    best_bus = max((d for d in dets if d.class_name == "bus"), key=lambda d: d.score)
    x, y, w, h = best_bus.box
    truths = [o["bbox_xyxy_normalised"] for o in ground_truth[BUS_PHOTO] if o["class_name"] == "bus"]
    ious = []
    for x1, y1, x2, y2 in truths:
        iw = max(0.0, min(x + w, x2) - max(x, x1))
        ih = max(0.0, min(y + h, y2) - max(y, y1))
        inter = iw * ih
        ious.append(inter / (w * h + (x2 - x1) * (y2 - y1) - inter))
    assert max(ious) > 0.7


def test_yolov8_reads_names_and_fixed_batch_from_the_file(yolov8: ObjectDetector) -> None:
    assert yolov8.class_names == list(COCO80)  # parsed from the ONNX `names` metadata
    assert yolov8.fixed_batch == 1  # so detect() loops one image per run
    assert (yolov8.input_h, yolov8.input_w) == (640, 640)


def test_detection_is_independent_of_image_size(yolov8: ObjectDetector, bus_photo: Image.Image) -> None:
    """Boxes are normalised: the same photo at half size gives about the same boxes."""
    small = bus_photo.resize((bus_photo.width // 2, bus_photo.height // 2), Image.Resampling.BILINEAR)
    full, half = yolov8.detect([bus_photo, small])
    big_full = max((d for d in full if d.class_name == "bus"), key=lambda d: d.score)
    big_half = max((d for d in half if d.class_name == "bus"), key=lambda d: d.score)
    assert np.allclose(big_full.box, big_half.box, atol=0.05)


def test_empty_input_and_blank_image(yolov8: ObjectDetector) -> None:
    assert yolov8.detect([]) == []
    (dets,) = yolov8.detect([Image.new("RGB", (320, 200), (128, 128, 128))])
    assert dets == []


def test_yolox_finds_the_bus(bus_photo: Image.Image) -> None:
    yolox = _detector("yolox_nano")
    assert yolox.class_names == list(COCO80)  # no metadata: the built-in COCO list
    (dets,) = yolox.detect([bus_photo.convert("L")])  # grey input is converted, not rejected
    assert {"bus", "person"} <= _classes(dets)
    _assert_boxes_normalised(dets)


def test_grouped_nms_is_class_wise() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]], dtype=np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], dtype=np.float32)
    classes = np.array([0, 0, 1, 0])
    keep = grouped_nms(boxes, scores, classes, 0.5)
    # box 1 overlaps box 0 of the same class and goes; box 2 is another class and stays.
    assert keep.tolist() == [0, 2, 3]


def test_wrong_role_is_rejected() -> None:
    entry = load_manifest().by_name("mobilefacenet_paddlex")
    with pytest.raises(ValueError, match="role"):
        ObjectDetector(entry, Settings(model_dir=MODEL_DIR))


def test_bus_photo_tags_through_the_rules(yolov8: ObjectDetector, bus_photo: Image.Image) -> None:
    (dets,) = yolov8.detect([bus_photo], score_threshold=load_rules().objects.evidence_floor)
    tags = derive_tags(dets, [])
    assert {"bus", "person"} <= {t.name for t in tags if t.kind == "object"}
    assert {"vehicles", "people", "urban"} <= {t.name for t in tags if t.kind == "category"}
