"""The migrated schema keeps the contracts the code relies on."""

from __future__ import annotations

import sqlalchemy as sa

from contacts_domain import limits


def columns(database_url: str) -> dict[str, int | None]:
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT column_name, character_maximum_length FROM information_schema.columns "
                "WHERE table_name = 'contacts'"
            )
        ).all()
    engine.dispose()
    return {name: length for name, length in rows}


def test_text_columns_have_the_domain_length_limits(database_url: str) -> None:
    """One table of limits (contacts_domain.limits) for API schemas and database columns."""
    found = columns(database_url)
    for name, length in limits.TEXT_COLUMNS.items():
        assert found[name] == length, name
    assert found["email"] == limits.EMAIL_MAX
    assert found["phone"] == limits.PHONE_MAX


def test_query_role_can_only_select(reader_database_url: str) -> None:
    engine = sa.create_engine(reader_database_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM contacts")).scalar_one() >= 0
        privileges = conn.execute(
            sa.text(
                "SELECT DISTINCT privilege_type FROM information_schema.role_table_grants "
                "WHERE grantee = current_user AND table_name IN ('contacts', 'processed_events')"
            )
        ).scalars()
        assert set(privileges) == {"SELECT"}
    engine.dispose()
