"""Owners and their API keys. Keys are shown once at creation and stored only as sha256."""

import hashlib
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from core.errors import Conflict, NotFound, Unauthorized
from db.models import ApiKey, Owner
from db.types import utcnow

KEY_PREFIX = "sbx_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedKey:
    id: str
    owner_id: str
    key: str  # plaintext, only ever returned here
    prefix: str


def create_owner(db: Session, *, name: str) -> Owner:
    if db.scalar(select(Owner).where(Owner.name == name)) is not None:
        raise Conflict(f"an owner named {name!r} already exists")
    owner = Owner(name=name)
    db.add(owner)
    db.flush()
    return owner


def get_owner_by_name(db: Session, *, name: str) -> Owner:
    owner = db.scalar(select(Owner).where(Owner.name == name))
    if owner is None:
        raise NotFound(f"no owner named {name!r}")
    return owner


def issue_key(db: Session, *, owner_id: str, name: str = "", key: str | None = None) -> IssuedKey:
    key = key or KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey(owner_id=owner_id, key_hash=hash_key(key), prefix=key[:12], name=name)
    db.add(api_key)
    db.flush()
    return IssuedKey(id=api_key.id, owner_id=owner_id, key=key, prefix=api_key.prefix)


def revoke_key(db: Session, *, key_id: str) -> ApiKey:
    api_key = db.get(ApiKey, key_id)
    if api_key is None:
        raise NotFound(f"no API key with id {key_id!r}")
    if api_key.revoked_at is None:
        api_key.revoked_at = utcnow()
    return api_key


def list_keys(db: Session, *, owner_id: str) -> list[ApiKey]:
    return list(db.scalars(select(ApiKey).where(ApiKey.owner_id == owner_id).order_by(ApiKey.created_at)))


def live_key(db: Session, *, key: str) -> ApiKey:
    """The API key row of a live key; Unauthorized for anything else."""
    api_key = db.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
    if api_key is None or api_key.revoked_at is not None:
        raise Unauthorized("the API key is unknown or revoked")
    return api_key


def authenticate(db: Session, *, key: str) -> str:
    """The owner id of a live key; Unauthorized for anything else."""
    return live_key(db, key=key).owner_id


def session_owner(db: Session, *, key_id: str) -> str:
    """The owner of a session made with API key `key_id`: the session lives only as long as the key."""
    api_key = db.get(ApiKey, key_id)
    if api_key is None or api_key.revoked_at is not None:
        raise Unauthorized("the session's API key was revoked; sign in again")
    return api_key.owner_id


def ensure_bootstrap_owner(db: Session, *, key: str, owner_name: str = "default", attempts: int = 5) -> str:
    """Make sure owner `default` exists and holds `key`, committed (idempotent across restarts and
    processes: an API and its workers starting together race to create them, and the loser reads
    what the winner wrote)."""
    for attempt in range(attempts):
        try:
            owner = db.scalar(select(Owner).where(Owner.name == owner_name))
            if owner is None:
                # Inserted without create_owner's friendly check: a racer committing between that
                # check and our read would turn into a Conflict; the unique index says it instead.
                owner = Owner(name=owner_name)
                db.add(owner)
                db.flush()
            existing = db.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
            if existing is None:
                issue_key(db, owner_id=owner.id, name="bootstrap", key=key)
            elif existing.owner_id != owner.id:
                raise Conflict("the bootstrap key already belongs to another owner")
            owner_id = owner.id
            db.commit()
            return owner_id
        except (IntegrityError, OperationalError):
            # Another process inserted the same owner or key first (or held SQLite's lock too long).
            db.rollback()
            if attempt == attempts - 1:
                raise
            time.sleep(0.1 * (attempt + 1))
    raise AssertionError("unreachable")


def first_owner_needed(db: Session) -> bool:
    """True while the service has no owner at all: a fresh install that nobody has set up yet."""
    return not db.scalar(select(func.count()).select_from(Owner))


def create_first_owner(db: Session, *, name: str) -> IssuedKey:
    """The first owner of a fresh install and its first API key; Conflict once any owner exists, so
    this open door closes for good as soon as somebody walks through it."""
    if not first_owner_needed(db):
        raise Conflict("this Shoebox is already set up; sign in with an API key")
    try:
        owner = create_owner(db, name=name)
        issued = issue_key(db, owner_id=owner.id, name="first")
        db.commit()
    except IntegrityError:
        # Two first visitors at once: one of them made it.
        db.rollback()
        raise Conflict("this Shoebox is already set up; sign in with an API key") from None
    return issued
