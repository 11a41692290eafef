"""The Helm charts: values schemas, every value documented, helm lint, and what the rendered
manifests must hold (hardened pods, resources, policies, IRSA, optional parts off by default)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from support.deployment import (
    API_CHARTS,
    CHARTS,
    HELM,
    chart_values,
    kinds,
    lint,
    load_yaml,
    pod_specs,
    render,
    values_files,
)

VALUES_FILES = [(chart, path) for chart in CHARTS for path in values_files(chart)]


def _id(item: tuple[str, Path]) -> str:
    return f"{item[0]}/{item[1].name}"


@pytest.mark.parametrize("case", VALUES_FILES, ids=[_id(c) for c in VALUES_FILES])
def test_values_files_are_valid_against_the_schema(case: tuple[str, Path]) -> None:
    chart, path = case
    schema = json.loads((HELM / chart / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    values = chart_values(chart, load_yaml(path) or {})
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(values))
    assert not errors, [f"{e.json_path}: {e.message}" for e in errors]


@pytest.mark.parametrize("chart", CHARTS)
def test_the_schema_refuses_what_would_weaken_the_pods(chart: str) -> None:
    schema = json.loads((HELM / chart / "values.schema.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    assert validator.is_valid(chart_values(chart))
    for bad in (
        {"containerSecurityContext": {"enabled": True, "readOnlyRootFilesystem": False}},
        {"containerSecurityContext": {"enabled": True, "allowPrivilegeEscalation": True}},
        {"podSecurityContext": {"enabled": True, "runAsNonRoot": False}},
        {"config": {"NOT_A_SETTING": "x"}},
        {"unknownTopLevelValue": 1},
    ):
        assert not validator.is_valid(chart_values(chart, bad)), bad


def _leaf_paths(value: Any, prefix: str = "") -> list[str]:
    if isinstance(value, dict) and value:
        return [p for k, v in value.items() for p in _leaf_paths(v, f"{prefix}{k}.")]
    return [prefix.rstrip(".")]


@pytest.mark.parametrize("chart", CHARTS)
def test_the_readme_lists_every_value(chart: str) -> None:
    readme = (HELM / chart / "README.md").read_text()
    listed = set(re.findall(r"^\| `([^`]+)` \|", readme, flags=re.MULTILINE))
    missing = [p for p in _leaf_paths(load_yaml(HELM / chart / "values.yaml")) if p not in listed]
    assert not missing, f"{chart}/README.md does not list {missing}"


@pytest.mark.parametrize("chart", CHARTS)
def test_charts_depend_on_the_library_from_the_repository(chart: str) -> None:
    meta = load_yaml(HELM / chart / "Chart.yaml")
    assert meta["apiVersion"] == "v2"
    assert meta["dependencies"] == [
        {"name": "contacts-common", "version": "0.1.0", "repository": "file://../contacts-common"}
    ]
    assert load_yaml(HELM / "contacts-common" / "Chart.yaml")["type"] == "library"


@pytest.mark.parametrize("case", VALUES_FILES, ids=[_id(c) for c in VALUES_FILES])
def test_helm_lint_strict_passes(case: tuple[str, Path]) -> None:
    chart, path = case
    assert lint(chart, None if path.name == "values.yaml" else path) == []


@pytest.mark.parametrize("case", VALUES_FILES, ids=[_id(c) for c in VALUES_FILES])
def test_rendered_pods_are_hardened(case: tuple[str, Path]) -> None:
    chart, path = case
    manifests = render(chart, load_yaml(path))
    specs = list(pod_specs(manifests))
    assert specs
    for name, spec in specs:
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        writable = {m["mountPath"] for c in spec["containers"] for m in c.get("volumeMounts", [])}
        assert writable == {"/tmp"}, name
        assert all("emptyDir" in v for v in spec["volumes"]), name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["privileged"] is False, name
            assert context["runAsNonRoot"] is True, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), name
            assert "memory" in resources["limits"], name


@pytest.mark.parametrize("chart", CHARTS)
def test_defaults_render_the_expected_resources(chart: str) -> None:
    manifests = render(chart)
    present = {m["kind"] for m in manifests}
    expected = {
        "ConfigMap",
        "Deployment",
        "ServiceAccount",
        "PodDisruptionBudget",
        "NetworkPolicy",
    }
    if chart in API_CHARTS:
        expected |= {"Service", "HorizontalPodAutoscaler"}
    else:
        expected |= {"Job", "Service"}  # the worker's Service has its metrics port only
    assert expected <= present
    # No secrets in values by default, optional parts off.
    assert not {"Secret", "Ingress", "ServiceMonitor", "ScaledObject"} & present


@pytest.mark.parametrize("chart", CHARTS)
def test_service_account_carries_the_irsa_role(chart: str) -> None:
    role = f"arn:aws:iam::123456789012:role/contacts-dev-{chart}"
    (account,) = kinds(render(chart, {"serviceAccount": {"roleArn": role}}), "ServiceAccount")
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == role
    (deployment,) = kinds(render(chart), "Deployment")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == chart


@pytest.mark.parametrize("chart", CHARTS)
def test_network_policy_allows_dns_and_the_dependencies_only(chart: str) -> None:
    (policy,) = kinds(
        render(chart, load_yaml(HELM / chart / "ci" / "default-values.yaml")), "NetworkPolicy"
    )
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    ports = sorted(p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"])
    expected = {
        "command-api": [53, 53, 443, 6379],
        "query-api": [53, 53, 5432, 6379],
        "contact-worker": [53, 53, 443, 5432, 6379],
    }[chart]
    assert ports == expected
    ingress = policy["spec"]["ingress"] or []
    ingress_ports = [p["port"] for rule in ingress for p in rule["ports"]]
    assert ingress_ports == (["http"] if chart in API_CHARTS else ["metrics"])


def test_worker_migrations_run_as_a_hook_before_install_and_upgrade() -> None:
    manifests = render("contact-worker", {"existingSecret": "contact-worker"})
    (job,) = kinds(manifests, "Job")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:2] == ["contact-worker-admin", "migrate"]
    # The chart's ServiceAccount does not exist yet when a pre-install hook runs.
    assert "serviceAccountName" not in job["spec"]["template"]["spec"]
    secret_ref = container["env"][0]["valueFrom"]["secretKeyRef"]
    assert secret_ref == {"name": "contact-worker", "key": "DATABASE_URL"}


def test_worker_migrations_get_a_hook_secret_when_the_url_is_in_values() -> None:
    values = load_yaml(HELM / "contact-worker" / "ci" / "keda-values.yaml")
    manifests = render("contact-worker", values)
    hook_secrets = [
        s
        for s in kinds(manifests, "Secret")
        if "helm.sh/hook" in s["metadata"].get("annotations", {})
    ]
    assert [s["metadata"]["name"] for s in hook_secrets] == ["contact-worker-migrations"]
    assert hook_secrets[0]["metadata"]["annotations"]["helm.sh/hook-weight"] == "-10"


def test_worker_scales_on_queue_depth_with_keda_only_when_asked() -> None:
    values = load_yaml(HELM / "contact-worker" / "ci" / "keda-values.yaml")
    manifests = render("contact-worker", values)
    (scaled,) = kinds(manifests, "ScaledObject")
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "aws-sqs-queue"
    assert trigger["metadata"]["queueURL"] == values["config"]["SQS_QUEUE_URL"]
    (auth,) = kinds(manifests, "TriggerAuthentication")
    assert auth["spec"]["podIdentity"] == {"provider": "aws", "identityOwner": "workload"}
    (deployment,) = kinds(manifests, "Deployment")
    assert "replicas" not in deployment["spec"], "KEDA's HPA owns the replica count"


@pytest.mark.parametrize("chart", API_CHARTS)
def test_apis_scale_on_cpu(chart: str) -> None:
    (hpa,) = kinds(render(chart), "HorizontalPodAutoscaler")
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    (deployment,) = kinds(render(chart), "Deployment")
    assert "replicas" not in deployment["spec"]


@pytest.mark.parametrize("chart", CHARTS)
def test_empty_aws_keys_select_the_irsa_credentials(chart: str) -> None:
    (deployment,) = kinds(render(chart), "Deployment")
    env = {
        e["name"]: e.get("value")
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    if chart == "query-api":
        assert "AWS_ACCESS_KEY_ID" not in env
    else:
        assert env["AWS_ACCESS_KEY_ID"] == ""
        assert env["AWS_SECRET_ACCESS_KEY"] == ""


def test_worker_metrics_port_is_served_scraped_and_allowed() -> None:
    manifests = render("contact-worker", {"metrics": {"serviceMonitor": {"enabled": True}}})
    (deployment,) = kinds(manifests, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["ports"] == [{"name": "metrics", "containerPort": 9100, "protocol": "TCP"}]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["WORKER_METRICS_PORT"] == "9100"
    (service,) = kinds(manifests, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    (monitor,) = kinds(manifests, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    (config,) = kinds(manifests, "ConfigMap")
    assert config["data"]["WORKER_METRICS_ADDR"] == "0.0.0.0"


@pytest.mark.parametrize(
    ("chart", "defaults", "override"),
    [
        ("command-api", {"AUTH_JWT_WORKSPACE_CLAIM": ""}, {"AUTH_JWT_WORKSPACE_CLAIM": "org_id"}),
        ("query-api", {"AUTH_JWT_WORKSPACE_CLAIM": ""}, {"AUTH_JWT_WORKSPACE_CLAIM": "sub"}),
        ("command-api", {}, {"RATE_LIMIT_WORKSPACE_DEFAULT": "50/second"}),
        ("query-api", {}, {"RATE_LIMIT_WORKSPACE_DEFAULT": "50/second"}),
        (
            "contact-worker",
            {"MAX_LIVE_CONTACTS_PER_WORKSPACE": "0"},
            {"MAX_LIVE_CONTACTS_PER_WORKSPACE": "250000"},
        ),
    ],
)
def test_the_workspace_settings_reach_the_config_map(
    chart: str, defaults: dict[str, str], override: dict[str, str]
) -> None:
    (config,) = kinds(render(chart), "ConfigMap")
    assert set(override) <= set(config["data"])
    assert {name: config["data"][name] for name in defaults} == defaults
    (changed,) = kinds(render(chart, {"config": override}), "ConfigMap")
    assert {name: changed["data"][name] for name in override} == override


def test_the_worker_schema_refuses_a_quota_that_is_no_count() -> None:
    validator = jsonschema.Draft7Validator(
        json.loads((HELM / "contact-worker" / "values.schema.json").read_text())
    )
    for good in ("0", "500000", 1000):
        quota = {"config": {"MAX_LIVE_CONTACTS_PER_WORKSPACE": good}}
        assert validator.is_valid(chart_values("contact-worker", quota)), good
    for bad in ("-1", "many", "", -5):
        quota = {"config": {"MAX_LIVE_CONTACTS_PER_WORKSPACE": bad}}
        assert not validator.is_valid(chart_values("contact-worker", quota)), bad


def test_the_worker_purges_old_inbox_payloads_daily() -> None:
    # Issue 16: a CronJob beside the change-feed purge drops the inbox's old event payloads.
    jobs = {j["metadata"]["name"]: j for j in kinds(render("contact-worker"), "CronJob")}
    inbox = jobs["contact-worker-inbox-purge"]
    pod = inbox["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["contact-worker-admin", "purge-inbox", "--older-than-days", "7"]
    assert pod["automountServiceAccountToken"] is False
    assert inbox["spec"]["concurrencyPolicy"] == "Forbid"
    longer = kinds(render("contact-worker", {"inboxPurge": {"olderThanDays": 30}}), "CronJob")
    assert any(
        "30" in j["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"]
        for j in longer
    )
    off = kinds(render("contact-worker", {"inboxPurge": {"enabled": False}}), "CronJob")
    assert "contact-worker-inbox-purge" not in {j["metadata"]["name"] for j in off}
    validator = jsonschema.Draft7Validator(
        json.loads((HELM / "contact-worker" / "values.schema.json").read_text())
    )
    short = chart_values("contact-worker", {"inboxPurge": {"olderThanDays": 3}})
    assert not validator.is_valid(short)
