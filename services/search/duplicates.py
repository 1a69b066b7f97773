"""Near-duplicate groups: photos whose image embeddings are within DUPLICATE_COSINE, best shot first.

Pairs come from the owner's in-memory vector index (exact cosines; the PCA bound prunes almost all
pairs at scale), groups are their connected components. The grouping is cached per index version.
The best shot is the highest quality_score when every photo of the group has one; otherwise the
full-resolution photos (within 90% of the group's largest pixel count) beat smaller copies, and
among those the sharpest wins (variance of the Laplacian at a common scale).
"""

from __future__ import annotations

import io
import logging
import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image
from sqlalchemy.orm import Session

from core.errors import NotFound
from core.pagination import decode_cursor, encode_cursor
from core.storage import BlobStore
from db.models import Photo
from services.inference.tensors import laplacian_variance
from services.photos.service import get_photos, thumbnail_path
from services.search.index import owner_index
from services.search.service import DUPLICATE_COSINE, image_model_name

log = logging.getLogger(__name__)

FULL_RESOLUTION_SHARE = 0.9
SHARPNESS_SIDE = 512


@dataclass
class DuplicateGroup:
    photos: list[Photo]
    similarity: float
    best_by: str


@dataclass
class _Grouping:
    vectors_id: int
    mutations: int
    pairs: dict[tuple[str, str], float]
    groups: list[tuple[list[str], float]]  # sorted member ids, weakest link; biggest groups first


_cache: dict[str, _Grouping] = {}
_cache_lock = threading.Lock()
# Up to this share of changed photos, pairs are patched (changed photos against all); beyond, redone.
INCREMENTAL_SHARE = 0.05


def _components(pairs: list[tuple[str, str, float]]) -> list[tuple[list[str], float]]:
    parent: dict[str, str] = {}

    def find(item: str) -> str:
        parent.setdefault(item, item)
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    weakest: dict[str, float] = {}
    for a, b, _ in pairs:
        root_a, root_b = find(a), find(b)
        if root_a != root_b:
            parent[root_b] = root_a
    members: dict[str, list[str]] = {}
    for item in parent:
        members.setdefault(find(item), []).append(item)
    for a, _, score in pairs:
        root = find(a)
        weakest[root] = min(weakest.get(root, 1.0), score)
    groups = [(sorted(ids), weakest[root]) for root, ids in members.items()]
    groups.sort(key=lambda group: (-len(group[0]), group[0][0]))
    return groups


def _grouping(db: Session, owner_id: str) -> list[tuple[list[str], float]]:
    """The owner's groups, from cache when no embedding changed; patched when few did (a new upload
    costs one row against all, not all against all)."""
    index = owner_index(db, owner_id)
    vectors = index.vector_index(db, image_model_name())
    if vectors is None:
        return []
    with _cache_lock:
        cached = _cache.get(owner_id)
    with index.lock:
        if cached is not None and cached.vectors_id == id(vectors) and cached.mutations == vectors.mutations:
            return cached.groups
        changed = (
            [p for p, at in vectors.changed_at.items() if at > cached.mutations]
            if cached is not None and cached.vectors_id == id(vectors)
            else None
        )
        mutations = vectors.mutations
        if cached is not None and changed is not None and len(changed) <= INCREMENTAL_SHARE * len(vectors):
            gone = set(changed)
            pairs = {key: score for key, score in cached.pairs.items() if not gone & set(key)}
            fresh = vectors.pairs_above(DUPLICATE_COSINE, changed)
        else:
            pairs = {}
            fresh = vectors.pairs_above(DUPLICATE_COSINE)
    pairs.update({(a, b): score for a, b, score in fresh})
    groups = _components([(a, b, score) for (a, b), score in pairs.items()])
    with _cache_lock:
        _cache[owner_id] = _Grouping(id(vectors), mutations, pairs, groups)
    log.info("near-duplicates of owner %s: %d groups from %d pairs", owner_id, len(groups), len(pairs))
    return groups


def sharpness(image: Image.Image) -> float:
    """Variance of the 4-neighbour Laplacian of the grey image: blur removes exactly that energy."""
    grey = np.asarray(image.convert("L"), dtype=np.float32)
    if grey.shape[0] < 3 or grey.shape[1] < 3:
        return 0.0
    return laplacian_variance(grey)


def _sharpness_at(store: BlobStore, photo: Photo, side: int) -> float:
    try:
        with Image.open(io.BytesIO(thumbnail_path(store, photo, 1024).read_bytes())) as image:
            image.thumbnail((side, side))
            return sharpness(image)
    except (NotFound, OSError) as error:
        log.warning("no sharpness for photo %s: %s", photo.id, error)
        return 0.0


def best_first(store: BlobStore, photos: list[Photo]) -> tuple[list[Photo], str]:
    if photos and all(photo.quality_score is not None for photo in photos):
        # A copy with under half the pixels of the largest is a derivative, not a better shot, however
        # its metrics read (a downscaled copy can even measure sharper): full-size copies rank first.
        largest_pixels = max(photo.width * photo.height for photo in photos)
        return sorted(
            photos,
            key=lambda p: (p.width * p.height * 2 < largest_pixels, -(p.quality_score or 0.0), p.id),
        ), "quality_score"
    largest = max(photo.width * photo.height for photo in photos)
    side = min(SHARPNESS_SIDE, *(max(photo.width, photo.height) for photo in photos))
    sharp = {photo.id: _sharpness_at(store, photo, side) for photo in photos}
    ordered = sorted(
        photos,
        key=lambda p: (
            -(p.width * p.height >= FULL_RESOLUTION_SHARE * largest),
            -sharp[p.id],
            -(p.width * p.height),
            p.id,
        ),
    )
    return ordered, "resolution_sharpness"


def duplicate_groups(
    db: Session, store: BlobStore, *, owner_id: str, limit: int = 20, cursor: str | None = None
) -> tuple[list[DuplicateGroup], str | None]:
    """Groups of near-duplicates, biggest first; each group's photos best shot first."""
    after: tuple[int, str] | None = None
    if cursor:
        size, first_id = decode_cursor(cursor, (int, str))
        after = (size, first_id)
    results: list[DuplicateGroup] = []
    last_key: tuple[int, str] | None = None
    more = False
    for ids, similarity in _grouping(db, owner_id):
        key = (len(ids), ids[0])
        if after is not None and (key[0] > after[0] or (key[0] == after[0] and key[1] <= after[1])):
            continue
        if len(results) == limit:
            more = True
            break
        # The cache may be a moment behind a deletion: the database has the last word.
        photos = get_photos(db, owner_id=owner_id, photo_ids=ids)
        last_key = key
        if len(photos) < 2:
            continue
        ordered, best_by = best_first(store, photos)
        results.append(DuplicateGroup(photos=ordered, similarity=round(similarity, 4), best_by=best_by))
    next_cursor = encode_cursor(list(last_key)) if more and last_key else None
    return results, next_cursor
