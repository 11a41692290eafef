"""SQLAlchemy Core descriptions of the tables the query API reads.

The contact worker owns the schema (services/contact-worker/migrations); these mirror only the
columns read here. Every table is keyed by its workspace first (migration 0005,
docs/architecture.md §10). Describing tables opens no connection.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Date, DateTime, MetaData, String, Table, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

metadata = MetaData()

contacts = Table(
    "contacts",
    metadata,
    Column("workspace", Text, primary_key=True),
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("first_name", String),
    Column("last_name", String),
    Column("emails", JSONB, nullable=False),
    Column("phones", JSONB, nullable=False),
    Column("company", String),
    Column("job_title", String),
    Column("addresses", JSONB, nullable=False),
    Column("birthday", Date),
    Column("notes", String),
    Column("tags", ARRAY(Text), nullable=False),
    Column("email_key", String),
    Column("email_keys", ARRAY(Text), nullable=False),
    Column("last_name_key", Text, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("alive", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
)

processed_events = Table(
    "processed_events",
    metadata,
    Column("workspace", Text, primary_key=True),
    Column("event_id", UUID(as_uuid=False), primary_key=True),
    Column("operation_id", UUID(as_uuid=False), nullable=False),
    Column("contact_id", UUID(as_uuid=False), nullable=False),
    Column("status", Text, nullable=False),
    Column("reason", Text),
    Column("version", BigInteger),
    Column("result", Text),
    Column("import_id", UUID(as_uuid=False)),
    Column("processed_at", DateTime(timezone=True), nullable=False),
)
