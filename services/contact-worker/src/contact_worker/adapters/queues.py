"""Create the SQS queues the system runs on: a FIFO queue and its FIFO dead-letter queue.

Queues are infrastructure (Terraform in AWS); this module creates the same shape on a local
SQS-compatible server for ``make up`` and the tests. kombu must not create them: its
``visibility_timeout`` transport option only applies to queues it creates (docs/architecture.md §8).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from contacts_infra.messaging import SQS_MESSAGE_MAX_BYTES


@dataclass(frozen=True, slots=True)
class QueueUrls:
    main: str
    dlq: str


def ensure_queues(
    sqs: Any,
    *,
    name: str,
    dlq_name: str,
    visibility_timeout_s: int,
    max_receive_count: int,
) -> QueueUrls:
    """Create (or update) the FIFO queue ``name`` with a redrive policy to ``dlq_name``.

    ``sqs`` is a boto3 SQS client. Idempotent: attributes of existing queues are set again.
    The DLQ keeps messages 14 days (the SQS maximum) so poison messages can be inspected; its
    redrive-allow policy admits only the main queue. Content-based deduplication is off: the
    producer sends an explicit ``MessageDeduplicationId`` (the event id).
    """
    fifo = {"FifoQueue": "true", "ContentBasedDeduplication": "false"}
    dlq_url = _create(sqs, dlq_name, {**fifo, "MessageRetentionPeriod": "1209600"})
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    main_url = _create(
        sqs,
        name,
        {
            **fifo,
            "VisibilityTimeout": str(visibility_timeout_s),
            "MaximumMessageSize": str(SQS_MESSAGE_MAX_BYTES),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
            ),
        },
    )
    main_arn = sqs.get_queue_attributes(QueueUrl=main_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sqs.set_queue_attributes(
        QueueUrl=dlq_url,
        Attributes={
            "RedriveAllowPolicy": json.dumps(
                {"redrivePermission": "byQueue", "sourceQueueArns": [main_arn]}
            )
        },
    )
    return QueueUrls(main=main_url, dlq=dlq_url)


def _create(sqs: Any, name: str, attributes: dict[str, str]) -> str:
    try:
        return str(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])
    except sqs.exceptions.QueueNameExists:
        url = str(sqs.get_queue_url(QueueName=name)["QueueUrl"])
        settable = {k: v for k, v in attributes.items() if k != "FifoQueue"}
        sqs.set_queue_attributes(QueueUrl=url, Attributes=settable)
        return url
