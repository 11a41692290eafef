"""The running system schemathesis fuzzes: both APIs under gunicorn and the worker, with queues
and a Redis prefix of their own (the writes it generates are applied, or rejected, for real).

Every request goes through one ``requests.Session`` that counts them (and the ones answered 2xx);
the counts are printed in pytest's terminal summary. The session sends no API key: the tests put
the session's key in a case's ``Authorization`` header when schemathesis sends one, so a case
that leaves the header out on purpose (a negative case) is refused with 401."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from support.stack import Stack, isolated_stack


@pytest.fixture(scope="module")
def fuzz_stack(
    stack_env: dict[str, str], sqs_client: Any, redis_prefix: str, run_id: str
) -> Iterator[Stack]:
    with isolated_stack(
        stack_env, sqs_client, f"t{run_id}-fuzz", {"REDIS_PREFIX": f"{redis_prefix}fuzz:"}
    ) as stack:
        yield stack


REQUESTS_MADE = pytest.StashKey[list[int]]()


@pytest.fixture(scope="module")
def fuzz_session(request: pytest.FixtureRequest) -> Iterator[requests.Session]:
    """The HTTP session of every fuzz request; counts responses into the config's stash."""
    counter = request.config.stash.setdefault(REQUESTS_MADE, [0, 0])

    def count(response: requests.Response, *_args: Any, **_kwargs: Any) -> None:
        counter[0] += 1
        counter[1] += response.ok

    with requests.Session() as session:
        session.hooks["response"].append(count)
        yield session


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    made = config.stash.get(REQUESTS_MADE, None)
    if made is not None:
        terminalreporter.write_line(
            f"schemathesis: {made[0]} requests made to the two APIs, {made[1]} answered 2xx"
        )
