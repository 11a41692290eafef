"""The gunicorn hooks of multi-process metrics: a private samples directory made before the
workers fork, aggregated by ``/metrics``, a dead worker's live gauges dropped, removed at exit."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client import Counter, Gauge, values

from contacts_http import gunicorn_hooks
from contacts_telemetry.metrics import MULTIPROC_ENV, MetricsRegistry


@pytest.fixture
def single_process_after(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    yield
    os.environ.pop(MULTIPROC_ENV, None)
    values.ValueClass = values.get_value_class()  # back to in-process values


@pytest.mark.usefixtures("single_process_after")
def test_samples_directory_lifecycle() -> None:
    gunicorn_hooks.on_starting("test-api")(SimpleNamespace())
    path = Path(os.environ[MULTIPROC_ENV])
    assert path.is_dir()
    assert list(path.iterdir()) == []  # empty at start

    registry = MetricsRegistry()
    Counter("served_total", "Served.", registry=registry.registry).inc(2)
    live = Gauge("busy", "Busy.", multiprocess_mode="livesum", registry=registry.registry)
    live.set(1)
    assert b"served_total 2.0" in registry.render()  # read back from the files
    assert any(path.glob(f"gauge_livesum_{os.getpid()}.db"))

    gunicorn_hooks.child_exit(SimpleNamespace(), SimpleNamespace(pid=os.getpid()))
    assert not any(path.glob(f"gauge_livesum_{os.getpid()}.db"))  # live gauges dropped
    assert any(path.glob("counter_*.db"))  # counters kept

    gunicorn_hooks.on_exit(SimpleNamespace())
    assert not path.exists()


def test_logconfig_renders_every_logger_as_json() -> None:
    config = gunicorn_hooks.logconfig("test-api", "info")
    assert config["root"] == {"level": "INFO", "handlers": ["json"]}
    assert config["formatters"]["json"]["service"] == "test-api"
    for name in ("gunicorn.error", "gunicorn.access"):
        assert config["loggers"][name]["propagate"] is True
    assert "%(U)s" in gunicorn_hooks.ACCESS_LOG_FORMAT  # the path, never the query string
    assert "%(r)s" not in gunicorn_hooks.ACCESS_LOG_FORMAT
    assert "%(q)s" not in gunicorn_hooks.ACCESS_LOG_FORMAT
