"""The SQS wiring of the composition root on the real SQS server: ``contact-worker-admin
create-queues`` (a process) and the queue-depth poller of the main process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from contact_worker import bootstrap
from contact_worker.entrypoints.metrics import WorkerMetrics
from contact_worker.settings import Settings
from contacts_telemetry.metrics import MetricsRegistry
from support.resources import isolated_queues, queue_env

ADMIN = Path(sys.executable).with_name("contact-worker-admin")


def test_create_queues_makes_the_fifo_queue_and_its_dead_letter_queue(
    stack_env: dict[str, str], sqs_client: Any
) -> None:
    name = f"a{uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        **stack_env,
        "SQS_QUEUE_NAME": f"{name}.fifo",
        "SQS_DLQ_NAME": f"{name}-dlq.fifo",
    }
    done = subprocess.run(
        [str(ADMIN), "create-queues"], env=env, capture_output=True, text=True, timeout=60
    )
    try:
        assert done.returncode == 0, done.stderr[-2000:]
        main_line, dlq_line = done.stdout.strip().splitlines()
        main_url = main_line.removeprefix("queue ")
        dlq_url = dlq_line.removeprefix("dead-letter queue ")
        assert main_url.endswith(f"/{name}.fifo")
        assert dlq_url.endswith(f"/{name}-dlq.fifo")
        attributes = sqs_client.get_queue_attributes(
            QueueUrl=main_url, AttributeNames=["RedrivePolicy", "VisibilityTimeout"]
        )["Attributes"]
        assert json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"].endswith(
            f":{name}-dlq.fifo"
        )
        assert attributes["VisibilityTimeout"] == stack_env["SQS_VISIBILITY_TIMEOUT_S"]
    finally:
        for queue in (f"{name}.fifo", f"{name}-dlq.fifo"):
            try:
                url = sqs_client.get_queue_url(QueueName=queue)["QueueUrl"]
            except sqs_client.exceptions.QueueDoesNotExist:
                continue
            sqs_client.delete_queue(QueueUrl=url)


def test_the_poller_finds_the_dead_letter_queue_by_its_name(
    stack_env: dict[str, str], sqs_client: Any
) -> None:
    name = f"p{uuid.uuid4().hex[:10]}"
    with isolated_queues(sqs_client, name) as urls:
        sqs_client.send_message(
            QueueUrl=urls.dlq, MessageBody="{}", MessageGroupId="g", MessageDeduplicationId="d"
        )
        settings = Settings.from_env({**stack_env, **queue_env(name, urls)})
        poller = bootstrap.queue_depth_poller(settings, WorkerMetrics(MetricsRegistry()))

        depths = poller.poll_once()

    assert depths == {"main": (0, 0), "dlq": (1, 0)}
