"""The real command API against the run's real SQS-compatible server and Redis.

Session fixtures ``stack_env``, ``sqs_client`` and ``redis_client`` come from the root
conftest. The command API gets a FIFO queue of its own (no worker consumes it), so each test
can read back exactly what it enqueued.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask

from command_api.entrypoints.app import create_app
from command_api.settings import Settings
from support.auth import authorized
from support.resources import isolated_queues


@dataclass(frozen=True)
class QueuedMessage:
    """One SQS message decoded the way the worker's kombu decodes it."""

    body_size: int
    group_id: str
    dedup_id: str
    task: str
    args: list[Any]
    kwargs: dict[str, Any]

    @property
    def envelope(self) -> dict[str, Any]:
        return self.args[0]


def decode(message: dict[str, Any]) -> QueuedMessage:
    kombu_message = json.loads(base64.b64decode(message["Body"]))
    args, kwargs, _embed = json.loads(base64.b64decode(kombu_message["body"]))
    return QueuedMessage(
        body_size=len(message["Body"].encode()),
        group_id=message["Attributes"]["MessageGroupId"],
        dedup_id=message["Attributes"]["MessageDeduplicationId"],
        task=kombu_message["headers"]["task"],
        args=args,
        kwargs=kwargs,
    )


@pytest.fixture(scope="session")
def command_queue_url(sqs_client: Any, run_id: str) -> Iterator[str]:
    with isolated_queues(sqs_client, f"t{run_id}cmd") as urls:
        yield urls.main


@pytest.fixture(scope="session")
def command_env(stack_env: dict[str, str], command_queue_url: str) -> dict[str, str]:
    return {
        **stack_env,
        "SQS_QUEUE_NAME": command_queue_url.rsplit("/", 1)[1],
        "SQS_QUEUE_URL": command_queue_url,
    }


@pytest.fixture(scope="session")
def command_settings(command_env: dict[str, str]) -> Settings:
    return Settings.from_env(command_env)


@pytest.fixture
def drain(sqs_client: Any, command_queue_url: str) -> Callable[[], list[QueuedMessage]]:
    """Return a function that receives and deletes everything on the queue, decoded."""

    def receive_all() -> list[QueuedMessage]:
        messages: list[QueuedMessage] = []
        while True:
            batch = sqs_client.receive_message(
                QueueUrl=command_queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                AttributeNames=["All"],
            ).get("Messages", [])
            if not batch:
                return messages
            for message in batch:
                messages.append(decode(message))
                sqs_client.delete_message(
                    QueueUrl=command_queue_url, ReceiptHandle=message["ReceiptHandle"]
                )

    receive_all()
    return receive_all


@pytest.fixture
def real_app(command_settings: Settings) -> Flask:
    return authorized(create_app(command_settings))
