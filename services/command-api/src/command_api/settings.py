"""The command API's settings: one typed object read from the environment once, at start-up.

Names and local defaults are those of docs/contracts.md (12-factor); how they are read is
``contacts_infra.settings``.
"""

from __future__ import annotations

from pydantic import Field, PositiveFloat, PositiveInt, field_validator, model_validator

from contacts_http.auth import AuthSettings
from contacts_http.rate_limits import RateLimitSettings
from contacts_infra.settings import (
    RedisSettings,
    SettingsError,
    SqsConnectionSettings,
)

__all__ = ["Settings", "SettingsError"]


class Settings(RedisSettings, SqsConnectionSettings):
    """Everything the composition root needs to build the adapters.

    Times are in seconds, sizes in bytes: ``max_request_bytes`` bounds the body of every route
    but ``POST /v1/contacts/batch``, which ``batch_max_bytes`` bounds, and ``POST /v1/imports``,
    which the ``import_*`` limits bound (10 MB and 10,000 records by default; the report kept 7
    days, listing at most ``import_errors_max`` errors and as many warnings; at most
    ``import_queuing_slots`` imports per process queued in the background at once, each holding
    a queuing lease of ``import_queuing_lease_s`` seconds renewed per chunk); a body that goes
    ``request_body_idle_timeout_s`` seconds without a byte is answered 408.
    ``sqs_queue_url`` defaults to ``{SQS_ENDPOINT_URL}/000000000000/{SQS_QUEUE_NAME}``; with an
    empty ``SQS_ENDPOINT_URL`` (AWS) it must be given. ``auth`` (the ``AUTH_*`` variables) and
    ``rate_limits`` (``RATE_LIMIT_*``) are read by ``contacts_http``; see
    ``contacts_http.auth.settings`` and ``contacts_http.rate_limits``. ``fast_post``
    (``COMMAND_FAST_POST``, on by default) answers the plain ``POST /v1/contacts`` in a WSGI
    fast path before Flask's dispatch (``entrypoints.fast_post``; tests turn it off to compare
    it with the Flask path's answers).

    Raises ``SettingsError`` (from ``from_env``) naming the variable when a number is malformed
    or not positive, or when the queue URL cannot be derived.
    """

    sqs_queue_name: str = "contacts-events.fifo"
    sqs_queue_url: str = ""
    sqs_send_timeout_s: PositiveFloat = 2.0
    query_api_base_url: str = "http://127.0.0.1:8002"
    default_phone_region: str = "US"
    max_request_bytes: PositiveInt = 1_048_576
    batch_max_bytes: PositiveInt = 1_048_576
    request_body_idle_timeout_s: PositiveFloat = 10.0
    idempotency_ttl_s: PositiveInt = 86_400
    operation_ttl_s: PositiveInt = 86_400
    import_max_bytes: PositiveInt = 10_485_760
    import_max_records: PositiveInt = 10_000
    import_report_ttl_s: PositiveInt = 604_800
    import_errors_max: PositiveInt = 1_000
    import_queuing_lease_s: PositiveInt = 60
    import_queuing_slots: PositiveInt = 2
    auth: AuthSettings = Field(default_factory=AuthSettings)
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings)
    fast_post: bool = Field(True, validation_alias="COMMAND_FAST_POST")

    @field_validator("query_api_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _derive_queue_url(self) -> Settings:
        if not self.sqs_queue_url:
            if self.sqs_endpoint_url is None:
                raise ValueError("SQS_QUEUE_URL is required when SQS_ENDPOINT_URL is empty.")
            url = f"{self.sqs_endpoint_url.rstrip('/')}/000000000000/{self.sqs_queue_name}"
            # Frozen model: the derived default is set once, while the object is being built.
            object.__setattr__(self, "sqs_queue_url", url)
        return self
