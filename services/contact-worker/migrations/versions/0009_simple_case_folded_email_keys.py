"""Email keys by simple case folding: ``contacts.email_key`` and ``email_keys`` recomputed.

Revision ID: 0009
Revises: 0008

Until this revision the worker keyed an email by ``str.casefold()``, Unicode *full* case
folding, whose expansions (ß → ss, ﬁ → fi, İ → i̇) made different mailboxes one:
``straße@example.com`` and ``strasse@example.com`` got one key, so creating the second was
rejected ``email_conflict`` and an upsert of one overwrote the other's contact. The worker now
keys an email by *simple* case folding (``contacts_domain.values.email_key``: one code point to
one code point, CaseFolding.txt statuses C and S). This revision recomputes the stored keys of
the rows written before it with that rule: ``email_key``, the key of the primary email (NULL
without one), and ``email_keys``, the keys of all emails in their order, as the worker's
``sql_batch.contact_row`` writes them.

For ASCII the two rules agree (both lower-case), so only rows whose ``emails`` hold a
non-ASCII character are read, and of those only the ones whose keys differ are written. The
walk goes over the primary key ``(workspace, id)`` ``BATCH`` rows at a time (one short
statement each, autocommitted), so a table of 1,000,000 rows is never loaded at once and
writers keep going. Each update is guarded by the emails it was computed from: a row that a
writer changed meanwhile is read again and recomputed.

No update can break ``contacts_ws_live_email_key`` (unique ``(workspace, email_key) WHERE
alive``), even half-way through: full folding of a simple fold is the full fold
(``casefold(s(x)) == casefold(x)`` for every code point), so two emails whose new keys are
equal already had equal old keys, which two live contacts of a workspace never have; and a
row's new key cannot equal another row's old key for the same reason. The new key only splits
old ones.

What the previous release writes after the walk passed a row keeps its full-folded keys until
the new release writes that contact again; the deploy starts the new release right after the
migration, as for every revision. Contacts the old rule already merged (one overwritten by an
upsert of the other's address) stay as they are: the data of the other address is gone.

Downgrade recomputes the keys with ``str.casefold()``, the previous release's rule. It fails,
naming the workspace and contact id, when two live contacts of a workspace now hold emails
that full folding makes one (``straße@`` and ``strasse@``): the previous release cannot store
both. Delete or change one of them and run the downgrade again; it resumes (rows already
folded are skipped).

The bench's generated emails are ASCII: a loaded data set is migrated (one walk, nothing
written), not reloaded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

#: It recomputes two columns from each row's own emails by the rule the current code writes
#: them with, so a loaded data set after it equals a fresh load (bench/dataset.py,
#: ``keeps_loaded_data``; the fingerprint's sample rows, computed by the current code, still
#: change if a generated email ever folds differently).
KEEPS_LOADED_DATA: Final = True

#: Primary keys per batch of the walk.
BATCH: Final = 5_000
#: Bound on the wait for each row lock an update takes.
LOCK_TIMEOUT: Final = "5s"
#: Reads and updates of one row before the walk gives up on a row writers keep changing.
ATTEMPTS: Final = 5

#: The last primary key of the next batch, or no row when fewer than ``BATCH`` are left.
NEXT_BOUND: Final = sa.text(
    "SELECT workspace, id::text FROM contacts WHERE (workspace, id) > (:ws, CAST(:id AS uuid))"
    " ORDER BY workspace, id OFFSET :skip LIMIT 1"
).bindparams(skip=BATCH - 1)
#: A row's emails hold a non-ASCII character exactly when its UTF-8 text is longer in bytes
#: than in characters.
_NON_ASCII_IN: Final = (
    "SELECT workspace, id::text, emails::text, email_key, email_keys FROM contacts"
    " WHERE (workspace, id) > (:ws, CAST(:id AS uuid)) {upper}"
    " AND octet_length(emails::text) <> length(emails::text)"
)
NON_ASCII_BETWEEN: Final = sa.text(
    _NON_ASCII_IN.format(upper="AND (workspace, id) <= (:hi_ws, CAST(:hi_id AS uuid))")
)
NON_ASCII_AFTER: Final = sa.text(_NON_ASCII_IN.format(upper=""))
ROW: Final = sa.text(
    "SELECT workspace, id::text, emails::text, email_key, email_keys FROM contacts"
    " WHERE workspace = :ws AND id = CAST(:id AS uuid)"
)
SET_KEYS: Final = sa.text(
    "UPDATE contacts SET email_key = :key, email_keys = CAST(:keys AS text[])"
    " WHERE workspace = :ws AND id = CAST(:id AS uuid) AND emails::text = :emails"
)
#: Before every workspace (ids are slugs of at least 2 characters) and every id.
START: Final = ("", "00000000-0000-0000-0000-000000000000")


def simple_case_fold(value: str) -> str:
    """``contacts_domain.values.email_key`` as of this revision, frozen here so the migration
    keeps meaning what it did when the code moves on: Unicode simple case folding
    (CaseFolding.txt statuses C and S), per code point its ``casefold()`` when that is one
    code point, else its ``lower()`` when that is one, else the code point itself; as of the
    Unicode version of the running Python's ``unicodedata``."""
    folded = []
    for char in value:
        full = char.casefold()
        if len(full) != 1:
            lowered = char.lower()
            full = lowered if len(lowered) == 1 else char
        folded.append(full)
    return "".join(folded)


def upgrade() -> None:
    _walk(simple_case_fold)


def downgrade() -> None:
    _walk(str.casefold)


def _walk(fold: Callable[[str], str]) -> None:
    """Recompute the email keys of every row with a non-ASCII email by ``fold``, ``BATCH``
    primary keys at a time: each batch starts after the last key of the one before, so none
    rescans done rows."""
    with op.get_context().autocommit_block():
        bind = op.get_bind()
        bind.execute(sa.text(f"SET lock_timeout = '{LOCK_TIMEOUT}'"))
        ws, after = START
        while True:
            bound = bind.execute(NEXT_BOUND, {"ws": ws, "id": after}).first()
            params = {"ws": ws, "id": after}
            if bound is None:
                rows = bind.execute(NON_ASCII_AFTER, params).all()
            else:
                params.update(hi_ws=bound[0], hi_id=bound[1])
                rows = bind.execute(NON_ASCII_BETWEEN, params).all()
            for row in rows:
                _refold(bind, tuple(row), fold)
            if bound is None:
                break
            ws, after = bound
        bind.execute(sa.text("RESET lock_timeout"))


def _keys(emails_text: str, fold: Callable[[str], str]) -> tuple[str | None, list[str]]:
    """``(email_key, email_keys)`` of a row whose ``emails`` column reads ``emails_text``."""
    emails: list[dict[str, Any]] = json.loads(emails_text) or []
    primary = next((str(e["value"]) for e in emails if e.get("primary")), None)
    return (fold(primary) if primary else None), [fold(str(e["value"])) for e in emails]


def _refold(bind: sa.Connection, row: tuple[Any, ...], fold: Callable[[str], str]) -> None:
    """Write the keys ``fold`` gives the row ``(workspace, id, emails, email_key, email_keys)``
    if they differ, reading the row again while a writer changes its emails meanwhile.

    Raises ``RuntimeError`` after ``ATTEMPTS`` tries, or when the keys collide with another
    live contact's (only a downgrade can: full folding merges what simple folding keeps
    apart), naming the workspace and contact id, never the email."""
    for _ in range(ATTEMPTS):
        ws, contact_id, emails, old_key, old_keys = row
        key, keys = _keys(emails, fold)
        if (key, keys) == (old_key, list(old_keys or [])):
            return
        params = {"ws": ws, "id": contact_id, "emails": emails, "key": key, "keys": keys}
        try:
            if bind.execute(SET_KEYS, params).rowcount == 1:
                return
        except sa.exc.IntegrityError:
            raise RuntimeError(
                f"Contact {contact_id} of workspace {ws!r} holds an email that another live"
                " contact of the workspace holds too once fully case-folded (ß = ss): the"
                " previous release cannot store both. Delete or change one, then run again."
            ) from None
        current = bind.execute(ROW, {"ws": ws, "id": contact_id}).first()
        if current is None:
            return
        row = tuple(current)
    raise RuntimeError(f"Contact {contact_id} of workspace {ws!r} kept changing: run again.")
