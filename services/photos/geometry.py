"""Normalised boxes and points under the user's clockwise rotation.

Faces and detections are stored in the frame of the EXIF-upright image (the frame analysis saw). The
user's `rotation` turns that image again for thumbnails, so boxes shown with it must turn with it. Exports
keep the stored frame: their MWG regions describe the file's own pixels plus its orientation tag.
"""

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Photo


def rotate_point(x: float, y: float, rotation: int) -> tuple[float, float]:
    """(x, y) in 0..1 of the upright image -> the same point after turning it `rotation` degrees clockwise."""
    turn = rotation % 360
    if turn == 90:
        return 1.0 - y, x
    if turn == 180:
        return 1.0 - x, 1.0 - y
    if turn == 270:
        return y, 1.0 - x
    return x, y


def rotate_box(box: Sequence[float], rotation: int) -> list[float]:
    """[x, y, w, h] in 0..1 -> the box after turning the image `rotation` degrees clockwise."""
    x, y, w, h = box
    x1, y1 = rotate_point(x, y, rotation)
    x2, y2 = rotate_point(x + w, y + h, rotation)
    left, top = min(x1, x2), min(y1, y2)
    return [round(left, 6), round(top, 6), round(abs(x2 - x1), 6), round(abs(y2 - y1), 6)]


def rotations_of(db: Session, photo_ids: Sequence[str]) -> dict[str, int]:
    """The user's rotation of each photo (one query for a page of faces)."""
    if not photo_ids:
        return {}
    rows = db.execute(select(Photo.id, Photo.rotation).where(Photo.id.in_(set(photo_ids)))).all()
    return {photo_id: rotation or 0 for photo_id, rotation in rows}
