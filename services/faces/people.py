"""People: named identities of an owner. Faces point at them; merging moves every face."""

import re
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from core.errors import Conflict, Invalid
from core.events import photos_changed
from core.pagination import decode_cursor, encode_cursor
from db.models import Face, Person
from db.owned import get_owned
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
    return db.scalar(
        select(Person).where(
            Person.owner_id == owner_id, func.lower(Person.name) == clean_person_name(name).lower()
        )
    )


def _new_person(db: Session, *, owner_id: str, name: str) -> Person:
    name = clean_person_name(name)
    if find_by_name(db, owner_id=owner_id, name=name) is not None:
        raise Conflict(f"a person named {name!r} already exists")
    person = Person(owner_id=owner_id, name=name)
    db.add(person)
    db.flush()
    return person


def create_person(db: Session, *, owner_id: str, name: str) -> Person:
    person = _new_person(db, owner_id=owner_id, name=name)
    db.commit()
    return person


def get_or_create_by_name(db: Session, *, owner_id: str, name: str) -> Person:
    return find_by_name(db, owner_id=owner_id, name=name) or _new_person(db, owner_id=owner_id, name=name)


def rename_person(db: Session, *, owner_id: str, person_id: str, name: str) -> Person:
    person = get_person(db, owner_id=owner_id, person_id=person_id)
    name = clean_person_name(name)
    other = find_by_name(db, owner_id=owner_id, name=name)
    if other is not None and other.id != person.id:
        raise Conflict(f"a person named {name!r} already exists: merge them instead")
    person.name = name
    photos_changed(db, owner_id, _photo_ids_of([person.id], db))
    db.commit()
    return person


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
    db: Session, *, owner_id: str, limit: int, cursor: str | None = None
) -> tuple[list[Person], str | None]:
    """People by name (case-insensitive), keyset-paged."""
    key = func.lower(Person.name)
    query = select(Person).where(Person.owner_id == owner_id)
    if cursor:
        last_name, last_id = decode_cursor(cursor, 2)
        query = query.where(or_(key > last_name, and_(key == last_name, Person.id > last_id)))
    rows = list(db.scalars(query.order_by(key, Person.id).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor([last.name.lower(), last.id])


def people_stats(db: Session, person_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Face and photo counts per person, split by who named the faces."""
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
        .where(Face.person_id.in_(person_ids))
        .group_by(Face.person_id)
    )
    for person_id, faces, labelled, photos in rows:
        stats[person_id] = {"face_count": faces, "labeled_count": int(labelled or 0), "photo_count": photos}
    return stats
