"""The analysis step gives the same findings whether its two model lanes run side by side or in turn."""

from pathlib import Path

from core.config import Settings
from services.analysis.service import PhotoFindings, QualitySource, analyze_images
from services.inference.models import ModelSet
from services.photos.images import ANALYSIS_MAX_SIDE, load_oriented
from services.quality.assess import jpeg_tables
from tests.paths import MODEL_DIR, TESTDATA_DIR

# Photos with people (faces and their quality), objects, and a photo with no camera orientation so
# the rotation check runs: each lane's findings must land on its own photo.
PHOTOS = (
    sorted((TESTDATA_DIR / "faces").rglob("*.jpg"))[:2]
    + sorted((TESTDATA_DIR / "detection" / "images").glob("*.jpg"))[:3]
)


def _analyse(lanes: int, paths: list[Path]) -> list[PhotoFindings]:
    models = ModelSet(Settings(model_dir=MODEL_DIR, analysis_lanes=lanes))
    blobs = [path.read_bytes() for path in paths]
    images = [load_oriented(blob, max_side=ANALYSIS_MAX_SIDE) for blob in blobs]
    # The photos are under ANALYSIS_MAX_SIDE, so the decoded size is the original's.
    sources = [
        QualitySource(jpeg_tables(blob), image.size) for blob, image in zip(blobs, images, strict=True)
    ]
    # Turned photos make the rotation check and its detector pass matter.
    turned = [image.rotate(90, expand=True) if i % 2 else image for i, image in enumerate(images)]
    return analyze_images(turned, models, [True] * len(turned), sources)


def _summary(found: PhotoFindings) -> tuple[object, ...]:
    return (
        [(d.class_name, round(d.score, 4)) for d in found.detections],
        [(round(f.detection.score, 4), [round(v, 3) for v in f.detection.box]) for f in found.faces],
        [(name, round(score, 4)) for name, score in found.labels.labels],
        [(t.name, round(t.confidence, 4)) for t in found.tags],
        None if found.rotation is None else (found.rotation.rotation, round(found.rotation.confidence, 3)),
        None if found.quality is None else (found.quality.score, found.quality.issues),
    )


def test_side_by_side_lanes_match_lanes_in_turn() -> None:
    assert len(PHOTOS) == 5, "the faces and detection photos are missing"
    in_turn = _analyse(1, PHOTOS)
    side_by_side = _analyse(2, PHOTOS)
    assert [_summary(f) for f in side_by_side] == [_summary(f) for f in in_turn]
    # Every lane did its work: faces, objects, quality and rotation verdicts are all there.
    assert any(found.faces for found in side_by_side)
    assert any(found.detections for found in side_by_side)
    assert all(found.quality is not None for found in side_by_side)
    assert all(found.rotation is not None for found in side_by_side)
