"""Search tables: the per-photo search document and a per-owner change counter.

Both are derived data, rebuilt from the photo tables at any time. The in-memory indexes of every API
process (services/search/) are caches of these rows: a process compares the owner's counter with
the version it has applied and reads only the documents changed since.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, LargeBinary, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base
from db.types import UTCDateTime, utcnow


class SearchOwnerState(Base):
    """One row per owner: `version` goes up by one in every transaction that changes a document."""

    __tablename__ = "search_owner_state"

    owner_id: Mapped[str] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    # True once every document of the owner carries its facet keys, so FacetCount rows are complete
    # (owners created after migration 0010 start so; older ones are brought up by facet_counts.build).
    facets_ready: Mapped[bool] = mapped_column(Boolean, default=True, server_default=false())


class FacetCount(Base):
    """How many visible photos of an owner carry one facet value (a tag, a person, a camera, a year...).

    Kept exact by the document writer: each document remembers the facet keys its photo contributes
    (`PhotoSearchDoc.facet_keys`), and a rewrite adds the difference here, in the same transaction.
    """

    __tablename__ = "facet_counts"

    owner_id: Mapped[str] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(1000), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class PhotoSearchDoc(Base):
    """What a photo says about itself, ready to index.

    `entries` keep the readable facts ([field, value, weight]) that search results quote in `matched`;
    `terms` are the same facts as normalised index terms with their weights. No foreign key to the
    photo: a deleted photo leaves a tombstone (`deleted`), so other processes learn of the deletion
    from the same change feed.
    """

    __tablename__ = "photo_search_docs"
    __table_args__ = (Index("ix_photo_search_docs_owner_version", "owner_id", "version"),)

    photo_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(BigInteger)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    entries: Mapped[list[Any]] = mapped_column(JSON, default=list)
    terms: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    length: Mapped[float] = mapped_column(Float, default=0.0)
    # A short sentence of what the models saw, for the semantic (sentence-embedding) comparison.
    summary: Mapped[str] = mapped_column(Text, default="")
    # The summary's sentence embedding (float32, unit length) and the text model that made it.
    summary_vector: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    summary_model: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # The facet keys this photo adds to FacetCount ([] while trashed or archived); None: written before
    # migration 0010 and not yet counted.
    facet_keys: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
