"""Settings from the environment (docs/contracts.md names and local defaults)."""

from __future__ import annotations

import pytest

from command_api.settings import Settings, SettingsError


def test_defaults_are_the_local_stack() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.sqs_queue_url == "http://127.0.0.1:4566/000000000000/contacts-events.fifo"
    assert settings.sqs_send_timeout_s == 2.0
    assert settings.max_request_bytes == 1_048_576


def test_queue_url_is_derived_from_endpoint_and_name() -> None:
    settings = Settings.from_env(
        {"SQS_ENDPOINT_URL": "http://127.0.0.1:4599/", "SQS_QUEUE_NAME": "q.fifo"}
    )
    assert settings.sqs_queue_url == "http://127.0.0.1:4599/000000000000/q.fifo"


def test_aws_needs_an_explicit_queue_url_and_may_use_the_default_credentials() -> None:
    with pytest.raises(SettingsError, match="SQS_QUEUE_URL"):
        Settings.from_env({"SQS_ENDPOINT_URL": ""})
    url = "https://sqs.eu-west-1.amazonaws.com/123456789012/contacts-events.fifo"
    settings = Settings.from_env(
        {
            "SQS_ENDPOINT_URL": "",
            "SQS_QUEUE_URL": url,
            "AWS_ACCESS_KEY_ID": "",
            "AWS_SECRET_ACCESS_KEY": "",
        }
    )
    assert settings.sqs_endpoint_url is None
    assert settings.aws_access_key_id is None
    assert settings.sqs_queue_url == url


def test_numbers_are_parsed_and_checked() -> None:
    settings = Settings.from_env({"SQS_SEND_TIMEOUT_S": "0.5", "MAX_REQUEST_BYTES": "2048"})
    assert settings.sqs_send_timeout_s == 0.5
    assert settings.max_request_bytes == 2048
    with pytest.raises(SettingsError, match="MAX_REQUEST_BYTES"):
        Settings.from_env({"MAX_REQUEST_BYTES": "1MB"})
    with pytest.raises(SettingsError, match="SQS_SEND_TIMEOUT_S"):
        Settings.from_env({"SQS_SEND_TIMEOUT_S": "0"})


def test_the_batch_body_limit_is_its_own_setting() -> None:
    assert Settings.from_env({}).batch_max_bytes == 1_048_576
    assert Settings.from_env({"BATCH_MAX_BYTES": "4194304"}).batch_max_bytes == 4_194_304
    with pytest.raises(SettingsError, match="BATCH_MAX_BYTES"):
        Settings.from_env({"BATCH_MAX_BYTES": "-1"})


def test_query_api_base_url_loses_its_trailing_slash() -> None:
    settings = Settings.from_env({"QUERY_API_BASE_URL": "https://query.example/"})
    assert settings.query_api_base_url == "https://query.example"
