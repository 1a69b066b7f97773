"""Tags on photos: model suggestions, user tags and the user's decisions, which always win."""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from core.errors import Invalid, NotFound
from core.events import photos_changed
from core.pagination import decode_cursor, encode_cursor
from db.base import new_id
from db.enums import TagKind, TagState
from db.models import Photo, PhotoTag
from db.types import utcnow
from services.photos.service import get_photo

MAX_TAG_LENGTH = 100


def normalise_tag_name(name: str) -> str:
    """One spelling per tag: trimmed, single spaces, lower case (`Big  Dog` -> `big dog`)."""
    cleaned = re.sub(r"\s+", " ", name).strip().lower()
    if not cleaned:
        raise Invalid("a tag name must not be empty", errors=[{"field": "name", "message": "empty"}])
    if len(cleaned) > MAX_TAG_LENGTH or any(ord(ch) < 32 for ch in cleaned) or "|" in cleaned:
        raise Invalid(
            f"a tag name has at most {MAX_TAG_LENGTH} printable characters and no '|'",
            errors=[{"field": "name", "message": "not a valid tag name"}],
        )
    return cleaned


@dataclass(frozen=True)
class ModelTag:
    name: str
    kind: TagKind
    confidence: float


def tag_dict(tag: PhotoTag) -> dict[str, Any]:
    return {
        "name": tag.name,
        "kind": tag.kind,
        "confidence": tag.confidence,
        "source": tag.source,
        "state": tag.state,
    }


def tags_for_photos(db: Session, photo_ids: list[str]) -> dict[str, list[PhotoTag]]:
    by_photo: dict[str, list[PhotoTag]] = {photo_id: [] for photo_id in photo_ids}
    if not photo_ids:
        return by_photo
    rows = db.scalars(
        select(PhotoTag)
        .where(PhotoTag.photo_id.in_(photo_ids))
        .order_by(PhotoTag.photo_id, PhotoTag.confidence.desc().nulls_first(), PhotoTag.name)
    )
    for tag in rows:
        by_photo[tag.photo_id].append(tag)
    return by_photo


def replace_model_tags(db: Session, *, photo: Photo, tags: Iterable[ModelTag], model: str) -> None:
    """Re-analysis: model suggestions are replaced; the user's decisions and tags stay untouched.

    A confirmed or rejected model tag keeps its state and only gets the new confidence, so a rejected
    tag never comes back as a suggestion and a confirmed one never disappears.
    """
    existing = {
        (tag.kind, tag.name): tag
        for tag in db.scalars(
            select(PhotoTag).where(PhotoTag.photo_id == photo.id, PhotoTag.source == "model")
        )
    }
    fresh = {(tag.kind, normalise_tag_name(tag.name)): tag for tag in tags}
    for key, tag in existing.items():
        if key not in fresh and tag.state == "suggested":
            db.delete(tag)
    for (kind, name), model_tag in fresh.items():
        current = existing.get((kind, name))
        if current is None:
            db.add(
                PhotoTag(
                    photo_id=photo.id,
                    owner_id=photo.owner_id,
                    name=name,
                    kind=kind,
                    confidence=round(float(model_tag.confidence), 4),
                    source="model",
                    state="suggested",
                    model=model,
                )
            )
        else:
            current.confidence = round(float(model_tag.confidence), 4)
            current.model = model


def add_user_tag(db: Session, *, owner_id: str, photo_id: str, name: str) -> PhotoTag:
    photo = get_photo(db, owner_id=owner_id, photo_id=photo_id)
    tag = stage_user_tag(db, photo, name)
    photos_changed(db, owner_id, [photo.id])
    db.commit()
    return tag


def stage_user_tag(db: Session, photo: Photo, name: str) -> PhotoTag:
    """The photo's user tag of that name, added when missing (no commit: the caller's transaction)."""
    name = normalise_tag_name(name)
    # ON CONFLICT DO NOTHING: adding a tag is idempotent, also for concurrent identical requests.
    insert = sqlite_insert if db.get_bind().dialect.name == "sqlite" else postgresql_insert
    now = utcnow()
    db.execute(
        insert(PhotoTag)
        .values(
            id=new_id(),
            photo_id=photo.id,
            owner_id=photo.owner_id,
            name=name,
            kind="user",
            confidence=None,
            source="user",
            state="confirmed",
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["photo_id", "kind", "name"])
    )
    tag = db.scalars(
        select(PhotoTag).where(PhotoTag.photo_id == photo.id, PhotoTag.kind == "user", PhotoTag.name == name)
    ).one()
    return tag


def _tags_named(db: Session, owner_id: str, photo_id: str, name: str) -> tuple[Photo, list[PhotoTag]]:
    """The owner's photo and its tags of that name (of any kind); NotFound when there are none."""
    photo = get_photo(db, owner_id=owner_id, photo_id=photo_id)
    name = normalise_tag_name(name)
    tags = list(db.scalars(select(PhotoTag).where(PhotoTag.photo_id == photo.id, PhotoTag.name == name)))
    if not tags:
        raise NotFound(f"photo {photo_id} has no tag {name!r}")
    return photo, tags


def set_tag_state(db: Session, *, owner_id: str, photo_id: str, name: str, state: TagState) -> list[PhotoTag]:
    """Confirm or reject every tag of that name on the photo (an object and a label may share a name)."""
    photo, tags = _tags_named(db, owner_id, photo_id, name)
    stage_tag_state(tags, name, state)
    photos_changed(db, owner_id, [photo.id])
    db.commit()
    return tags


def stage_tag_state(tags: list[PhotoTag], name: str, state: TagState) -> None:
    for tag in tags:
        if tag.source == "user" and state != "confirmed":
            raise Invalid(
                f"{name!r} is the user's own tag: delete it instead of changing its state",
                errors=[{"field": "state"}],
            )
        tag.state = state


def remove_tag(db: Session, *, owner_id: str, photo_id: str, name: str) -> None:
    """A user tag is deleted; a model tag is rejected, so later analyses do not bring it back."""
    photo, tags = _tags_named(db, owner_id, photo_id, name)
    stage_tag_removal(db, tags)
    photos_changed(db, owner_id, [photo.id])
    db.commit()


def stage_tag_removal(db: Session, tags: list[PhotoTag]) -> None:
    for tag in tags:
        if tag.source == "user":
            db.delete(tag)
        else:
            tag.state = "rejected"


def tags_named(db: Session, photo_ids: list[str], name: str) -> dict[str, list[PhotoTag]]:
    """Every tag of that name on these photos, by photo (no owner check: callers pass owned ids)."""
    found: dict[str, list[PhotoTag]] = {}
    query = select(PhotoTag).where(
        PhotoTag.photo_id.in_(photo_ids), PhotoTag.name == normalise_tag_name(name)
    )
    for tag in db.scalars(query):
        found.setdefault(tag.photo_id, []).append(tag)
    return found


def vocabulary(db: Session, *, owner_id: str, kind: str | None = None) -> list[dict[str, Any]]:
    """Every tag name in use with its photo count per kind (rejected tags do not count)."""
    query = (
        select(PhotoTag.name, PhotoTag.kind, func.count(func.distinct(PhotoTag.photo_id)))
        .where(PhotoTag.owner_id == owner_id, PhotoTag.state != "rejected")
        .group_by(PhotoTag.name, PhotoTag.kind)
    )
    if kind:
        query = query.where(PhotoTag.kind == kind)
    merged: dict[str, dict[str, Any]] = {}
    for name, tag_kind, count in db.execute(query):
        entry = merged.setdefault(name, {"name": name, "count": 0, "kinds": {}})
        entry["kinds"][tag_kind] = count
        entry["count"] = max(entry["count"], count)
    return sorted(merged.values(), key=lambda e: (-e["count"], e["name"]))


def review_queue(
    db: Session, *, owner_id: str, limit: int, cursor: str | None, kind: str | None = None
) -> tuple[list[PhotoTag], str | None]:
    """Suggested model tags, least confident first, so a user fixes the likely-wrong ones first."""
    query: Select[Any] = select(PhotoTag).where(
        PhotoTag.owner_id == owner_id, PhotoTag.source == "model", PhotoTag.state == "suggested"
    )
    if kind:
        query = query.where(PhotoTag.kind == kind)
    if cursor:
        confidence, last_id = decode_cursor(cursor, (float, str))
        query = query.where(
            (PhotoTag.confidence > confidence)
            | ((PhotoTag.confidence == confidence) & (PhotoTag.id > last_id))
        )
    rows = list(db.scalars(query.order_by(PhotoTag.confidence.asc(), PhotoTag.id.asc()).limit(limit + 1)))
    next_cursor = (
        encode_cursor([rows[limit - 1].confidence, rows[limit - 1].id]) if len(rows) > limit else None
    )
    return rows[:limit], next_cursor
