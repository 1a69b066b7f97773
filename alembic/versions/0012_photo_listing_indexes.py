"""photos: the trash index holds trashed photos only; an index for the listing by upload time

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 18:00:00.000000

A full index on trashed_at made SQLite look visible photos up through it (trashed_at IS NULL matches
every one of them) instead of by primary key: every search candidate check scanned the library. And
a page of the listing by upload time sorted every photo of the owner.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRASHED = sa.text("trashed_at IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_photos_trashed_at", table_name="photos")
    op.create_index(
        "ix_photos_trashed_at",
        "photos",
        ["trashed_at"],
        unique=False,
        sqlite_where=TRASHED,
        postgresql_where=TRASHED,
    )
    op.create_index(
        "ix_photos_owner_visible_uploaded",
        "photos",
        ["owner_id", "archived", "trashed_at", "uploaded_at", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_photos_owner_visible_uploaded", table_name="photos")
    op.drop_index("ix_photos_trashed_at", table_name="photos")
    op.create_index("ix_photos_trashed_at", "photos", ["trashed_at"], unique=False)
