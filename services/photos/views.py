"""A photo with what every domain knows about it, loaded in bulk for a page of photos."""

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from db.models import Photo
from services.faces.service import faces_count_for_photos
from services.tagging.service import tag_dict, tags_for_photos


@dataclass
class PhotoView:
    """The photo row (its own columns: EXIF, quality, rotation) plus what other tables say about it."""

    photo: Photo
    tags: list[dict[str, Any]] = field(default_factory=list)
    faces_count: int = 0
    place: dict[str, str | None] | None = None


def photo_views(db: Session, photos: list[Photo]) -> list[PhotoView]:
    photo_ids = [photo.id for photo in photos]
    tags = tags_for_photos(db, photo_ids)
    faces = faces_count_for_photos(db, photo_ids)
    return [
        PhotoView(
            photo=photo,
            tags=[tag_dict(tag) for tag in tags[photo.id]],
            faces_count=faces[photo.id],
            place=_place(photo),
        )
        for photo in photos
    ]


def _place(photo: Photo) -> dict[str, str | None] | None:
    if not (photo.place_city or photo.place_region or photo.place_country):
        return None
    return {"city": photo.place_city, "region": photo.place_region, "country": photo.place_country}


def photo_view(db: Session, photo: Photo) -> PhotoView:
    return photo_views(db, [photo])[0]
