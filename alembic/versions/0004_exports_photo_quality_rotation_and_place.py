"""exports, photo quality, rotation and place

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 05:38:12.023530
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "exports",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("owner_id", sa.String(length=36), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("entries", sa.JSON(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["owners.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("exports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_exports_owner_id"), ["owner_id"], unique=False)

    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("quality_score", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("quality_issues", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("quality_metrics", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("suggested_rotation", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("suggested_rotation_confidence", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("place_city", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("place_region", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("place_country", sa.String(length=100), nullable=True))
        batch_op.create_index(batch_op.f("ix_photos_quality_score"), ["quality_score"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_photos_quality_score"))
        batch_op.drop_column("place_country")
        batch_op.drop_column("place_region")
        batch_op.drop_column("place_city")
        batch_op.drop_column("suggested_rotation_confidence")
        batch_op.drop_column("suggested_rotation")
        batch_op.drop_column("quality_metrics")
        batch_op.drop_column("quality_issues")
        batch_op.drop_column("quality_score")

    with op.batch_alter_table("exports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_exports_owner_id"))

    op.drop_table("exports")
