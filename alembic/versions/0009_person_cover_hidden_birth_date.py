"""people: cover face, hidden, birth date

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cover_face_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("hidden", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("birth_date", sa.Date(), nullable=True))
        batch_op.create_foreign_key(
            "fk_people_cover_face_id_faces", "faces", ["cover_face_id"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_constraint("fk_people_cover_face_id_faces", type_="foreignkey")
        batch_op.drop_column("birth_date")
        batch_op.drop_column("hidden")
        batch_op.drop_column("cover_face_id")
