"""library: favourite, rating, archive, trash, albums

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 15:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("favorite", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("rating", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("archived", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("trashed_at", sa.DateTime(), nullable=True))
        batch_op.create_index(batch_op.f("ix_photos_trashed_at"), ["trashed_at"], unique=False)
        batch_op.create_index(
            "ix_photos_owner_visible_taken",
            ["owner_id", "archived", "trashed_at", "taken_at", "id"],
            unique=False,
        )
    op.create_table(
        "albums",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("owner_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("cover_photo_id", sa.String(length=36), nullable=True),
        sa.Column("sort", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["owners.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["cover_photo_id"], ["photos.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("albums", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_albums_owner_id"), ["owner_id"], unique=False)
    op.create_table(
        "album_photos",
        sa.Column("album_id", sa.String(length=36), nullable=False),
        sa.Column("photo_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["album_id"], ["albums.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["photo_id"], ["photos.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("album_id", "photo_id"),
    )
    with op.batch_alter_table("album_photos", schema=None) as batch_op:
        batch_op.create_index("ix_album_photos_photo", ["photo_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("album_photos", schema=None) as batch_op:
        batch_op.drop_index("ix_album_photos_photo")
    op.drop_table("album_photos")
    with op.batch_alter_table("albums", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_albums_owner_id"))
    op.drop_table("albums")
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.drop_index("ix_photos_owner_visible_taken")
        batch_op.drop_index(batch_op.f("ix_photos_trashed_at"))
        batch_op.drop_column("trashed_at")
        batch_op.drop_column("archived")
        batch_op.drop_column("rating")
        batch_op.drop_column("favorite")
