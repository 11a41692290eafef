"""The settings rules every service shares (contacts_infra.settings)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from pydantic import Field, PositiveInt

from contacts_infra.settings import (
    CommaList,
    EnvSettings,
    RedisSettings,
    SettingsError,
    SqsConnectionSettings,
)


class Nested(EnvSettings):
    depth: PositiveInt = Field(1, validation_alias="NESTED_DEPTH")


class Example(RedisSettings, SqsConnectionSettings):
    count: PositiveInt = 5
    database_url: str = Field("postgresql://default", validation_alias="EXAMPLE_DATABASE_URL")
    origins: CommaList = ()
    nested: Nested = Field(default_factory=Nested)


def test_defaults_never_read_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNT", "9")
    monkeypatch.setenv("REDIS_PREFIX", "from-the-process:")
    assert Example() == Example.from_env({})
    assert Example().count == 5
    assert Example.from_env({"COUNT": "9"}).count == 9


def test_values_are_stripped_and_blank_takes_the_default() -> None:
    settings = Example.from_env({"COUNT": " 7 ", "REDIS_URL": "", "ORIGINS": "a, b,,c"})
    assert settings.count == 7
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.origins == ("a", "b", "c")


def test_blank_aws_keys_and_endpoint_mean_none_and_a_blank_prefix_is_kept() -> None:
    settings = Example.from_env(
        {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "SQS_ENDPOINT_URL": ""}
    )
    assert (settings.aws_access_key_id, settings.aws_secret_access_key) == (None, None)
    assert settings.sqs_endpoint_url is None
    assert Example.from_env({"REDIS_PREFIX": ""}).redis_prefix == ""


def test_an_aliased_field_reads_only_its_variable() -> None:
    # DATABASE_URL (the writer's URL in this deployment) must not leak into a field that reads
    # another variable.
    settings = Example.from_env({"DATABASE_URL": "postgresql://writer"})
    assert settings.database_url == "postgresql://default"
    assert Example.from_env({"EXAMPLE_DATABASE_URL": "x"}).database_url == "x"


def test_nested_settings_read_the_same_mapping() -> None:
    assert Example.from_env({"NESTED_DEPTH": "3"}).nested.depth == 3
    with pytest.raises(SettingsError, match="NESTED_DEPTH"):
        Example.from_env({"NESTED_DEPTH": "0"})


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"COUNT": "five"}, "COUNT='five': Input should be a valid integer"),
        ({"COUNT": "0"}, "COUNT='0': Input should be greater than 0"),
        ({"REDIS_SOCKET_TIMEOUT_S": "-1"}, "REDIS_SOCKET_TIMEOUT_S='-1': Input should be greater"),
    ],
)
def test_an_error_is_one_line_naming_the_variable_and_the_rule(
    environ: dict[str, str], expected: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        Example.from_env(environ)
    assert str(caught.value).startswith(expected)
    assert "\n" not in str(caught.value)


def test_a_secret_is_never_echoed() -> None:
    class WithSecret(EnvSettings):
        token: PositiveInt = Field(1, json_schema_extra={"secret": True})

    with pytest.raises(SettingsError) as caught:
        WithSecret.from_env({"TOKEN": "s3cr3t-value"})
    assert "TOKEN" in str(caught.value)
    assert "s3cr3t-value" not in str(caught.value)


def test_a_process_with_a_bad_variable_exits_with_one_line() -> None:
    program = textwrap.dedent(
        """
        import os
        from contacts_infra.settings import RedisSettings, exit_on_error
        exit_on_error(lambda: RedisSettings.from_env(os.environ), "example")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        env={"REDIS_CONNECT_TIMEOUT_S": "soon", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("example: invalid settings: REDIS_CONNECT_TIMEOUT_S='soon'")


def test_cluster_mode_takes_a_node_url_of_database_0() -> None:
    for url in ("redis://cfg:6379", "redis://cfg:6379/0", "rediss://u:p@cfg:6380/0?db=0"):
        settings = RedisSettings.from_env({"REDIS_URL": url, "REDIS_CLUSTER_MODE": "true"})
        assert settings.redis_cluster_mode is True
    assert RedisSettings.from_env({}).redis_cluster_mode is False
    for url, rule in (
        ("redis://cfg:6379/1", "only database 0"),
        ("redis://cfg:6379?db=2", "only database 0"),
        ("unix:///tmp/redis.sock", "redis:// or rediss://"),
        ("redis+cluster://cfg:6379", "redis:// or rediss://"),
        ("redis://:secret@/0", "a host is required"),
    ):
        with pytest.raises(
            SettingsError, match=f"REDIS_URL with REDIS_CLUSTER_MODE=true: .*{rule}"
        ):
            RedisSettings.from_env({"REDIS_URL": url, "REDIS_CLUSTER_MODE": "true"})
    # Without cluster mode a database number is fine.
    assert RedisSettings.from_env({"REDIS_URL": "redis://cfg:6379/1"}).redis_url.endswith("/1")
