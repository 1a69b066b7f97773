"""YOLO26n: the fp32 rebuild of the int8 file, and the end-to-end post-processing, on real COCO photos."""

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from PIL import Image

from core.config import Settings
from onnx_models import rebuild_yolo26
from onnx_models.manifest import load_manifest
from onnx_models.setup import onnx_problems
from services.inference.objects import COCO80, ObjectDetector, _Letterbox
from services.tagging.rules import derive_tags
from services.tagging.thresholds import load_object_thresholds
from tests.paths import MODEL_DIR, TESTDATA_DIR

DETECTION_DIR = TESTDATA_DIR / "detection"
GROUND_TRUTH: dict[str, list[dict[str, Any]]] = json.loads((DETECTION_DIR / "ground_truth.json").read_text())
BUS_PHOTO = "000000000532.jpg"  # two buses and four people (see test_objects.py)
# Enough photos for the int8/fp32 comparison to see many classes, few enough to stay quick.
COMPARED_PHOTOS = sorted(GROUND_TRUTH)[:16]


def _detector(name: str) -> ObjectDetector:
    entry = load_manifest().by_name(name)
    return ObjectDetector(entry, Settings(model_dir=MODEL_DIR))


def _photo(name: str) -> Image.Image:
    with Image.open(DETECTION_DIR / "images" / name) as im:
        return im.convert("RGB")


def _xyxy(box: tuple[float, float, float, float]) -> np.ndarray:
    x, y, w, h = box
    return np.array([x, y, x + w, y + h])


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return float(inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter))


@pytest.fixture(scope="module")
def fp32() -> ObjectDetector:
    return _detector("yolo26n_fp32")


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("rebuild")
    (path,) = rebuild_yolo26.export(out)
    yield path


# ---- the rebuild ---------------------------------------------------------------------------------


def test_rebuild_is_a_plain_float_graph_with_the_manifest_signature(rebuilt: Path) -> None:
    model = onnx.load(str(rebuilt))
    ops = [node.op_type for node in model.graph.node]
    assert "ConvInteger" not in ops and "DynamicQuantizeLinear" not in ops
    assert ops.count("Conv") == rebuild_yolo26.EXPECTED_CONVS
    assert all(init.data_type != onnx.TensorProto.INT8 for init in model.graph.initializer)
    assert onnx_problems(rebuilt, load_manifest().by_name("yolo26n_fp32")) == []
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["end2end"] == "True" and "person" in meta["names"]  # class names travel along
    assert "onnx.infer" not in meta and rebuild_yolo26.SOURCE_SHA256 in meta["shoebox.rebuilt_from"]


def test_rebuild_is_deterministic(rebuilt: Path, tmp_path: Path) -> None:
    (again,) = rebuild_yolo26.export(tmp_path)
    assert hashlib.sha256(again.read_bytes()).digest() == hashlib.sha256(rebuilt.read_bytes()).digest()
    # ... and what set-up put into the model directory is the same file.
    installed = MODEL_DIR / rebuild_yolo26.OUTPUT_FILE
    assert hashlib.sha256(installed.read_bytes()).digest() == hashlib.sha256(again.read_bytes()).digest()


def test_rebuild_keeps_the_int8_weights_exactly(rebuilt: Path) -> None:
    """Each float weight is the int8 grid value times its scale: nothing was re-trained or rounded."""
    source = onnx.load(str(rebuild_yolo26.source_path(MODEL_DIR)))
    target = onnx.load(str(rebuilt))
    src = {i.name: onnx.numpy_helper.to_array(i) for i in source.graph.initializer}
    dst = {i.name: onnx.numpy_helper.to_array(i) for i in target.graph.initializer}
    name = "model.0.conv.weight"
    expected = src[f"{name}_quantized"].astype(np.float64) * float(src[f"{name}_scale"])
    np.testing.assert_allclose(dst[name], expected.astype(np.float32), rtol=0, atol=0)


def test_rebuilt_outputs_match_the_int8_graph_on_real_photos(fp32: ObjectDetector) -> None:
    """Same detections up to activation-quantisation noise: same classes, near-identical boxes."""
    int8 = _detector("yolo26n_int8")
    photos = [_photo(name) for name in COMPARED_PHOTOS]
    ious: list[float] = []
    score_gaps: list[float] = []
    same = union = 0
    for want, got in zip(int8.detect(photos, 0.05), fp32.detect(photos, 0.05), strict=True):
        for d in (d for d in want if d.score >= 0.3):
            candidates = [g for g in got if g.class_name == d.class_name]
            assert candidates, f"{d.class_name} {d.score:.2f} missing from the fp32 output"
            best = max(candidates, key=lambda g: _iou(_xyxy(g.box), _xyxy(d.box)))
            ious.append(_iou(_xyxy(best.box), _xyxy(d.box)))
            score_gaps.append(abs(best.score - d.score))
        classes_int8 = {d.class_name for d in want if d.score >= 0.3}
        classes_fp32 = {d.class_name for d in got if d.score >= 0.3}
        same += len(classes_int8 & classes_fp32)
        union += len(classes_int8 | classes_fp32)
    assert len(ious) >= 30  # the comparison saw plenty of objects
    # Measured on all 128 dev photos: IoU >= 0.91, median score gap 0.04, class sets agree 0.94.
    assert min(ious) >= 0.85
    assert float(np.median(score_gaps)) <= 0.08
    assert same / union >= 0.85


def test_free_input_size_changes_nothing_at_640_and_takes_other_sizes(rebuilt: Path) -> None:
    """At 640 x 640 the free-size graph is bit-identical to the fixed one the dequantisation gives;
    at 640 x 480 (a 4:3 photo) it runs, with anchors for the smaller grid."""
    import onnxruntime as ort

    fixed = rebuild_yolo26.dequantize(onnx.load(str(rebuild_yolo26.source_path(MODEL_DIR))))
    sessions = [
        ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        for model in (fixed.SerializeToString(), str(rebuilt))
    ]
    canvas = np.asarray(_photo(BUS_PHOTO).resize((640, 640)), dtype=np.float32).transpose(2, 0, 1)[None] / 255
    want, got = (session.run(None, {"images": canvas})[0] for session in sessions)
    np.testing.assert_array_equal(got, want)
    rows = sessions[1].run(None, {"images": np.ascontiguousarray(canvas[:, :, :480])})[0]
    assert rows.shape == (1, 300, 6) and rows[0, 0, 4] > 0.5  # the buses are still found
    assert rows[0, :, 3].max() <= 480 + 32  # boxes live on the 480-high canvas
    anchor_points, strides = rebuild_yolo26._anchor_grid(480, 640)
    assert anchor_points.shape == (1, 2, 6300) and strides.shape == (1, 6300)


def test_rectangular_letterbox_finds_what_the_square_canvas_finds(fp32: ObjectDetector) -> None:
    """A 4:3 photo goes in as 640 x 480 (a quarter less work); its detections are the square
    canvas's up to resampling noise. A graph with a fixed size keeps the square canvas."""
    assert fp32.rect
    square = ObjectDetector(
        fp32.entry.model_copy(update={"preprocessing": {**fp32.entry.preprocessing, "rect": False}}),
        Settings(model_dir=MODEL_DIR),
    )
    photos = [_photo(name) for name in COMPARED_PHOTOS]
    shapes = {fp32._letterbox(photo)[0].shape for photo in photos}
    assert (3, 480, 640) in shapes and all(h % 32 == 0 and w % 32 == 0 for _, h, w in shapes)
    same = union = 0
    for want, got in zip(square.detect(photos, 0.05), fp32.detect(photos, 0.05), strict=True):
        classes_square = {d.class_name for d in want if d.score >= 0.3}
        classes_rect = {d.class_name for d in got if d.score >= 0.3}
        same += len(classes_square & classes_rect)
        union += len(classes_square | classes_rect)
        for d in (d for d in want if d.score >= 0.5):
            best = max(
                (_iou(_xyxy(g.box), _xyxy(d.box)) for g in got if g.class_name == d.class_name), default=0
            )
            assert best >= 0.8, f"{d.class_name} {d.score:.2f} moved or went missing"
    assert same / union >= 0.9
    int8 = _detector("yolo26n_int8")
    forced = ObjectDetector(
        int8.entry.model_copy(update={"preprocessing": {**int8.entry.preprocessing, "rect": True}}),
        Settings(model_dir=MODEL_DIR),
    )
    assert not forced.rect and forced._letterbox(photos[0])[0].shape == (3, 640, 640)


# ---- post-processing -----------------------------------------------------------------------------


def test_yolo26_finds_the_buses_and_people_where_the_annotation_is(fp32: ObjectDetector) -> None:
    (found,) = fp32.detect([_photo(BUS_PHOTO)])
    assert {"bus", "person"} <= {d.class_name for d in found}
    assert [d.score for d in found] == sorted((d.score for d in found), reverse=True)
    assert all(d.score >= fp32.score_threshold and d.class_name == COCO80[d.class_id] for d in found)
    for d in found:
        x, y, w, h = d.box
        assert x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= 1 + 1e-6 and y + h <= 1 + 1e-6
    # Every annotated bus is found by a bus box: the letterbox was undone correctly.
    buses = [
        np.asarray(o["bbox_xyxy_normalised"]) for o in GROUND_TRUTH[BUS_PHOTO] if o["class_name"] == "bus"
    ]
    bus_boxes = [_xyxy(d.box) for d in found if d.class_name == "bus"]
    assert all(max(_iou(truth, box) for box in bus_boxes) > 0.7 for truth in buses)


def test_end_to_end_rows_map_back_through_the_letterbox(fp32: ObjectDetector) -> None:
    """A 1000x500 photo sits in the 640 canvas at ratio 0.64, 160 px down: rows map back to it."""
    letterbox = _Letterbox(ratio=0.64, pad_x=0.0, pad_y=160.0, width=1000, height=500)
    rows = np.zeros((300, 6), dtype=np.float32)
    rows[0] = [64, 192, 320, 352, 0.9, 5]  # bus: image x 100..500, y 50..300
    rows[1] = [0, 150, 700, 400, 0.5, 0]  # person spilling over the canvas edge: clipped
    rows[2] = [10, 170, 20, 180, 0.04, 2]  # below the threshold
    found = fp32._postprocess(rows, letterbox, score_threshold=0.05, iou=0.6)
    assert [(d.class_name, round(d.score, 2)) for d in found] == [("bus", 0.9), ("person", 0.5)]
    np.testing.assert_allclose(found[0].box, (0.1, 0.1, 0.4, 0.5), atol=1e-6)
    np.testing.assert_allclose(found[1].box, (0.0, 0.0, 1.0, 0.75), atol=1e-6)
    with pytest.raises(ValueError, match="6 wide"):
        fp32._postprocess(rows[:, :5], letterbox, score_threshold=0.05, iou=0.6)
    rows[0, 5] = 80
    with pytest.raises(ValueError, match="class id"):
        fp32._postprocess(rows, letterbox, score_threshold=0.05, iou=0.6)


def test_blank_image_of_any_shape_gives_nothing(fp32: ObjectDetector) -> None:
    """Panoramas and slivers get the thinnest canvas the strides allow (32 px) and still run."""
    sizes = [(320, 200), (5000, 10), (10, 3000), (1, 1)]
    images = [Image.new("RGB", size, (128, 128, 128)) for size in sizes]
    assert [fp32._letterbox(image)[0].shape for image in images] == [
        (3, 416, 640),
        (3, 32, 640),
        (3, 640, 32),
        (3, 640, 640),
    ]
    assert fp32.detect(images) == [[], [], [], []]


def test_default_detector_is_yolo26_with_fitted_tag_thresholds(fp32: ObjectDetector) -> None:
    assert load_manifest().default_for("objects").name == "yolo26n_fp32"
    thresholds = load_object_thresholds("yolo26n_fp32")
    assert thresholds is not None
    (found,) = fp32.detect([_photo(BUS_PHOTO)], score_threshold=thresholds.evidence_floor)
    tags = derive_tags(found, [], object_thresholds=thresholds)
    assert {"bus", "person"} <= {t.name for t in tags if t.kind == "object"}
    assert {"vehicles", "people", "urban"} <= {t.name for t in tags if t.kind == "category"}
