"""A running system under test and what tests do with it over HTTP."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import requests

from support.processes import Service


@dataclass
class Stack:
    command_url: str
    query_url: str
    env: dict[str, str]
    services: list[Service]

    def wait_operation(self, operation_id: str, timeout_s: float = 30) -> dict[str, Any]:
        """Poll ``GET /v1/operations/{id}`` until it is no longer pending; returns its body."""
        deadline = time.monotonic() + timeout_s
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            answer = requests.get(f"{self.query_url}/v1/operations/{operation_id}", timeout=5)
            if answer.status_code == 200:
                body = answer.json()
                if body["status"] != "pending":
                    return body
            time.sleep(0.02)
        raise AssertionError(
            f"operation {operation_id} still {body or 'unknown'} after {timeout_s} s"
        )
