"""job claim tokens; people unique by their case-folded name

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 14:30:00.000000
"""

import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _name_key(name: str) -> str:
    # Frozen copy of db.models.person_name_key as of this revision.
    return " ".join(unicodedata.normalize("NFKC", name).split()).casefold()


def upgrade() -> None:
    op.add_column("jobs", sa.Column("claim_token", sa.String(length=32), nullable=True))
    op.add_column("people", sa.Column("name_key", sa.String(length=800), nullable=True))
    people = sa.table(
        "people",
        sa.column("id", sa.String),
        sa.column("owner_id", sa.String),
        sa.column("name", sa.String),
        sa.column("name_key", sa.String),
        sa.column("created_at", sa.DateTime),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(people.c.id, people.c.owner_id, people.c.name).order_by(people.c.created_at, people.c.id)
    ).all()
    taken: set[tuple[str, str]] = set()
    for person_id, owner_id, name in rows:
        # Names that were only told apart by letter case get a number, so nobody's faces are lost.
        candidate, number = name, 1
        while (owner_id, _name_key(candidate)) in taken:
            number += 1
            candidate = f"{name[:190]} ({number})"
        taken.add((owner_id, _name_key(candidate)))
        connection.execute(
            people.update()
            .where(people.c.id == person_id)
            .values(name=candidate, name_key=_name_key(candidate))
        )
    with op.batch_alter_table("people") as batch:
        batch.alter_column("name_key", existing_type=sa.String(length=800), nullable=False)
        batch.drop_constraint("uq_people_owner_name", type_="unique")
        batch.create_unique_constraint("uq_people_owner_name_key", ["owner_id", "name_key"])


def downgrade() -> None:
    with op.batch_alter_table("people") as batch:
        batch.drop_constraint("uq_people_owner_name_key", type_="unique")
        batch.create_unique_constraint("uq_people_owner_name", ["owner_id", "name"])
        batch.drop_column("name_key")
    op.drop_column("jobs", "claim_token")
