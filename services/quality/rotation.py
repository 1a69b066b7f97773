"""Sideways or upside-down photos without an EXIF orientation: which rotation makes them upright.

Upright content is what the detectors were trained on, so they find people, faces and objects most
confidently the right way up. The analysis already ran them on the photo as stored; unless that found
clearly upright content, the three other rotations of a small copy are tried.
"""

from dataclasses import dataclass

import numpy as np
from PIL import Image

from services.inference.faces import FaceDetector
from services.inference.objects import Detection, ObjectDetector

ROTATIONS = (0, 90, 180, 270)  # clockwise degrees that make the photo upright
# Another rotation must beat the stored one by this much evidence to be suggested. Measured on 268
# real photos turned at random (bench/eval_rotation.py): 0.25 names the right rotation for 85% of
# photos and ~90% of its non-zero suggestions are right; from a gain of 1.5 on, 99% are.
MIN_GAIN = 0.25
PROBE_SIDE = 640
FACE_WEIGHT = 2.0
TOP_OBJECTS = 5
# Upright evidence this strong as stored means the photo is the right way up: the other rotations are
# not tried. Skips about half of upright photos while losing ~2% of right suggestions (same bench).
CLEARLY_UPRIGHT = 2.0


@dataclass(frozen=True)
class RotationSuggestion:
    rotation: int
    confidence: float


def upright_evidence(detections: list[Detection], face_scores: list[float]) -> float:
    """How convincingly the detectors saw things the right way up.

    Cubed scores of the few best detections: a sideways photo yields many weak, confused boxes, and a
    plain sum would reward that clutter. Faces count double: detectors are orientation-bound for them.
    """
    objects = sorted((d.score for d in detections if d.score >= 0.25), reverse=True)[:TOP_OBJECTS]
    faces = sorted((s for s in face_scores if s >= 0.5), reverse=True)[:2]
    return float(sum(s**3 for s in objects) + FACE_WEIGHT * sum(s**3 for s in faces))


def needs_rotation_check(orientation: int, camera_make: str | None) -> bool:
    """Cameras and phones record which way up they were held; files without that (scans, exports,
    messaging apps) are the ones that end up sideways."""
    return orientation == 1 and not camera_make


def suggest_rotation(
    image: Image.Image,
    stored_detections: list[Detection],
    stored_face_scores: list[float],
    objects: ObjectDetector,
    faces: FaceDetector,
) -> RotationSuggestion:
    """The clockwise rotation (0/90/180/270) that makes `image` upright, with a confidence in 0..1."""
    stored = upright_evidence(stored_detections, stored_face_scores)
    if stored >= CLEARLY_UPRIGHT:
        return RotationSuggestion(0, 0.9)
    probe = image.copy()
    probe.thumbnail((PROBE_SIDE, PROBE_SIDE))
    # Image.rotate turns counter-clockwise, so -r shows what a clockwise rotation by r gives.
    candidates = [probe.rotate(-r, expand=True) for r in ROTATIONS[1:]]
    evidence = [stored]
    for found, found_faces in zip(objects.detect(candidates), faces.detect(candidates), strict=True):
        evidence.append(upright_evidence(found, [f.score for f in found_faces]))
    scores = np.asarray(evidence)
    best = int(scores.argmax())
    gain = float(scores[best] - scores[0])
    if best == 0 or gain < MIN_GAIN:
        # Nothing clearly better: keep the photo as it is, surer the more upright evidence it had.
        return RotationSuggestion(0, float(np.clip(0.5 + scores[0] / 4, 0.5, 0.9)))
    # Follows the measured precision: ~0.6 just over MIN_GAIN, ~0.9 at 1.0, ~0.99 from 1.5.
    return RotationSuggestion(ROTATIONS[best], float(np.clip(0.55 + 0.35 * (gain - MIN_GAIN), 0.55, 0.98)))
