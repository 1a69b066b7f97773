"""Sideways or upside-down photos without an EXIF orientation: which rotation makes them upright.

Two opinions per clockwise turn, added as log-odds: the rotation head (services.inference.rotation),
which learned from thousands of upright photos what "the right way up" looks like to the labeler, and
the detectors, whose people, faces and objects score highest the right way up, judged in one pass over
a 2x2 mosaic of the four turns. bench/eval_rotation.py measures each alone and together.
"""

from dataclasses import dataclass

import numpy as np
from PIL import Image

from services.inference.faces import FaceDetector
from services.inference.objects import Detection, ObjectDetector

ROTATIONS = (0, 90, 180, 270)  # clockwise degrees that make the photo upright
# A turn is suggested when it is more likely than not. bench/eval_rotation.py also fits this bar and
# the weight on held-apart photos; the fits land at 0.3 (suggest the most likely turn whatever its
# margin) and 0.75-1.0, which are right for fewer suggestions on other photos (bench/reports/rotation.md).
MIN_PROBABILITY = 0.5
# When the head gives one turn at least this probability, the mosaic pass is skipped. With the
# squashed-view head the --fit photos of bench/eval_rotation.py are answered alike for any value from
# 0.5 to 1.0 (always running the mosaic included) and worse at 0.4; 0.7 keeps a margin above that and
# lets the mosaic still veto a weak suggestion (it runs for 2% of the --fit and 19% of the report photos).
HEAD_SURE = 0.7
# How much one unit of upright evidence (a cubed detection score; faces count double) weighs against
# the head's log-probability.
EVIDENCE_WEIGHT = 1.0
FACE_WEIGHT = 2.0
TOP_OBJECTS = 5
# The mosaic: four turns of a copy in a 2x2 grid of this side, one detector pass for all four.
PROBE_SIDE = 640
# Share of a box's area that must lie in its tile's picture for the box to count for that rotation.
MOSAIC_MIN_INSIDE = 0.8


@dataclass(frozen=True)
class RotationSuggestion:
    rotation: int
    confidence: float


def upright_evidence(detections: list[Detection], face_scores: list[float]) -> float:
    return upright_evidence_from_scores([d.score for d in detections], face_scores)


def upright_evidence_from_scores(object_scores: list[float], face_scores: list[float]) -> float:
    """How convincingly the detectors saw things the right way up.

    Cubed scores of the few best detections: a sideways photo yields many weak, confused boxes, and a
    plain sum would reward that clutter. Faces count double: detectors are orientation-bound for them.
    """
    objects = sorted((s for s in object_scores if s >= 0.25), reverse=True)[:TOP_OBJECTS]
    faces = sorted((s for s in face_scores if s >= 0.5), reverse=True)[:2]
    return float(sum(s**3 for s in objects) + FACE_WEIGHT * sum(s**3 for s in faces))


def needs_rotation_check(orientation: int, camera_make: str | None) -> bool:
    """Cameras and phones record which way up they were held; files without that (scans, exports,
    messaging apps) are the ones that end up sideways."""
    return orientation == 1 and not camera_make


def _tile_boxes(
    boxes: list[tuple[list[float] | tuple[float, ...], float]],
    tiles: list[tuple[int, int, int, int]],
    side: int,
) -> list[list[float]]:
    """Scores of the boxes (normalised to the mosaic) that lie within one tile's picture, per tile."""
    scores: list[list[float]] = [[] for _ in tiles]
    for box, score in boxes:
        x0, y0 = box[0] * side, box[1] * side
        x1, y1 = x0 + box[2] * side, y0 + box[3] * side
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        for index, (left, top, right, bottom) in enumerate(tiles):
            if left <= cx < right and top <= cy < bottom:
                inside = max(0.0, min(x1, right) - max(x0, left)) * max(0.0, min(y1, bottom) - max(y0, top))
                # A box reaching far into a neighbour tile is the detector confusing two pictures.
                if inside >= MOSAIC_MIN_INSIDE * max(1e-6, (x1 - x0) * (y1 - y0)):
                    scores[index].append(score)
                break
    return scores


def mosaic_evidence(image: Image.Image, objects: ObjectDetector, faces: FaceDetector) -> list[float]:
    """Upright evidence for each of the four rotations, from ONE detector and ONE face-detector pass
    over a 2x2 mosaic of the turned copies: a quarter of the resolution of separate probes, but a third
    of their cost, and every rotation judged at the same scale."""
    tile = PROBE_SIDE // 2
    probe = image.convert("RGB")
    probe.thumbnail((tile, tile))
    mosaic = Image.new("RGB", (PROBE_SIDE, PROBE_SIDE), (114, 114, 114))
    tiles: list[tuple[int, int, int, int]] = []
    for index, rotation in enumerate(ROTATIONS):
        # Image.rotate turns counter-clockwise, so -r shows what a clockwise rotation by r gives.
        turned = probe.rotate(-rotation, expand=True)
        left = (index % 2) * tile + (tile - turned.width) // 2
        top = (index // 2) * tile + (tile - turned.height) // 2
        mosaic.paste(turned, (left, top))
        tiles.append((left, top, left + turned.width, top + turned.height))
    found = objects.detect([mosaic])[0]
    found_faces = faces.detect([mosaic])[0]
    object_scores = _tile_boxes([(d.box, d.score) for d in found], tiles, PROBE_SIDE)
    face_scores = _tile_boxes([(f.box, f.score) for f in found_faces], tiles, PROBE_SIDE)
    return [upright_evidence_from_scores(object_scores[i], face_scores[i]) for i in range(len(ROTATIONS))]


def combined_probabilities(turn_probabilities: np.ndarray, evidence: list[float]) -> np.ndarray:
    """The head's log-probabilities plus the detectors' upright evidence per turn, renormalised."""
    logits = np.log(np.asarray(turn_probabilities, dtype=np.float64) + 1e-9) + EVIDENCE_WEIGHT * np.asarray(
        evidence, dtype=np.float64
    )
    logits -= logits.max()
    combined = np.exp(logits)
    normalised: np.ndarray = combined / combined.sum()
    return normalised


def head_is_sure(turn_probabilities: np.ndarray) -> bool:
    """The head alone decides: the detectors' mosaic pass is only worth its cost when it hesitates."""
    return float(np.max(turn_probabilities)) >= HEAD_SURE


def suggest_rotation(turn_probabilities: np.ndarray, evidence: list[float] | None) -> RotationSuggestion:
    """The clockwise rotation (0/90/180/270) that makes the photo upright, with a confidence in 0..1.

    `turn_probabilities` come from the rotation head (services.inference.rotation), `evidence` (None
    when the head is sure) from the detectors' pass over the mosaic of the four turns (mosaic_evidence).
    A turn is suggested when the two together make it likely enough; otherwise the photo is left as is.
    """
    probabilities = (
        np.asarray(turn_probabilities, dtype=np.float64)
        if evidence is None
        else combined_probabilities(turn_probabilities, evidence)
    )
    best = int(probabilities.argmax())
    if best == 0 or probabilities[best] < MIN_PROBABILITY:
        return RotationSuggestion(0, float(np.clip(probabilities[0], 0.5, 0.99)))
    return RotationSuggestion(ROTATIONS[best], float(np.clip(probabilities[best], 0.5, 0.99)))
