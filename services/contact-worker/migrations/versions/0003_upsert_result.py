"""What an applied upsert did: ``processed_events.result`` is ``created`` or ``updated``.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE processed_events ADD COLUMN result text"
        " CHECK (result IN ('created', 'updated'))"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE processed_events DROP COLUMN result")
