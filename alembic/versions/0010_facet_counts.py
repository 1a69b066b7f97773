"""facet counts kept by the document writer

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 17:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "facet_counts",
        sa.Column("owner_id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=1000), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["owners.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("owner_id", "key"),
    )
    with op.batch_alter_table("photo_search_docs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("facet_keys", sa.JSON(), nullable=True))
    # Existing owners are counted by documents.build_facet_counts (the job runner's maintenance step).
    with op.batch_alter_table("search_owner_state", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("facets_ready", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("search_owner_state", schema=None) as batch_op:
        batch_op.drop_column("facets_ready")
    with op.batch_alter_table("photo_search_docs", schema=None) as batch_op:
        batch_op.drop_column("facet_keys")
    op.drop_table("facet_counts")
