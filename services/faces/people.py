"""People: named identities of an owner. Faces point at them; merging moves every face."""

import re
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.errors import Conflict, Invalid
from core.events import photos_changed
from core.pagination import decode_cursor, encode_cursor
from db.base import new_id
from db.models import Face, Person, Photo, person_name_key
from db.owned import get_owned
from db.types import utcnow
from services.jobs.service import ensure_queued_job


def clean_person_name(name: str) -> str:
    cleaned = re.sub(r"\s+", " ", name).strip()
    if not cleaned or len(cleaned) > 200 or any(ord(ch) < 32 for ch in cleaned):
        raise Invalid("a person's name has 1 to 200 printable characters", errors=[{"field": "name"}])
    return cleaned


def get_person(db: Session, *, owner_id: str, person_id: str) -> Person:
    return get_owned(db, Person, owner_id=owner_id, row_id=person_id, what="person")


def find_by_name(db: Session, *, owner_id: str, name: str) -> Person | None:
    # Names are matched case-insensitively so "alice" and "Alice" are one person.
    key = person_name_key(clean_person_name(name))
    return db.scalar(select(Person).where(Person.owner_id == owner_id, Person.name_key == key))


def _insert_if_new(db: Session, owner_id: str, name: str) -> bool:
    """One INSERT ... ON CONFLICT DO NOTHING on the name key: concurrent requests for one name
    (in any letter case) make one person, and nobody gets an integrity error."""
    insert = sqlite_insert if db.get_bind().dialect.name == "sqlite" else postgresql_insert
    now = utcnow()
    # RETURNING rather than rowcount: drivers disagree on the rowcount of a skipped insert.
    inserted = db.scalar(
        insert(Person)
        .values(
            id=new_id(),
            owner_id=owner_id,
            name=name,
            name_key=person_name_key(name),
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["owner_id", "name_key"])
        .returning(Person.id)
    )
    return inserted is not None


def _new_person(db: Session, *, owner_id: str, name: str) -> Person:
    name = clean_person_name(name)
    if not _insert_if_new(db, owner_id, name):
        raise Conflict(f"a person named {name!r} already exists")
    person = find_by_name(db, owner_id=owner_id, name=name)
    assert person is not None
    return person


def create_person(db: Session, *, owner_id: str, name: str) -> Person:
    person = _new_person(db, owner_id=owner_id, name=name)
    db.commit()
    return person


def get_or_create_by_name(db: Session, *, owner_id: str, name: str) -> Person:
    name = clean_person_name(name)
    person = find_by_name(db, owner_id=owner_id, name=name)
    if person is None:
        _insert_if_new(db, owner_id, name)
        person = find_by_name(db, owner_id=owner_id, name=name)
        assert person is not None  # inserted now, or by the concurrent request that won
    return person


# Fields a PATCH may set; a field left out of the request keeps its value.
PERSON_FIELDS = frozenset({"name", "cover_face_id", "hidden", "birth_date"})


def update_person(db: Session, *, owner_id: str, person_id: str, changes: dict[str, Any]) -> Person:
    """Rename, pick the cover face, hide or show, set or clear the birth date, in one transaction."""
    person = get_person(db, owner_id=owner_id, person_id=person_id)
    unknown = set(changes) - PERSON_FIELDS
    if unknown:
        raise Invalid(f"unknown person fields: {', '.join(sorted(unknown))}")
    renamed = False
    if "name" in changes:
        if changes["name"] is None:
            raise Invalid("a person's name cannot be removed", errors=[{"field": "name"}])
        name = clean_person_name(changes["name"])
        other = find_by_name(db, owner_id=owner_id, name=name)
        if other is not None and other.id != person.id:
            raise Conflict(f"a person named {name!r} already exists: merge them instead")
        renamed = name != person.name
        person.name = name
    if "cover_face_id" in changes:
        face_id = changes["cover_face_id"]
        if face_id is not None:
            face = get_owned(db, Face, owner_id=owner_id, row_id=face_id, what="face")
            if face.person_id != person.id:
                raise Invalid(
                    f"face {face_id} is not a face of {person.name}: name it first",
                    errors=[{"field": "cover_face_id"}],
                )
        person.cover_face_id = face_id
    if "hidden" in changes:
        person.hidden = bool(changes["hidden"])
    if "birth_date" in changes:
        person.birth_date = changes["birth_date"]
    try:
        db.flush()
    except IntegrityError as exc:  # a concurrent request took the name first
        db.rollback()
        raise Conflict(f"a person named {person.name!r} already exists: merge them instead") from exc
    if renamed:
        photos_changed(db, owner_id, _photo_ids_of([person.id], db))
    db.commit()
    return person


def cover_faces(db: Session, people: list[Person]) -> dict[str, str | None]:
    """Each person's cover face: the one the user chose while it is still theirs, else their best
    face on a photo not in the trash (user-labelled first, then the detector's most certain)."""
    covers: dict[str, str | None] = {person.id: None for person in people}
    chosen = {p.cover_face_id: p.id for p in people if p.cover_face_id is not None}
    if chosen:
        still_theirs = db.execute(
            select(Face.id, Face.person_id)
            .join(Photo, Photo.id == Face.photo_id)
            .where(Face.id.in_(list(chosen)), Photo.trashed_at.is_(None))
        )
        for face_id, person_id in still_theirs:
            if person_id is not None and chosen.get(face_id) == person_id:
                covers[person_id] = face_id
    missing = [person_id for person_id, face_id in covers.items() if face_id is None]
    if missing:
        rank = (
            func.row_number()
            .over(
                partition_by=Face.person_id,
                order_by=(
                    case((Face.person_source == "user", 0), else_=1),
                    Face.detection_score.desc(),
                    Face.id,
                ),
            )
            .label("rank")
        )
        ranked = (
            select(Face.person_id, Face.id, rank)
            .join(Photo, Photo.id == Face.photo_id)
            .where(Face.person_id.in_(missing), Photo.trashed_at.is_(None))
            .subquery()
        )
        for person_id, face_id in db.execute(
            select(ranked.c.person_id, ranked.c.id).where(ranked.c.rank == 1)
        ):
            covers[person_id] = face_id
    return covers


def delete_person(db: Session, *, owner_id: str, person_id: str) -> None:
    """The person goes; their faces become unassigned (the photos stay)."""
    person = get_person(db, owner_id=owner_id, person_id=person_id)
    affected = _photo_ids_of([person.id], db)
    db.execute(
        update(Face)
        .where(Face.person_id == person.id)
        .values(person_id=None, person_source=None, person_confidence=None)
    )
    # Its suggestions go too (rejections of it go with the person row: ON DELETE CASCADE).
    db.execute(
        update(Face)
        .where(Face.suggested_person_id == person.id)
        .values(suggested_person_id=None, suggestion_confidence=None)
    )
    db.delete(person)
    photos_changed(db, owner_id, affected)
    ensure_queued_job(db, owner_id=owner_id, type="recognize")
    db.commit()


def merge_people(db: Session, *, owner_id: str, person_id: str, from_ids: list[str]) -> Person:
    """Every face of `from_ids` moves to `person_id`; those people are deleted."""
    target = get_person(db, owner_id=owner_id, person_id=person_id)
    sources = [get_person(db, owner_id=owner_id, person_id=pid) for pid in dict.fromkeys(from_ids)]
    if any(source.id == target.id for source in sources):
        raise Invalid("a person cannot be merged into itself", errors=[{"field": "from_ids"}])
    source_ids = [source.id for source in sources]
    db.execute(
        update(Face)
        .where(Face.person_id.in_(source_ids))
        .values(person_id=target.id)
        .execution_options(synchronize_session=False)
    )
    db.execute(
        update(Face)
        .where(Face.suggested_person_id.in_(source_ids))
        .values(suggested_person_id=target.id)
        .execution_options(synchronize_session=False)
    )
    for source in sources:
        db.delete(source)
    photos_changed(db, owner_id, _photo_ids_of([target.id], db))
    ensure_queued_job(db, owner_id=owner_id, type="recognize")
    db.commit()
    return target


def _photo_ids_of(person_ids: list[str], db: Session) -> list[str]:
    return list(db.scalars(select(Face.photo_id).where(Face.person_id.in_(person_ids)).distinct()))


def list_people(
    db: Session, *, owner_id: str, limit: int, cursor: str | None = None, include_hidden: bool = False
) -> tuple[list[Person], str | None]:
    """People by name (case-insensitive), keyset-paged; hidden people only when asked for."""
    # The stored key, not SQL lower(): SQLite's lower() folds ASCII only, so a cursor computed in
    # Python would not match it for "Émile".
    key = Person.name_key
    query = select(Person).where(Person.owner_id == owner_id)
    if not include_hidden:
        query = query.where(Person.hidden.is_(False))
    if cursor:
        last_name, last_id = decode_cursor(cursor, (str, str))
        query = query.where(or_(key > last_name, and_(key == last_name, Person.id > last_id)))
    rows = list(db.scalars(query.order_by(key, Person.id).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor([last.name_key, last.id])


def people_stats(db: Session, person_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Face and photo counts per person, split by who named the faces (photos in the trash left out)."""
    stats = {pid: {"face_count": 0, "labeled_count": 0, "photo_count": 0} for pid in person_ids}
    if not person_ids:
        return stats
    rows = db.execute(
        select(
            Face.person_id,
            func.count(Face.id),
            func.sum(case((Face.person_source == "user", 1), else_=0)),
            func.count(func.distinct(Face.photo_id)),
        )
        .join(Photo, Photo.id == Face.photo_id)
        .where(Face.person_id.in_(person_ids), Photo.trashed_at.is_(None))
        .group_by(Face.person_id)
    )
    for person_id, faces, labelled, photos in rows:
        stats[person_id] = {"face_count": faces, "labeled_count": int(labelled or 0), "photo_count": photos}
    return stats
