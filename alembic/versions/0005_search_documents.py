"""search documents and per-owner change counter

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 06:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "search_owner_state",
        sa.Column("owner_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["owners.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("owner_id"),
    )
    op.create_table(
        "photo_search_docs",
        sa.Column("photo_id", sa.String(length=36), nullable=False),
        sa.Column("owner_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("entries", sa.JSON(), nullable=False),
        sa.Column("terms", sa.JSON(), nullable=False),
        sa.Column("length", sa.Float(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("summary_vector", sa.LargeBinary(), nullable=True),
        sa.Column("summary_model", sa.String(length=100), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["owners.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("photo_id"),
    )
    with op.batch_alter_table("photo_search_docs", schema=None) as batch_op:
        batch_op.create_index("ix_photo_search_docs_owner_version", ["owner_id", "version"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("photo_search_docs", schema=None) as batch_op:
        batch_op.drop_index("ix_photo_search_docs_owner_version")
    op.drop_table("photo_search_docs")
    op.drop_table("search_owner_state")
