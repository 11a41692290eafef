"""docker-compose.yml: valid against the Compose Specification, every service the code needs is
there and wired with the environment variable names the settings classes read."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

from command_api.settings import Settings as CommandSettings
from contact_worker.settings import Settings as WorkerSettings
from contacts_infra.settings import EnvSettings
from query_api.settings import Settings as QuerySettings
from support.deployment import ROOT, SERVICES, load_yaml, module_env_names, settings_env_names

COMPOSE = load_yaml(ROOT / "docker-compose.yml")

#: Test-only fault injection of the worker: never set in a deployment.
NOT_DEPLOYED = {
    "WORKER_FAULT_DELAY_S",
    "WORKER_FAULT_DELAY_PREFIX",
    "WORKER_FAULT_DELAY_AFTER_COMMIT",
    "WORKER_FAULT_HOLD_LOCK",
}


def compose_schema_path() -> Path | None:
    """../shared/data/schemas/compose-spec.json next to the repository (CI lays shared/ there),
    or where CONTACTS_SHARED_DIR points."""
    candidates = [ROOT.parent / "shared", ROOT / ".." / "shared"]
    if os.environ.get("CONTACTS_SHARED_DIR"):
        candidates.insert(0, Path(os.environ["CONTACTS_SHARED_DIR"]))
    for shared in candidates:
        path = shared / "data" / "schemas" / "compose-spec.json"
        if path.is_file():
            return path.resolve()
    return None


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    path = compose_schema_path()
    if path is None:
        pytest.skip("shared/data/schemas/compose-spec.json is not beside the repository")
    schema = json.loads(path.read_text())
    # The file names draft 07 ("https://json-schema.org/draft-07/schema", without the "#").
    errors = sorted(
        jsonschema.Draft7Validator(schema).iter_errors(COMPOSE), key=lambda e: e.json_path
    )
    assert not errors, "\n".join(f"{e.json_path}: {e.message}" for e in errors)


def test_every_service_of_the_stack_is_there() -> None:
    assert set(COMPOSE["services"]) == {
        "postgres",
        "redis",
        "localstack",
        "sqs-init",
        "migrate",
        "command-api",
        "query-api",
        "worker",
    }


@pytest.mark.parametrize(
    ("service", "settings"),
    [
        ("command-api", CommandSettings),
        ("query-api", QuerySettings),
        ("worker", WorkerSettings),
        ("migrate", WorkerSettings),
        ("sqs-init", WorkerSettings),
    ],
)
def test_services_get_every_variable_their_settings_read(
    service: str, settings: type[EnvSettings]
) -> None:
    # The APIs' settings nest the AUTH_* and RATE_LIMIT_* variables of contacts_http.
    needed = settings_env_names(settings) - NOT_DEPLOYED
    given = set(COMPOSE["services"][service]["environment"])
    assert needed <= given, f"{service} lacks {sorted(needed - given)}"
    assert needed, "no variable found: the settings module changed shape"


def test_command_api_gets_its_gunicorn_settings() -> None:
    gunicorn_conf = SERVICES / "command-api/src/command_api/entrypoints/gunicorn_conf.py"
    given = set(COMPOSE["services"]["command-api"]["environment"])
    assert module_env_names(gunicorn_conf) <= given


def test_query_api_gets_its_gunicorn_settings() -> None:
    gunicorn_conf = SERVICES / "query-api/src/query_api/entrypoints/gunicorn_conf.py"
    assert module_env_names(gunicorn_conf) <= set(COMPOSE["services"]["query-api"]["environment"])


def test_ports_are_those_of_make_up() -> None:
    env = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    published = {
        name: [port.rsplit(":", 1)[-1] for port in service.get("ports", [])]
        for name, service in COMPOSE["services"].items()
    }
    assert published["command-api"] == [env["COMMAND_API_PORT"]]
    assert published["query-api"] == [env["QUERY_API_PORT"]]
    assert published["localstack"] == [env["SQS_PORT"]]
    for service in COMPOSE["services"].values():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), "published on the loopback interface only"


def test_dependencies_wait_for_health_or_completion() -> None:
    services = COMPOSE["services"]
    for name in ("command-api", "query-api", "worker", "migrate", "sqs-init"):
        for dependency, condition in services[name]["depends_on"].items():
            expected = "service_healthy" if "healthcheck" in services[dependency] else None
            if dependency in {"migrate", "sqs-init"}:
                expected = "service_completed_successfully"
            assert condition == {"condition": expected}, (name, dependency)
    for name in ("postgres", "redis", "localstack"):
        assert "test" in services[name]["healthcheck"]


def test_queues_are_created_by_the_workers_own_command() -> None:
    hook = COMPOSE["services"]["sqs-init"]
    assert hook["command"] == ["contact-worker-admin", "create-queues"]
    assert hook["build"]["dockerfile"] == "services/contact-worker/Dockerfile"
    assert hook["environment"]["SQS_ENDPOINT_URL"] == "http://localstack:4566"


def test_application_containers_are_hardened() -> None:
    for name in ("sqs-init", "migrate", "command-api", "query-api", "worker"):
        service = COMPOSE["services"][name]
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert service["user"] == "10001:10001", name
        assert "no-new-privileges:true" in service["security_opt"], name


def test_each_api_gets_a_rate_limit_routes_value_of_its_own() -> None:
    # An API refuses an endpoint name that is not its own, so one shared value could only be
    # empty: .env has one variable per API, and compose gives each its own.
    services = COMPOSE["services"]
    assert services["command-api"]["environment"]["RATE_LIMIT_ROUTES"] == (
        "${COMMAND_RATE_LIMIT_ROUTES:-}"
    )
    assert services["query-api"]["environment"]["RATE_LIMIT_ROUTES"] == (
        "${QUERY_RATE_LIMIT_ROUTES:-}"
    )
    example = (ROOT / ".env.example").read_text().splitlines()
    assert {"COMMAND_RATE_LIMIT_ROUTES=", "QUERY_RATE_LIMIT_ROUTES="} <= set(example)
    assert not [line for line in example if line.startswith("RATE_LIMIT_ROUTES")]
