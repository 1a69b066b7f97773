"""photos: no "running" analysis state; photos an earlier version left in it are pending again

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 02:30:00.000000

The analysis job no longer marks its photos "running" before the models run: that write waited for
the previous batch's commit and kept the next batch from being analysed while one was stored
(bench/reports/ingest.md). A photo goes from pending to done or failed.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(sa.text("UPDATE photos SET analysis_state = 'pending' WHERE analysis_state = 'running'"))


def downgrade() -> None:
    # Nothing to undo: "pending" is a state every version knows.
    pass
