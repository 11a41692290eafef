"""Messages as they end up in the dead-letter queue: Celery-shaped bodies (as kombu's SQS
transport writes them) around good or poison contact events."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any


def celery_shaped(task: str, args: list[Any], routing_key: str = "q") -> str:
    """A Celery protocol-2 message as kombu puts it on SQS (base64 JSON envelope), addressed
    to the queue ``routing_key`` (the command API's messages name the worker's queue)."""
    body = base64.b64encode(json.dumps([args, {}, {}]).encode()).decode()
    envelope = {
        "body": body,
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {"lang": "py", "task": task, "id": str(uuid.uuid4()), "retries": 0},
        "properties": {
            "body_encoding": "base64",
            "delivery_info": {"exchange": "", "routing_key": routing_key},
            "delivery_mode": 2,
            "delivery_tag": str(uuid.uuid4()),
        },
    }
    return base64.b64encode(json.dumps(envelope).encode()).decode()
