"""face suggestions (the model's unasserted match) and "not this person" rejections

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 14:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("faces", schema=None) as batch_op:
        batch_op.add_column(sa.Column("suggested_person_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("suggestion_confidence", sa.Float(), nullable=True))
        batch_op.create_foreign_key(
            "fk_faces_suggested_person_id_people",
            "people",
            ["suggested_person_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.create_table(
        "face_rejections",
        sa.Column("face_id", sa.String(length=36), nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("owner_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["face_id"], ["faces.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["owner_id"], ["owners.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("face_id", "person_id"),
    )
    with op.batch_alter_table("face_rejections", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_face_rejections_owner_id"), ["owner_id"], unique=False)
    # A face un-assigned before this revision kept person_source "user" with no person; it stays so.


def downgrade() -> None:
    with op.batch_alter_table("face_rejections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_face_rejections_owner_id"))
    op.drop_table("face_rejections")
    with op.batch_alter_table("faces", schema=None) as batch_op:
        batch_op.drop_constraint("fk_faces_suggested_person_id_people", type_="foreignkey")
        batch_op.drop_column("suggestion_confidence")
        batch_op.drop_column("suggested_person_id")
