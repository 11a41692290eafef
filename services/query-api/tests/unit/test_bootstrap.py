"""The composition root (``query_api.bootstrap``): what it builds, that building connects to
nothing, and that it is the only module of the service naming a concrete adapter."""

from __future__ import annotations

import ast
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from contacts_http.rate_limits import RateLimitSettings
from query_api import bootstrap
from query_api.entrypoints.app import create_app
from query_api.service_layer.ports import CacheUnavailable
from query_api.settings import Settings
from support.auth import TEST_AUTH, authorized

SRC = Path(bootstrap.__file__).parent
#: Modules that only the composition root and the adapters may import.
CONCRETE = ("query_api.adapters", "redis", "sqlalchemy", "boto3", "psycopg2")


@pytest.fixture
def refused_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def unreachable(refused_port: int) -> Iterator[bootstrap.Ports]:
    """Real ports whose PostgreSQL and Redis refuse connections, with a breaker opening after
    one failure."""
    settings = Settings(
        database_url=f"postgresql+psycopg2://reader@127.0.0.1:{refused_port}/contacts",
        redis_url=f"redis://127.0.0.1:{refused_port}/0",
        redis_breaker_failures=1,
        redis_breaker_reset_s=60.0,
    )
    ports = bootstrap.build_ports(settings)
    yield ports
    ports.close()


def test_building_the_real_ports_connects_to_nothing(unreachable: bootstrap.Ports) -> None:
    # Built against servers that refuse connections: only using a port reaches them.
    with pytest.raises(Exception, match="refused"):
        unreachable.required_checks["postgresql"]()
    with pytest.raises(Exception, match="refused"):
        unreachable.optional_checks["redis"]()


def test_every_redis_port_shares_one_circuit_breaker(unreachable: bootstrap.Ports) -> None:
    contact_id = "0190b6a4-0000-7000-8000-000000000001"
    with pytest.raises(CacheUnavailable, match="Redis unavailable"):
        unreachable.cache.get("default", contact_id)
    # The cache's failure opened the one circuit: the other Redis ports are refused at once.
    with pytest.raises(CacheUnavailable, match="circuit is open"):
        unreachable.statuses.get("default", contact_id)
    with pytest.raises(CacheUnavailable, match="circuit is open"):
        unreachable.import_reports.get("default", contact_id)


def test_an_injected_port_replaces_the_real_one_and_unknown_names_are_refused(
    contacts, refused_port: int
) -> None:
    settings = Settings(redis_url=f"redis://127.0.0.1:{refused_port}/0")
    ports = bootstrap.build_ports(settings, contacts=contacts)
    try:
        assert ports.contacts is contacts
        assert ports.cache is not None
    finally:
        ports.close()
    with pytest.raises(TypeError, match="unknown ports: cahce"):
        bootstrap.build_ports(settings, cahce=object())


def test_two_apps_serve_from_their_own_ports(contacts, cache, make_record) -> None:
    # The views are module-level functions registered by each app's blueprint factories: an
    # app must answer from the ports it was built with, not from the first app's.
    first, second = make_record(version=1), make_record(version=2)
    other_contacts, other_cache = type(contacts)(), type(cache)()
    contacts.add(first)
    other_contacts.add(second)
    settings = Settings(auth=TEST_AUTH, rate_limits=RateLimitSettings(enabled=False))
    one = authorized(create_app(settings, contacts=contacts, cache=cache))
    two = authorized(create_app(settings, contacts=other_contacts, cache=other_cache))
    try:
        a, b = one.test_client(), two.test_client()
        assert a.get(f"/v1/contacts/{first.contact_id}").headers["ETag"] == '"1"'
        assert a.get(f"/v1/contacts/{second.contact_id}").status_code == 404
        assert b.get(f"/v1/contacts/{second.contact_id}").headers["ETag"] == '"2"'
        assert b.get(f"/v1/contacts/{first.contact_id}").status_code == 404
    finally:
        for app in (one, two):
            app.extensions["query_api"].ports.close()


def test_apps_with_the_same_token_secret_read_each_others_cursors_and_others_refuse_them(
    contacts, make_record, caplog
) -> None:
    # Two processes (gunicorn workers, replicas) must share QUERY_TOKEN_SECRET; another
    # secret refuses every cursor like garbage; none at all works but warns at start-up.
    for _ in range(3):
        contacts.add(make_record())
    base = Settings(auth=TEST_AUTH, rate_limits=RateLimitSettings(enabled=False))
    secrets = ("s" * 32, "s" * 32, "t" * 32, "")
    with caplog.at_level("WARNING"):
        apps = [
            authorized(
                create_app(base.model_copy(update={"token_secret": secret}), contacts=contacts)
            )
            for secret in secrets
        ]
    try:
        issuer, twin, stranger, unset = (app.test_client() for app in apps)
        cursor = issuer.get("/v1/contacts?limit=1").get_json()["next_cursor"]

        assert twin.get(f"/v1/contacts?limit=1&cursor={cursor}").status_code == 200
        refused = stranger.get(f"/v1/contacts?limit=1&cursor={cursor}")
        garbage = stranger.get("/v1/contacts?limit=1&cursor=bm90LWN1cnNvcg")
        assert refused.status_code == garbage.status_code == 400
        assert refused.get_json() == garbage.get_json()
        assert unset.get(f"/v1/contacts?limit=1&cursor={cursor}").status_code == 400
        warnings = [
            r.getMessage() for r in caplog.records if "QUERY_TOKEN_SECRET" in r.getMessage()
        ]
        assert len(warnings) == 1
    finally:
        for app in apps:
            app.extensions["query_api"].ports.close()


def _imports(path: Path) -> Iterator[str]:
    """Every module ``path`` imports, at run time or for type checking only."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def test_only_the_composition_root_names_concrete_adapters() -> None:
    offenders = {
        str(path.relative_to(SRC)): name
        for path in SRC.rglob("*.py")
        if path.parent.name != "adapters" and path.name != "bootstrap.py"
        for name in _imports(path)
        if name.split(".")[0] in CONCRETE or name.startswith(CONCRETE[0])
    }
    assert offenders == {}


def test_the_service_layer_imports_form_no_cycle() -> None:
    package = "query_api.service_layer"
    modules = {p.stem: p for p in (SRC / "service_layer").glob("*.py") if p.stem != "__init__"}
    edges = {
        name: {
            other
            for imported in _imports(path)
            for other in modules
            if imported == f"{package}.{other}" or imported.startswith(f"{package}.{other}.")
        }
        - {name}
        for name, path in modules.items()
    }
    assert edges["ports"] <= {"listing", "records"}
    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        assert name not in visiting, f"import cycle: {' -> '.join([*visiting, name])}"
        if name in done:
            return
        visiting.append(name)
        for other in edges[name]:
            visit(other)
        visiting.pop()
        done.add(name)

    for name in modules:
        visit(name)
