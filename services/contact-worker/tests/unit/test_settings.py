"""Worker settings: parsing and the order of time bounds (case C12)."""

from __future__ import annotations

import pytest

from contact_worker.settings import Settings


def test_defaults_keep_the_time_bounds_in_order() -> None:
    settings = Settings.from_env({})
    assert settings.db_lock_timeout_ms / 1000 < settings.task_time_limit_s
    assert settings.task_time_limit_s < settings.visibility_timeout_s


def test_c12_a_task_limit_above_the_visibility_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match="SQS_VISIBILITY_TIMEOUT_S"):
        Settings.from_env({"TASK_TIME_LIMIT_S": "120"})


def test_bad_numbers_name_the_variable() -> None:
    with pytest.raises(ValueError, match="SQS_MAX_RECEIVE_COUNT"):
        Settings.from_env({"SQS_MAX_RECEIVE_COUNT": "five"})


def test_broker_url_follows_the_endpoint() -> None:
    assert Settings.from_env({"SQS_ENDPOINT_URL": "http://127.0.0.1:4566"}).broker_url == (
        "sqs://127.0.0.1:4566"
    )
    assert Settings.from_env({"SQS_ENDPOINT_URL": ""}).broker_url == "sqs://"


def test_empty_aws_keys_select_the_default_credential_chain() -> None:
    """On EKS the keys are empty so boto3 uses the pod's IRSA role, never literal keys."""
    settings = Settings.from_env({"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""})
    assert (settings.aws_access_key_id, settings.aws_secret_access_key) == (None, None)
    assert Settings.from_env({}).aws_access_key_id == "test"  # local default


def test_metrics_and_log_settings() -> None:
    defaults = Settings.from_env({})
    assert (defaults.metrics_addr, defaults.metrics_port) == ("127.0.0.1", 9100)
    assert (defaults.queue_metrics_interval_s, defaults.log_level) == (15.0, "INFO")
    given = Settings.from_env(
        {
            "WORKER_METRICS_ADDR": "0.0.0.0",
            "WORKER_METRICS_PORT": "0",
            "QUEUE_METRICS_INTERVAL_S": "2.5",
            "LOG_LEVEL": "debug",
        }
    )
    assert (given.metrics_addr, given.metrics_port) == ("0.0.0.0", 0)
    assert (given.queue_metrics_interval_s, given.log_level) == (2.5, "DEBUG")
    with pytest.raises(ValueError, match="WORKER_METRICS_PORT"):
        Settings.from_env({"WORKER_METRICS_PORT": "nine"})
