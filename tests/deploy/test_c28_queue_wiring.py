"""C28: queue wiring and encryption in Terraform, from python-hcl2's parse of the sqs module."""

from __future__ import annotations

import json

from support.deployment import TERRAFORM, blocks, parse_hcl

SQS = parse_hcl(TERRAFORM / "modules" / "sqs" / "main.tf")
RESOURCES = {
    kind: blocks(SQS, "resource", kind)
    for kind in (
        "aws_sqs_queue",
        "aws_sqs_queue_redrive_policy",
        "aws_sqs_queue_redrive_allow_policy",
        "aws_kms_key",
    )
}
POLICIES = blocks(SQS, "data", "aws_iam_policy_document")


def test_c28_main_queue_redrives_to_the_dlq_after_5_receives() -> None:
    (redrive,) = RESOURCES["aws_sqs_queue_redrive_policy"].values()
    assert redrive["queue_url"] == "${aws_sqs_queue.main.id}"
    policy = redrive["redrive_policy"]
    assert "deadLetterTargetArn = aws_sqs_queue.dlq.arn" in policy
    assert "maxReceiveCount = var.max_receive_count" in policy
    variables = parse_hcl(TERRAFORM / "modules" / "sqs" / "variables.tf")["variable"]
    (count,) = [v["max_receive_count"] for v in variables if "max_receive_count" in v]
    assert count["default"] == 5
    env_main = (TERRAFORM / "stack" / "main.tf").read_text()
    assert "max_receive_count              = 5" in env_main


def test_c28_dlq_admits_only_the_main_queue() -> None:
    (allow,) = RESOURCES["aws_sqs_queue_redrive_allow_policy"].values()
    assert allow["queue_url"] == "${aws_sqs_queue.dlq.id}"
    policy = allow["redrive_allow_policy"]
    assert 'redrivePermission = "byQueue"' in policy
    assert "sourceQueueArns = [aws_sqs_queue.main.arn]" in policy


def test_c28_no_dependency_cycle_between_the_queues() -> None:
    queues = RESOURCES["aws_sqs_queue"]
    assert set(queues) == {"main", "dlq"}
    for body in queues.values():
        text = json.dumps(body)
        assert "redrive" not in text
        assert "aws_sqs_queue." not in text


def test_c28_both_queues_are_encrypted_and_fifo() -> None:
    for name, queue in RESOURCES["aws_sqs_queue"].items():
        assert queue["fifo_queue"] is True, name
        assert queue["content_based_deduplication"] is False, name
        assert queue["kms_master_key_id"] == "${local.kms_key_arn}", name
        assert queue["sqs_managed_sse_enabled"] == "${var.create_kms_key ? null : true}", name
    (key,) = RESOURCES["aws_kms_key"].values()
    assert key["enable_key_rotation"] is True


def test_c28_visibility_timeout_is_longer_than_the_task_hard_limit() -> None:
    variables = {
        name: body
        for entry in parse_hcl(TERRAFORM / "modules" / "sqs" / "variables.tf")["variable"]
        for name, body in entry.items()
    }
    assert (
        variables["visibility_timeout_seconds"]["default"]
        > variables["worker_task_time_limit_seconds"]["default"]
    )
    conditions = [v["condition"] for v in variables["worker_task_time_limit_seconds"]["validation"]]
    assert conditions == ["${var.visibility_timeout_seconds > var.worker_task_time_limit_seconds}"]


def _actions(name: str) -> dict[str, set[str]]:
    """Resource -> actions of the policy document ``name`` (static and dynamic statements)."""
    body = POLICIES[name]
    statements = list(body.get("statement", []))
    for dynamic in body.get("dynamic", []):
        for content in dynamic["statement"]["content"]:
            statements.append(content)
    grants: dict[str, set[str]] = {}
    for statement in statements:
        assert statement.get("effect", "Allow") == "Allow"
        for resource in statement["resources"]:
            grants.setdefault(resource, set()).update(statement["actions"])
    return grants


def test_c28_command_api_may_only_send() -> None:
    grants = _actions("producer")
    assert set(grants) == {"${aws_sqs_queue.main.arn}", "${statement.value}"}
    assert grants["${aws_sqs_queue.main.arn}"] == {"sqs:SendMessage", "sqs:GetQueueAttributes"}
    assert grants["${statement.value}"] == {"kms:GenerateDataKey", "kms:Decrypt"}
    (dynamic,) = POLICIES["producer"]["dynamic"]
    assert dynamic["statement"]["for_each"] == "${var.create_kms_key ? [local.kms_key_arn] : []}"


def test_c28_worker_may_receive_delete_and_change_visibility() -> None:
    grants = _actions("consumer")
    assert grants["${aws_sqs_queue.main.arn}"] == {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
        "sqs:SendMessage",  # dlq redrive
    }
    assert grants["${statement.value}"] == {"kms:Decrypt", "kms:GenerateDataKey"}


def test_c28_worker_may_read_and_operate_its_dead_letter_queue() -> None:
    """The depth poller asks the DLQ's URL and size (the DLQ alert reads that gauge); the
    admin's dlq commands, run in the worker's pod, receive, delete and hand back dead letters.
    Before this grant, production polled no DLQ depth (AccessDenied on GetQueueUrl)."""
    grants = _actions("consumer")
    assert grants["${aws_sqs_queue.dlq.arn}"] == {
        "sqs:GetQueueUrl",
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
    }


def test_c28_no_wildcard_action_or_resource_in_the_service_roles() -> None:
    for name in ("producer", "consumer"):
        for resource, actions in _actions(name).items():
            assert "*" not in resource, name
            assert not any("*" in action for action in actions), name


def test_c28_roles_get_exactly_those_policies() -> None:
    main = (TERRAFORM / "stack" / "main.tf").read_text()
    assert "policy_json     = module.sqs.producer_policy_json" in main.split("query-api")[0]
    worker = main.split("contact-worker = {")[1]
    assert "policy_json     = module.sqs.consumer_policy_json" in worker
    query = main.split("query-api = {")[1].split("}")[0]
    assert "policy_json" not in query
