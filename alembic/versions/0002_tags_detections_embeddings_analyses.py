"""tags, detections, embeddings, analyses

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 05:31:08.054497
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "detections",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("photo_id", sa.String(length=36), nullable=False),
        sa.Column("class_name", sa.String(length=100), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("box_x", sa.Float(), nullable=False),
        sa.Column("box_y", sa.Float(), nullable=False),
        sa.Column("box_w", sa.Float(), nullable=False),
        sa.Column("box_h", sa.Float(), nullable=False),
        sa.Column("model", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["photo_id"], ["photos.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("detections", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_detections_photo_id"), ["photo_id"], unique=False)

    op.create_table(
        "photo_analyses",
        sa.Column("photo_id", sa.String(length=36), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("analysed_at", sa.DateTime(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["photo_id"], ["photos.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("photo_id"),
    )
    op.create_table(
        "photo_embeddings",
        sa.Column("photo_id", sa.String(length=36), nullable=False),
        sa.Column("model", sa.String(length=100), nullable=False),
        sa.Column("owner_id", sa.String(length=36), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["owners.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["photo_id"], ["photos.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("photo_id", "model"),
    )
    with op.batch_alter_table("photo_embeddings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_photo_embeddings_owner_id"), ["owner_id"], unique=False)

    op.create_table(
        "photo_tags",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("photo_id", sa.String(length=36), nullable=False),
        sa.Column("owner_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("model", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["owners.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["photo_id"], ["photos.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("photo_id", "kind", "name", name="uq_photo_tags_photo_kind_name"),
    )
    with op.batch_alter_table("photo_tags", schema=None) as batch_op:
        batch_op.create_index("ix_photo_tags_owner_name", ["owner_id", "name"], unique=False)
        batch_op.create_index(
            "ix_photo_tags_owner_state_conf", ["owner_id", "state", "confidence"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_photo_tags_photo_id"), ["photo_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("photo_tags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_photo_tags_photo_id"))
        batch_op.drop_index("ix_photo_tags_owner_state_conf")
        batch_op.drop_index("ix_photo_tags_owner_name")

    op.drop_table("photo_tags")
    with op.batch_alter_table("photo_embeddings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_photo_embeddings_owner_id"))

    op.drop_table("photo_embeddings")
    op.drop_table("photo_analyses")
    with op.batch_alter_table("detections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_detections_photo_id"))

    op.drop_table("detections")
