"""The contacts read model in PostgreSQL (SQLAlchemy Core, psycopg2).

Every statement reads one workspace (``WHERE workspace = :ws``, docs/architecture.md §10), and
every list query is shaped to use a partial index ``WHERE alive`` of migrations 0005 and 0007,
each led by the workspace: keyset order on ``(workspace, created_at, id)`` or ``(workspace,
last_name_key, id)``, GIN on ``(workspace, email_keys)`` and ``(workspace, tags)``
(``btree_gin``) for ``@>``, covering ``text_pattern_ops`` b-trees after the workspace for the
three ``q`` prefixes (0007). Patterns are built
here with ``LIKE`` wildcards escaped, as literals, so the planner sees a constant prefix.

A ``q`` search takes one of two plans, chosen per request by ``search_plan`` from the counts
of ``prefix_counts_statement``:

- **walk**: the keyset walk of the sort index, filtering on the prefixes. It finds a page fast
  when many matches are *spread* along the sort order: every branch for ``created_at``, the
  first-name and email branches for ``last_name`` (they do not follow the last name). It is
  a disaster otherwise: for a rare prefix it reads most of the table (EXPLAIN at 1,000,000
  contacts: 870,000 rows removed, 580 ms), and sorted by last name it reads every entry before
  a last-name prefix's cluster (2.5 s, over the statement timeout, for ``q=bol``).
- **candidates**: the union of the three prefix-index range scans, then the other filters, the
  sort and the limit over those rows. Taken whenever the spread branches hold fewer than
  ``SPARSE_PREFIX_CAP`` matches each.

Without another filter, either plan chooses the page's ids from index entries alone
(``_search_page``) and reads only the page's rows from the table: the indexes are covering
(migration 0007; the prefix indexes hold ``id`` and both sort keys, the sort indexes the three
prefix columns). Before, the candidates plan read every candidate's row (~10 ms per 1,000) and
the walk every row it filtered out. The counts are index-only scans too.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Row,
    Select,
    bindparam,
    func,
    literal,
    or_,
    select,
    text,
    union,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy import tuple_ as row_value

from contacts_domain.contact import FIELDS
from contacts_domain.values import email_key
from contacts_infra.contact_rows import contact_fields
from query_api.adapters.sql_schema import contacts, processed_events
from query_api.service_layer.listing import ListRequest, Position, Sort
from query_api.service_layer.ports import ContactReadModel, ReadModelUnavailable
from query_api.service_layer.records import ContactRecord, Tombstone

#: Errors that mean "the database is not answering" (refused, dropped, timed out, pool empty),
#: as opposed to a bug in a query, which should fail loudly.
UNAVAILABLE_ERRORS = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)

#: Contacts read per statement by ``changed_since``, and the span of ``processed_at`` each of
#: its statements on the inbox covers.
CHANGED_BATCH = 500
CHANGED_SLICE = dt.timedelta(minutes=5)

#: Matches per prefix index below which a ``q`` search reads the prefix indexes first (see the
#: module docstring). A balance, measured at 1,000,000 contacts (bench/README.md): the sparse
#: plan fetches up to 3 × this many rows by primary key (~10 ms per 1,000), the dense plan
#: walks ~21 × (rows / this) sort-index entries for a page when the matches are spread along
#: the sort order (creation time), but much more when they cluster there (a last-name prefix
#: sorted by last name).
SPARSE_PREFIX_CAP = 1500

_COLUMNS = (
    contacts.c.id,
    *(contacts.c[name] for name in FIELDS),
    contacts.c.version,
    contacts.c.alive,
    contacts.c.created_at,
    contacts.c.updated_at,
    contacts.c.last_name_key,
)

#: The contact read of a cache miss (``lookup_statement``'s SELECT, with the workspace and id as
#: parameters $1 and $2) as a server-side prepared statement: PostgreSQL parses and plans it
#: once per connection instead of once per miss (bench/README.md: ~85 -> ~50 µs of a backend's
#: CPU per read), and the client sends a short ``EXECUTE`` on the pooled connection's psycopg2
#: cursor (``lookup_row``). SQLAlchemy's ``Connection.execute`` of the same ``EXECUTE`` cost
#: ~110 µs more of our CPU per miss (its connection object, execution context and result
#: wrapping), a ``select()`` built per call ~150 µs more again.
LOOKUP_NAME = "contact_lookup"
#: Names of the columns of a looked-up row, in order.
LOOKUP_COLUMNS = tuple(column.name for column in _COLUMNS)
PREPARE_LOOKUP = (
    f"PREPARE {LOOKUP_NAME}(text, uuid) AS SELECT "
    + ", ".join(LOOKUP_COLUMNS)
    + " FROM contacts WHERE workspace = $1 AND id = $2"
)
_EXECUTE_LOOKUP = f"EXECUTE {LOOKUP_NAME}(%s, %s)"
#: Key, in a pooled connection's ``info`` (which lives as long as its DBAPI connection), that
#: says the lookup is prepared on it.
_PREPARED = "query_api.contact_lookup_prepared"
_ALIVE = LOOKUP_COLUMNS.index("alive")
_VERSION = LOOKUP_COLUMNS.index("version")


@contextlib.contextmanager
def connection(engine: Engine) -> Iterator[Connection]:
    """A pooled connection; raises ``ReadModelUnavailable`` for the errors of an unreachable,
    slow or saturated database."""
    try:
        with engine.connect() as conn:
            yield conn
    except UNAVAILABLE_ERRORS as exc:
        raise ReadModelUnavailable(str(exc).splitlines()[0]) from exc


def lookup_row(dbapi_conn: Any, workspace: str, contact_id: str) -> tuple[Any, ...] | None:
    """The row (``LOOKUP_COLUMNS``; ``id`` a ``uuid.UUID``, as SQLAlchemy's psycopg2 dialect
    registers it on its connections) of contact ``contact_id`` of ``workspace``, visible or
    not, by ``EXECUTE`` of the prepared lookup (``PREPARE_LOOKUP``) on ``dbapi_conn``, a
    pooled DBAPI connection (``PoolProxiedConnection``), preparing it first on a connection
    that has not prepared it yet. Raises psycopg2's errors (a malformed id: ``DataError``)."""
    info = dbapi_conn.info
    cursor = dbapi_conn.cursor()
    try:
        if not info.get(_PREPARED):
            cursor.execute(PREPARE_LOOKUP)
            info[_PREPARED] = True
        cursor.execute(_EXECUTE_LOOKUP, (workspace, contact_id))
        return cast("tuple[Any, ...] | None", cursor.fetchone())
    finally:
        cursor.close()


def first_row(
    engine: Engine, read: Callable[[Any], tuple[Any, ...] | None]
) -> tuple[Any, ...] | None:
    """``read(dbapi_conn)`` (such as ``lookup_row``) on a pooled DBAPI connection, read again
    once on a fresh connection when the pooled one turns out dead (PostgreSQL restarted, an
    idle connection cut). The engine has no ``pool_pre_ping`` (a ``SELECT 1`` round trip
    before every read): a dead connection is found by the read itself, which then invalidates
    the whole pool as SQLAlchemy's ``Connection`` does, so the retry and later checkouts
    connect afresh. A read that fails to connect is not retried. Raises
    ``ReadModelUnavailable`` like ``connection``, and SQLAlchemy's ``DBAPIError`` subclasses
    (parameters hidden) for other database errors."""
    dbapi_error = engine.dialect.loaded_dbapi.Error
    for attempt in (1, 2):
        try:
            dbapi_conn = engine.raw_connection()
        except (*UNAVAILABLE_ERRORS, dbapi_error) as exc:  # pool timeout, connect failure
            raise ReadModelUnavailable(str(exc).splitlines()[0]) from exc
        try:
            return read(dbapi_conn)
        except dbapi_error as exc:
            lost = _invalidate_if_lost(engine, dbapi_conn, exc)
            if not (lost and attempt == 1):
                raise _wrapped(engine, exc, lost) from exc
        finally:
            dbapi_conn.close()
    raise AssertionError("unreachable")


def _invalidate_if_lost(engine: Engine, dbapi_conn: Any, exc: Any) -> bool:
    """Whether ``exc`` (a psycopg2 error of a read on ``dbapi_conn``) says the connection is
    lost; if so, it and every connection of the pool opened before it are invalidated, as
    SQLAlchemy's ``Connection._handle_dbapi_exception`` does."""
    if not engine.dialect.is_disconnect(exc, dbapi_conn.dbapi_connection, None):
        return False
    engine.pool._invalidate(dbapi_conn, exc)
    return True


def _wrapped(engine: Engine, exc: Exception, lost: bool) -> Exception:
    """What a read raises for psycopg2's ``exc``: ``ReadModelUnavailable`` for
    ``UNAVAILABLE_ERRORS``, else SQLAlchemy's wrapper (parameters hidden)."""
    wrapped = sa_exc.DBAPIError.instance(
        _EXECUTE_LOOKUP,
        None,
        exc,
        engine.dialect.loaded_dbapi.Error,
        hide_parameters=True,
        connection_invalidated=lost,
        dialect=engine.dialect,
    )
    if isinstance(wrapped, UNAVAILABLE_ERRORS):
        return ReadModelUnavailable(str(wrapped).splitlines()[0])
    return wrapped


class SqlContactReadModel(ContactReadModel):
    """``ContactReadModel`` over the ``contacts`` table."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, workspace: str, contact_id: str) -> ContactRecord | Tombstone | None:
        row = first_row(self._engine, lambda conn: lookup_row(conn, workspace, contact_id))
        if row is None:
            return None
        if not row[_ALIVE]:
            return Tombstone(str(row[0]), row[_VERSION])
        return record_of(dict(zip(LOOKUP_COLUMNS, row, strict=True)))

    def list(self, workspace: str, request: ListRequest, limit: int) -> list[ContactRecord]:
        with connection(self._engine) as conn:
            q = request.filters.q
            candidates = False
            if q is not None:
                counts = conn.execute(
                    _counts_template(SPARSE_PREFIX_CAP), search_params(workspace, q)
                ).one()
                candidates = search_plan(request.sort, tuple(counts)) == "candidates"
            statement, params = page_statement(workspace, request, limit, candidates=candidates)
            rows = conn.execute(statement, params).all()
        return [_record(row) for row in rows]

    def changed_since(self, seconds: float) -> Iterator[tuple[str, ContactRecord | Tombstone]]:
        """Reads ``processed_events`` by its ``processed_at`` index one ``CHANGED_SLICE`` of
        time at a time, and the contacts found, per workspace, in batches of
        ``CHANGED_BATCH`` by primary key, so every statement stays well within the statement
        timeout however long the look-back (up to a cache TTL, an hour, of events)."""
        with connection(self._engine) as conn:
            now = conn.execute(select(func.now())).scalar_one()
        slice_start = now - dt.timedelta(seconds=seconds)
        seen: set[tuple[str, str]] = set()
        while True:
            slice_end = slice_start + CHANGED_SLICE
            last = slice_end >= now  # the last slice is open-ended: nothing committed is missed
            with connection(self._engine) as conn:
                until = None if last else slice_end
                found = conn.execute(changed_ids_statement(slice_start, until))
                fresh: dict[str, list[str]] = {}
                for workspace, contact_id in found:
                    if (workspace, contact_id) not in seen:
                        seen.add((workspace, contact_id))
                        fresh.setdefault(workspace, []).append(str(contact_id))
            for workspace, ids in fresh.items():
                for state in self._states(workspace, ids):
                    yield workspace, state
            if last:
                return
            slice_start = slice_end

    def _states(self, workspace: str, ids: Sequence[str]) -> Iterator[ContactRecord | Tombstone]:
        """The current states of the contacts ``ids`` of ``workspace``, ``CHANGED_BATCH`` per
        statement."""
        for batch in range(0, len(ids), CHANGED_BATCH):
            with connection(self._engine) as conn:
                rows = conn.execute(
                    select(*_COLUMNS).where(
                        contacts.c.workspace == workspace,
                        contacts.c.id.in_(ids[batch : batch + CHANGED_BATCH]),
                    )
                ).all()
            for row in rows:
                yield _record(row) if row.alive else Tombstone(str(row.id), row.version)


def changed_ids_statement(since: dt.datetime, until: dt.datetime | None) -> Select[Any]:
    """The SELECT of ``(workspace, contact id)`` of the contacts, in every workspace, with an
    applied event in the worker's inbox processed from ``since`` until before ``until``
    (``None``: no end); ``processed_at`` is the start of the worker's transaction (exposed for
    EXPLAIN tests)."""
    t = processed_events
    statement = select(t.c.workspace, t.c.contact_id).where(
        t.c.processed_at >= since, t.c.status == "applied"
    )
    if until is not None:
        statement = statement.where(t.c.processed_at < until)
    return statement.distinct()


def lookup_statement(workspace: str, contact_id: str) -> Select[Any]:
    """The SELECT of one contact of ``workspace`` by id, visible or not (exposed for EXPLAIN
    tests); the API runs it as the prepared ``PREPARE_LOOKUP`` (``lookup_row``)."""
    return select(*_COLUMNS).where(contacts.c.workspace == workspace, contacts.c.id == contact_id)


def search_plan(sort: Sort, counts: tuple[int, int, int]) -> str:
    """``"walk"`` or ``"candidates"`` (module docstring) for a ``q`` search sorted by ``sort``,
    from the capped match counts of ``prefix_counts_statement`` (first name, last name,
    email)."""
    first, last, email = counts
    spread = (first, last, email) if sort.key == "created_at" else (first, email)
    return "walk" if max(spread) >= SPARSE_PREFIX_CAP else "candidates"


def prefix_counts_statement(workspace: str, q: str, cap: int = SPARSE_PREFIX_CAP) -> Select[Any]:
    """The SELECT of the numbers of live matches of ``q`` in ``workspace`` in the three prefix
    indexes (first name, last name, email: one row of three integers), each counted up to
    ``cap`` (so the statement reads at most 3 × ``cap`` index entries): ``_counts_template``
    with its values bound (exposed for EXPLAIN; the API runs the template itself).

    Each count walks its index in the index's own order after the workspace (``USING ~<~``,
    the ``text_pattern_ops`` ordering): without an order the planner took a bitmap scan of the
    first-name index, which reads every match before the LIMIT applies (75,000 entries and
    17 ms for ``bar`` at 1,000,000 contacts, against 5 ms in order).
    """
    return _counts_template(cap).params(search_params(workspace, q))


def search_params(workspace: str, q: str, after: Position | None = None) -> dict[str, Any]:
    """The values of the bind parameters of the search templates (``_counts_template``,
    ``_search_template``): ``workspace``, the ``LIKE`` patterns of ``q`` (``names_pattern``,
    ``email_pattern``) and, for a cursor page, ``after_key`` and ``after_id``."""
    params = position_params(workspace, after)
    params["names_pattern"] = escape_like(q) + "%"
    params["email_pattern"] = escape_like(email_key(q)) + "%"
    return params


@functools.cache
def _counts_template(cap: int) -> Select[Any]:
    """``prefix_counts_statement`` with bind parameters (``search_params``) for its values,
    built once: a search then costs no statement building and no cache key (SQLAlchemy finds
    the compiled form by the template's memoized key), ~0.6 ms of CPU less a request."""
    counts = [
        select(func.count())
        .select_from(
            select(literal(1))
            .where(contacts.c.workspace == bindparam("workspace"), contacts.c.alive, match)
            .order_by(text(f"{indexed} USING ~<~"))
            .limit(cap)
            .subquery()
        )
        .scalar_subquery()
        for indexed, match in zip(_PREFIX_INDEXED, _bound_prefix_matches(), strict=True)
    ]
    return select(*counts)


def _search_only(request: ListRequest) -> bool:
    """Whether ``request`` is a ``q`` search with no other filter (``_search_template``)."""
    filters = request.filters
    return filters.q is not None and filters.email_key is None and not filters.tags


def list_statement(
    workspace: str, request: ListRequest, limit: int, *, candidates: bool = False
) -> Select[Any]:
    """``page_statement`` with its parameters' values bound: the SELECT of one page of
    ``workspace`` (exposed for EXPLAIN tests)."""
    statement, params = page_statement(workspace, request, limit, candidates=candidates)
    return statement.params(params) if params else statement


def page_statement(
    workspace: str, request: ListRequest, limit: int, *, candidates: bool = False
) -> tuple[Select[Any], dict[str, Any]]:
    """The SELECT of one page of ``workspace`` and the values of its bind parameters.

    ``candidates`` (only with ``filters.q``): the candidates plan of the module docstring
    instead of the walk (``search_plan`` chooses). A search without another filter is
    ``_search_template`` (built once per shape) with ``search_params``: it chooses its page's
    ids from index entries first and reads only those rows. A list with no filter is
    ``_list_template`` (built once per shape too) with ``position_params``. Any other page is
    built for the request with its values inline (no parameters).
    """
    q = request.filters.q
    if q is not None and _search_only(request):
        template = _search_template(request.sort, request.after is not None, limit, candidates)
        return template, search_params(workspace, q, request.after)
    if _unfiltered(request):
        template = _list_template(request.sort, request.after is not None, limit)
        return template, position_params(workspace, request.after)
    return _filtered_statement(workspace, request, limit, candidates=candidates), {}


def _unfiltered(request: ListRequest) -> bool:
    """Whether ``request`` lists a workspace with no filter at all (``_list_template``)."""
    filters = request.filters
    return filters.q is None and filters.email_key is None and not filters.tags


def position_params(workspace: str, after: Position | None) -> dict[str, Any]:
    """The values of the bind parameters of ``_list_template``: ``workspace`` and, for a
    cursor page, ``after_key`` and ``after_id``."""
    params: dict[str, Any] = {"workspace": workspace}
    if after is not None:
        params["after_key"], params["after_id"] = after.key, after.contact_id
    return params


@functools.lru_cache(maxsize=512)
def _list_template(sort: Sort, after: bool, limit: int) -> Select[Any]:
    """The page of a list with no filter, its values bind parameters (``position_params``;
    ``after``: a cursor page), built once per shape as ``_search_template`` is: a page then
    costs no statement building and no cache key (~0.3 ms of CPU less a request,
    bench/README.md "Session 16: list page CPU"). The same SQL as ``_filtered_statement``
    builds for it, so the same plan: the keyset walk of the sort index."""
    key = contacts.c[_key_column(sort)]
    stmt = select(*_COLUMNS).where(contacts.c.workspace == bindparam("workspace"), contacts.c.alive)
    if after:
        cut_key = bindparam("after_key", type_=key.type)
        cut_id = bindparam("after_id", type_=contacts.c.id.type)
        stmt = stmt.where(_after(key, contacts.c.id, sort, cut_key, cut_id))
    return _ordered(stmt, sort, key, limit)


def _filtered_statement(
    workspace: str, request: ListRequest, limit: int, *, candidates: bool
) -> Select[Any]:
    """The page of a list without ``q``, or of a search with another filter (email, tags)."""
    sort = request.sort
    filters = request.filters
    key = contacts.c[_key_column(sort)]
    in_workspace = contacts.c.workspace == workspace
    stmt = select(*_COLUMNS).where(in_workspace, contacts.c.alive)
    if filters.email_key is not None:
        # An email matches a handful of contacts: read them from the GIN index first (a
        # MATERIALIZED CTE), then sort. Left to itself, the planner walked the sort index of a
        # 500,000-contact workspace, filtering every entry, to find the one match (EXPLAIN at
        # 1,000,000 contacts: 499,999 rows removed, 1.9 s; bench/README.md).
        emails = (
            select(contacts.c.id)
            .where(
                in_workspace,
                contacts.c.alive,
                contacts.c.email_keys.contains([filters.email_key]),
            )
            .cte("email_matches")
            .prefix_with("MATERIALIZED")
        )
        stmt = stmt.where(contacts.c.id.in_(select(emails.c.id)))
    if filters.tags:
        stmt = stmt.where(contacts.c.tags.contains(list(filters.tags)))
    if filters.q is not None:
        params = search_params(workspace, filters.q)
        matches = _prefix_matches(params["names_pattern"], params["email_pattern"])
        if candidates:
            fenced = _candidates(in_workspace, matches)
            stmt = stmt.where(contacts.c.id.in_(select(fenced.c.id)))
        else:
            stmt = stmt.where(or_(*matches))
    if request.after is not None:
        after = request.after
        stmt = stmt.where(
            _after(
                key,
                contacts.c.id,
                sort,
                literal(after.key, key.type),
                literal(after.contact_id, contacts.c.id.type),
            )
        )
    return _ordered(stmt, sort, key, limit)


@functools.lru_cache(maxsize=512)
def _search_template(sort: Sort, after: bool, limit: int, candidates: bool) -> Select[Any]:
    """The page of a ``q`` search with no other filter, its values bind parameters
    (``search_params``; ``after``: a cursor page), built once per shape as
    ``_counts_template`` is (~1 ms of CPU less a request).

    Its page's ids are chosen from index entries only (migration 0007), in a ``MATERIALIZED``
    CTE: the candidates' (``_candidates``), or the walk of the sort index, whose entries
    include the three prefix columns, filtered on the prefixes. The table is read only for
    the page's rows afterwards."""
    in_workspace = contacts.c.workspace == bindparam("workspace")
    matches = _bound_prefix_matches()
    if candidates:
        fenced = _candidates(in_workspace, matches)
        key, contact_id = fenced.c[_key_column(sort)], fenced.c.id
        page = select(contact_id)
    else:
        key, contact_id = contacts.c[_key_column(sort)], contacts.c.id
        page = select(contact_id).where(in_workspace, contacts.c.alive, or_(*matches))
    if after:
        cut_key = bindparam("after_key", type_=contacts.c[_key_column(sort)].type)
        cut_id = bindparam("after_id", type_=contacts.c.id.type)
        page = page.where(_after(key, contact_id, sort, cut_key, cut_id))
    ids = (
        _ordered(page, sort, key, limit, contact_id).cte("search_page").prefix_with("MATERIALIZED")
    )
    stmt = select(*_COLUMNS).where(
        in_workspace, contacts.c.alive, contacts.c.id.in_(select(ids.c.id))
    )
    return _ordered(stmt, sort, contacts.c[_key_column(sort)], limit)


def _key_column(sort: Sort) -> str:
    """The column of ``sort``'s key."""
    return "created_at" if sort.key == "created_at" else "last_name_key"


def _after(
    key: ColumnElement[Any],
    contact_id: ColumnElement[Any],
    sort: Sort,
    cut_key: ColumnElement[Any],
    cut_id: ColumnElement[Any],
) -> Any:
    """The keyset condition on ``(key, contact_id)`` past the cursor's ``(cut_key, cut_id)``
    in ``sort``'s direction."""
    here, cut = row_value(key, contact_id), row_value(cut_key, cut_id)
    return here < cut if sort.descending else here > cut


def _ordered(
    stmt: Select[Any],
    sort: Sort,
    key: ColumnElement[Any],
    limit: int,
    contact_id: ColumnElement[Any] = contacts.c.id,
) -> Select[Any]:
    """``stmt`` in ``sort``'s order on ``(key, contact_id)``, at most ``limit`` rows."""
    if sort.descending:
        return stmt.order_by(key.desc(), contact_id.desc()).limit(limit)
    return stmt.order_by(key.asc(), contact_id.asc()).limit(limit)


def _candidates(in_workspace: ColumnElement[bool], matches: Sequence[ColumnElement[bool]]) -> Any:
    """The CTE of the live rows matching one of ``matches`` (``_prefix_matches``: ``id``,
    ``created_at``, ``last_name_key``): the union of the three prefix-index range scans,
    index-only on the covering indexes of migration 0007. A CTE is an optimization fence: the
    planner reads the prefix indexes first, instead of walking the sort index with a hashed
    subplan."""
    matching = union(
        *(
            select(contacts.c.id, contacts.c.created_at, contacts.c.last_name_key).where(
                in_workspace, contacts.c.alive, m
            )
            for m in matches
        )
    )
    return matching.cte("prefix_candidates").prefix_with("MATERIALIZED")


#: The indexed expressions of the three prefix indexes, in ``_prefix_matches`` order.
_PREFIX_INDEXED = ("lower(contacts.first_name)", "contacts.last_name_key", "contacts.email_key")


def _bound_prefix_matches() -> tuple[ColumnElement[bool], ...]:
    """``_prefix_matches`` of the bind parameters ``names_pattern`` and ``email_pattern``."""
    return _prefix_matches(bindparam("names_pattern"), bindparam("email_pattern"))


def _prefix_matches(names: Any, email: Any) -> tuple[ColumnElement[bool], ...]:
    """The three prefix conditions, one per prefix index, of the ``LIKE`` patterns ``names``
    and ``email`` (``search_params``; strings or bind parameters)."""
    # Names compare through PostgreSQL's lower(), as the indexes do; the writer computed the
    # email key in Python (``values.email_key``, folded code point by code point), so the
    # pattern is folded by the same rule and a folded prefix is the prefix of a folded key.
    return (
        func.lower(contacts.c.first_name).like(func.lower(names), escape="\\"),
        contacts.c.last_name_key.like(func.lower(names), escape="\\"),
        contacts.c.email_key.like(email, escape="\\"),
    )


def escape_like(text: str) -> str:
    """Escape ``\\``, ``%`` and ``_`` so ``text`` matches literally in a ``LIKE`` pattern."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _record(row: Row[Any]) -> ContactRecord:
    return record_of(cast("Mapping[str, Any]", row._mapping))


def record_of(row: Mapping[str, Any]) -> ContactRecord:
    """The ``ContactRecord`` of a ``contacts`` row (a mapping of its columns)."""
    return ContactRecord(
        contact_id=str(row["id"]),
        fields=contact_fields(row),
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        last_name_key=row["last_name_key"],
    )
