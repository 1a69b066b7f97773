"""In-process change notifications, so derived data (the search index) follows every write.

Services call `photos_changed` inside the transaction that changed what a photo says about itself
(tags, people, caption, place...); listeners update their rows in that same transaction, so the
derived data commits or rolls back with the change.
"""

from collections.abc import Callable, Iterable

from sqlalchemy.orm import Session

PhotosChangedListener = Callable[[Session, str, list[str]], None]
_listeners: list[PhotosChangedListener] = []


def on_photos_changed(listener: PhotosChangedListener) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def photos_changed(db: Session, owner_id: str, photo_ids: Iterable[str]) -> None:
    ids = list(dict.fromkeys(photo_ids))
    if not ids:
        return
    db.flush()
    for listener in _listeners:
        listener(db, owner_id, ids)


_deleted_listeners: list[PhotosChangedListener] = []


def on_photos_deleted(listener: PhotosChangedListener) -> None:
    if listener not in _deleted_listeners:
        _deleted_listeners.append(listener)


def photos_deleted(db: Session, owner_id: str, photo_ids: Iterable[str]) -> None:
    """Called before the photo rows are deleted, in the same transaction."""
    ids = list(dict.fromkeys(photo_ids))
    for listener in _deleted_listeners:
        listener(db, owner_id, ids)
