"""Contacts read model, the inbox of processed events, and the query API's SELECT-only role.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import context, op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


# Every index covers live contacts only (deleted ones are tombstones nobody lists or searches).
LIVE_INDEXES = (
    # One live contact per canonical primary email (docs/architecture.md §4).
    "CREATE UNIQUE INDEX contacts_live_email_key ON contacts (email_key) WHERE alive",
    # Keyset pagination: (sort key, id), the id as the unique tie-breaker.
    "CREATE INDEX contacts_live_created ON contacts (created_at, id) WHERE alive",
    "CREATE INDEX contacts_live_last_name ON contacts (last_name_key, id) WHERE alive",
    # Filters (email=, tag=) and case-insensitive prefix search (q=).
    "CREATE INDEX contacts_live_email_keys ON contacts USING gin (email_keys) WHERE alive",
    "CREATE INDEX contacts_live_tags ON contacts USING gin (tags) WHERE alive",
    "CREATE INDEX contacts_live_first_prefix ON contacts (lower(first_name) text_pattern_ops)"
    " WHERE alive",
    "CREATE INDEX contacts_live_last_prefix ON contacts (last_name_key text_pattern_ops)"
    " WHERE alive",
    "CREATE INDEX contacts_live_email_prefix ON contacts (email_key text_pattern_ops) WHERE alive",
)


def upgrade() -> None:
    # Lengths are the limits of contacts_domain.limits when this revision was written; a
    # migration is frozen, and a test checks the live schema against the current limits.
    op.execute(
        """
        CREATE TABLE contacts (
            id uuid PRIMARY KEY,
            first_name varchar(100),
            last_name varchar(100),
            emails jsonb NOT NULL DEFAULT '[]',
            phones jsonb NOT NULL DEFAULT '[]',
            company varchar(200),
            job_title varchar(200),
            addresses jsonb NOT NULL DEFAULT '[]',
            birthday date,
            notes varchar(5000),
            tags text[] NOT NULL DEFAULT '{}',
            email varchar(254),
            email_key varchar(254),
            email_keys text[] NOT NULL DEFAULT '{}',
            phone varchar(16),
            last_name_key text GENERATED ALWAYS AS (lower(coalesce(last_name, ''))) STORED,
            version bigint NOT NULL DEFAULT 0,
            alive boolean NOT NULL DEFAULT false,
            created_at timestamptz,
            updated_at timestamptz,
            deleted_at timestamptz,
            -- Keyset pages on (created_at, id) would skip a visible row without created_at.
            CONSTRAINT contacts_alive_has_created_at CHECK (NOT alive OR created_at IS NOT NULL)
        )
        """
    )
    for index in LIVE_INDEXES:
        op.execute(index)
    op.execute(
        """
        CREATE TABLE processed_events (
            event_id uuid PRIMARY KEY,
            operation_id uuid NOT NULL,
            contact_id uuid NOT NULL,
            event_type text NOT NULL,
            sequence text NOT NULL,
            -- What the event asked for, so a late event can be put in its place and the
            -- contact's history applied again in order.
            data jsonb NOT NULL DEFAULT '{}',
            expected_version bigint,
            status text NOT NULL CHECK (status IN ('applied', 'rejected')),
            reason text,
            version bigint,
            processed_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE UNIQUE INDEX processed_events_operation ON processed_events (operation_id)")
    op.execute("CREATE INDEX processed_events_processed_at ON processed_events (processed_at)")
    op.execute(
        "CREATE INDEX processed_events_contact_sequence ON processed_events (contact_id, sequence)"
    )

    reader = context.get_x_argument(as_dictionary=True).get("reader_role", "contacts_reader")
    op.execute(
        f"""
        DO $$ BEGIN
            CREATE ROLE "{reader}" LOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- roles are cluster-wide: another database (or a concurrent run) made it
        END $$
        """
    )
    op.execute(f'GRANT USAGE ON SCHEMA public TO "{reader}"')
    op.execute(f'GRANT SELECT ON contacts, processed_events TO "{reader}"')


def downgrade() -> None:
    op.execute("DROP TABLE processed_events")
    op.execute("DROP TABLE contacts")
