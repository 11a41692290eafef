"""The cache entries the worker owes Redis: ``cache_repairs`` (docs/architecture.md §5.5).

Revision ID: 0008
Revises: 0007

After a commit the worker writes each changed contact's cache entry. When that write fails
(Redis down, slow or cut off from the worker only), the entry in Redis is older than
PostgreSQL, and if the outage outlasts the message's receives nothing would ever overwrite it
(case C18). The worker then records one row per contact here, in PostgreSQL, which it just
committed to: the cache (its Redis key prefix: deployments, or test stacks, that share the
database but not the cache each repair their own), ``(workspace, contact_id)`` and the
``version`` the entry must reach (``adapters.cache_repairs``). Its repair loop writes those
entries once Redis answers again and deletes each row whose version it wrote; the query API
reads the table every fraction of a second and serves none of those contacts from Redis
meanwhile (SELECT only, like every table it reads).

A new, normally empty table: ``make bench``'s loaded data set is migrated, not reloaded.
"""

from __future__ import annotations

from typing import Final

from alembic import context, op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

#: A new table and nothing else (bench/dataset.py, ``keeps_loaded_data``).
KEEPS_LOADED_DATA: Final = True


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS cache_repairs (
            cache text NOT NULL,
            workspace text NOT NULL,
            contact_id uuid NOT NULL,
            version bigint NOT NULL CHECK (version > 0),
            recorded_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (cache, workspace, contact_id)
        )
        """
    )
    reader = context.get_x_argument(as_dictionary=True).get("reader_role", "contacts_reader")
    op.execute(f'GRANT SELECT ON cache_repairs TO "{reader}"')


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS cache_repairs")
