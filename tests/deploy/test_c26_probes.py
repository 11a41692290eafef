"""C26: liveness never touches PostgreSQL, Redis or SQS; readiness may, with short timeouts; the
worker's liveness proves it still consumes, without the database."""

from __future__ import annotations

import re

import pytest

from support.deployment import API_CHARTS, HELM, ROOT, kinds, load_yaml, render


@pytest.mark.parametrize("chart", API_CHARTS)
def test_c26_api_liveness_is_healthz_and_readiness_is_readyz(chart: str) -> None:
    (deployment,) = kinds(render(chart), "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    # /readyz bounds its own checks at 1 s; the probe waits a little longer, never minutes.
    assert container["readinessProbe"]["timeoutSeconds"] <= 5
    assert (
        container["livenessProbe"]["failureThreshold"] * container["livenessProbe"]["periodSeconds"]
        >= 30
    )


@pytest.mark.parametrize("chart", API_CHARTS)
def test_c26_no_liveness_probe_source_names_readyz(chart: str) -> None:
    source = (HELM / chart / "templates" / "deployment.yaml").read_text()
    for probe in ("livenessProbe", "startupProbe"):
        block = source[source.index(f"{probe}:") :].split("Probe:", 1)[1][:200]
        assert "/readyz" not in block, probe
        assert "/healthz" in block, probe


def test_c26_worker_liveness_is_the_heartbeat_check() -> None:
    (deployment,) = kinds(render("contact-worker"), "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    for probe in ("livenessProbe", "startupProbe"):
        assert container[probe]["exec"]["command"] == ["contact-worker-admin", "check-alive"]
    assert "readinessProbe" not in container


def test_c26_the_worker_check_reads_the_heartbeat_not_the_database() -> None:
    admin = (ROOT / "services/contact-worker/src/contact_worker/entrypoints/admin.py").read_text()
    branch = admin[admin.index('if args.command == "check-alive"') :]
    branch = branch[: branch.index("elif")]
    assert "check_alive(settings)" in branch
    check = admin[admin.index("def check_alive(") :]
    check = check[: check.index("\n\n\ndef ")]
    for code in (branch, check):
        assert not re.search(
            r"create_engine|database_url|redis|sqs_client|bootstrap", code, re.IGNORECASE
        )


def test_c26_images_healthchecks_are_liveness_only() -> None:
    for service, check in [
        ("command-api", "/healthz"),
        ("query-api", "/healthz"),
        ("contact-worker", "check-alive"),
    ]:
        dockerfile = (ROOT / "services" / service / "Dockerfile").read_text()
        healthcheck = dockerfile[dockerfile.index("HEALTHCHECK") :].split("\nCMD [", 1)[0]
        assert check in healthcheck, service
        assert "/readyz" not in healthcheck, service


def test_c26_compose_gates_on_health_of_dependencies_only() -> None:
    compose = load_yaml(ROOT / "docker-compose.yml")
    assert "/readyz" not in str(compose)
