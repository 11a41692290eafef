"""Terraform: every file parses, safe defaults; GitHub Actions: pinned actions, path filters."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from support.deployment import TERRAFORM, WORKFLOWS, blocks, load_yaml, parse_hcl

TF_FILES = (
    sorted(TERRAFORM.rglob("*.tf"))
    + sorted(TERRAFORM.rglob("*.tfvars"))
    + sorted(TERRAFORM.rglob("*.hcl"))
)


@pytest.mark.parametrize("path", TF_FILES, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_terraform_file_parses(path) -> None:
    assert parse_hcl(path) is not None


def _resource(module: str, kind: str) -> dict:
    (body,) = blocks(
        parse_hcl(TERRAFORM / "modules" / module / "main.tf"), "resource", kind
    ).values()
    return body


def test_rds_is_private_encrypted_and_keeps_its_password_in_secrets_manager() -> None:
    db = _resource("rds", "aws_db_instance")
    assert db["publicly_accessible"] is False
    assert db["storage_encrypted"] is True
    assert db["manage_master_user_password"] is True
    assert "password" not in db
    assert db["multi_az"] == "${var.multi_az}"
    assert db["deletion_protection"] == "${var.deletion_protection}"
    params = _resource("rds", "aws_db_parameter_group")["parameter"]
    assert {"name": "rds.force_ssl", "value": "1"} in params


def test_prod_has_multi_az_and_deletion_protection() -> None:
    prod = parse_hcl(TERRAFORM / "envs" / "prod" / "terraform.tfvars")
    assert prod["db_multi_az"] is True
    assert prod["db_deletion_protection"] is True
    assert prod["redis_num_cache_clusters"] >= 2
    assert prod["single_nat_gateway"] is False


def test_redis_encrypts_at_rest_and_in_transit() -> None:
    redis = _resource("redis", "aws_elasticache_replication_group")
    assert redis["at_rest_encryption_enabled"] is True
    assert redis["transit_encryption_enabled"] is True
    assert redis["transit_encryption_mode"] == "required"


def _variables(path: Path) -> dict:
    return {name: body for entry in parse_hcl(path)["variable"] for name, body in entry.items()}


def test_redis_cluster_mode_is_a_variable_off_by_default() -> None:
    module = _variables(TERRAFORM / "modules" / "redis" / "variables.tf")
    assert module["cluster_mode_enabled"]["default"] is False
    assert module["cluster_mode_enabled"]["type"] == "bool"
    stack = _variables(TERRAFORM / "stack" / "variables.tf")
    assert stack["redis_cluster_mode_enabled"]["default"] is False
    (call,) = [
        m["redis"] for m in parse_hcl(TERRAFORM / "stack" / "main.tf")["module"] if "redis" in m
    ]
    assert call["cluster_mode_enabled"] == "${var.redis_cluster_mode_enabled}"
    for env in ENVS:
        values = parse_hcl(TERRAFORM / "envs" / env / "terraform.tfvars")
        assert values["redis_cluster_mode_enabled"] is False, env
    redis = _resource("redis", "aws_elasticache_replication_group")
    assert redis["cluster_mode"] == '${var.cluster_mode_enabled ? "enabled" : "disabled"}'
    # The services read the configuration endpoint in cluster mode: the primary's is null there.
    (secret,) = blocks(
        parse_hcl(TERRAFORM / "modules" / "redis" / "main.tf"),
        "resource",
        "aws_secretsmanager_secret_version",
    ).values()
    assert "${local.endpoint_address}" in secret["secret_string"]


def test_every_charts_values_output_tells_the_services_the_redis_mode() -> None:
    # REDIS_CLUSTER_MODE follows the variable, so turning cluster mode on switches every
    # service's client with it (a single-server client would get MOVED answers).
    outputs = {
        name: body
        for entry in parse_hcl(TERRAFORM / "stack" / "outputs.tf")["output"]
        for name, body in entry.items()
    }
    for chart in ("command_api", "query_api", "contact_worker"):
        config = outputs[f"{chart}_helm_values"]["value"]["config"]
        assert config["REDIS_CLUSTER_MODE"] == "${tostring(var.redis_cluster_mode_enabled)}", chart


REDIS_REQUIRED = ["name=x", "vpc_id=v", "subnet_ids=[]", "allowed_security_group_ids=[]"]


@pytest.mark.parametrize(
    ("values", "refusal"),
    [
        ([], None),
        (["cluster_mode_enabled=true"], None),
        (["cluster_mode_enabled=true", "num_node_groups=6", "replicas_per_node_group=2"], None),
        (["cluster_mode_enabled=true", "engine_version=6.2"], "needs engine_version 7"),
        (["num_node_groups=0"], "between 1 and 500"),
        (["replicas_per_node_group=6"], "between 0 and 5"),
        (["num_node_groups=200", "replicas_per_node_group=3"], "at most 500 nodes"),
    ],
)
def test_terraform_validates_the_redis_cluster_mode_variables(
    values: list[str], refusal: str | None
) -> None:
    # The module's variables alone need no provider: terraform plans them offline, validations
    # included.
    if shutil.which("terraform") is None:
        pytest.skip("no terraform binary on this machine")
    with tempfile.TemporaryDirectory(prefix="tf-redis-vars-") as workdir:
        shutil.copy(TERRAFORM / "modules" / "redis" / "variables.tf", workdir)
        run = {"cwd": workdir, "capture_output": True, "text": True, "check": False}
        init = subprocess.run(["terraform", "init", "-input=false", "-no-color"], **run)
        assert init.returncode == 0, init.stderr
        arguments = [f"-var={value}" for value in REDIS_REQUIRED + values]
        plan = subprocess.run(["terraform", "plan", "-input=false", "-no-color", *arguments], **run)
    if refusal is None:
        assert plan.returncode == 0, plan.stderr
    else:
        assert plan.returncode != 0
        assert refusal in " ".join(plan.stderr.split()), plan.stderr


def test_no_public_kubernetes_endpoint_by_default() -> None:
    variables = {
        k: v
        for e in parse_hcl(TERRAFORM / "modules" / "eks" / "variables.tf")["variable"]
        for k, v in e.items()
    }
    assert variables["endpoint_public_access_cidrs"]["default"] == []


ENVS = ("dev", "prod")


def test_state_is_in_s3_with_locking_and_encryption() -> None:
    # global: a full backend block; every env: the stack's partial backend "s3" {} completed by
    # envs/<env>/backend.hcl at init (-backend-config).
    (backend,) = parse_hcl(TERRAFORM / "global" / "backend.tf")["terraform"][0]["backend"]
    settings = {"global": backend["s3"]}
    (stack_backend,) = parse_hcl(TERRAFORM / "stack" / "backend.tf")["terraform"][0]["backend"]
    assert set(stack_backend) == {"s3"}
    for env in ENVS:
        settings[f"envs/{env}"] = {
            **stack_backend["s3"],
            **parse_hcl(TERRAFORM / "envs" / env / "backend.hcl"),
        }
    for root, s3 in settings.items():
        assert s3["use_lockfile"] is True, root
        assert s3["encrypt"] is True, root
    keys = [settings[f"envs/{env}"]["key"] for env in ENVS]
    assert keys == [f"contacts/{env}/terraform.tfstate" for env in ENVS]


def _stack_variables() -> dict:
    return {
        name: body
        for entry in parse_hcl(TERRAFORM / "stack" / "variables.tf")["variable"]
        for name, body in entry.items()
    }


def test_envs_differ_only_in_their_values() -> None:
    # One root module (stack/) for every env: an env directory holds its backend key and its
    # values, nothing that could drift between envs.
    for env in ENVS:
        files = {p.name for p in (TERRAFORM / "envs" / env).iterdir()}
        assert files == {"backend.hcl", "terraform.tfvars"}, env
    variables = _stack_variables()
    required = {name for name, body in variables.items() if "default" not in body}
    for env in ENVS:
        values = parse_hcl(TERRAFORM / "envs" / env / "terraform.tfvars")
        assert values["environment"] == env
        assert set(values) <= set(variables), env
        assert required <= set(values), env
    assert not list((TERRAFORM / "envs").glob("*/*.tf"))


def test_a_plan_with_another_envs_values_fails_on_the_states_env() -> None:
    (guard,) = blocks(
        parse_hcl(TERRAFORM / "stack" / "main.tf"), "resource", "terraform_data"
    ).values()
    assert guard["input"] == "${var.environment}"
    (lifecycle,) = guard["lifecycle"]
    assert lifecycle["ignore_changes"] == ["input"]
    (postcondition,) = lifecycle["postcondition"]
    assert postcondition["condition"] == "${self.output == var.environment}"


def test_terraform_fmt() -> None:
    if shutil.which("terraform") is None:
        pytest.skip("no terraform binary on this machine (CI's infra workflow runs fmt)")
    result = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", str(TERRAFORM)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.yml"))
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_actions_are_pinned_by_commit_sha(path) -> None:
    for line in path.read_text().splitlines():
        match = re.match(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", line)
        if match and not match.group(1).startswith("./"):
            assert PINNED.match(match.group(1)), line
            assert match.group(2).strip().startswith("# v"), f"version comment missing: {line}"


@pytest.mark.parametrize("service", ["command-api", "query-api", "contact-worker"])
def test_service_workflows_filter_on_their_paths(service: str) -> None:
    workflow = load_yaml(WORKFLOWS / f"{service}.yml")
    triggers = workflow.get("on", workflow.get(True))
    for event in ("push", "pull_request"):
        paths = triggers[event]["paths"]
        assert f"services/{service}/**" in paths
        assert "libs/contacts-domain/**" in paths
        assert "libs/contacts-telemetry/**" in paths
        assert "libs/contacts-infra/**" in paths
        assert f".github/workflows/{service}.yml" in paths
    assert workflow["permissions"] == {"contents": "read"}


def test_images_are_pushed_with_oidc_and_no_stored_keys() -> None:
    for path in WORKFLOW_FILES:
        text = path.read_text()
        assert "aws-access-key-id" not in text, path.name
        assert "AWS_SECRET_ACCESS_KEY" not in text, path.name
    image = load_yaml(WORKFLOWS / "image.yml")
    assert image["permissions"]["id-token"] == "write"


def test_deploy_uses_environments_and_atomic_upgrades() -> None:
    deploy = load_yaml(WORKFLOWS / "deploy.yml")
    job = deploy["jobs"]["deploy"]
    assert "environment" in job
    assert "--atomic" in str(job["steps"])
