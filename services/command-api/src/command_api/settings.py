"""The command API's settings: one typed object read from the environment once, at start-up.

Names and local defaults are those of docs/contracts.md (12-factor).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from contacts_http.auth import AuthSettings
from contacts_http.env import ConfigError
from contacts_http.rate_limits import RateLimitSettings


class SettingsError(ValueError):
    """An environment variable holds a value the command API cannot use."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the composition root needs to build the adapters.

    Times are in seconds, sizes in bytes: ``max_request_bytes`` bounds the body of every route
    but ``POST /v1/contacts/batch``, which ``batch_max_bytes`` bounds, and ``POST /v1/imports``,
    which the ``import_*`` limits bound (issue 3: 10 MB and 10,000 records by default; the
    report kept 7 days, listing at most ``import_errors_max`` errors and as many warnings); a
    body that goes ``request_body_idle_timeout_s`` seconds without a byte is answered 408.
    ``sqs_endpoint_url`` is ``None`` for AWS itself;
    ``aws_access_key_id``/``aws_secret_access_key`` are ``None`` to use boto3's default
    credential chain (e.g. IRSA on EKS). ``auth`` (the ``AUTH_*`` variables) and
    ``rate_limits`` (``RATE_LIMIT_*``) are read by ``contacts_http``; see
    ``contacts_http.auth.settings`` and ``contacts_http.rate_limits``.
    """

    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "contacts:"
    redis_socket_timeout_s: float = 0.25
    redis_connect_timeout_s: float = 0.25
    sqs_endpoint_url: str | None = "http://127.0.0.1:4566"
    aws_region: str = "us-east-1"
    aws_access_key_id: str | None = "test"
    aws_secret_access_key: str | None = "test"
    sqs_queue_name: str = "contacts-events.fifo"
    sqs_queue_url: str = "http://127.0.0.1:4566/000000000000/contacts-events.fifo"
    sqs_send_timeout_s: float = 2.0
    query_api_base_url: str = "http://127.0.0.1:8002"
    default_phone_region: str = "US"
    max_request_bytes: int = 1_048_576
    batch_max_bytes: int = 1_048_576
    request_body_idle_timeout_s: float = 10.0
    idempotency_ttl_s: int = 86_400
    operation_ttl_s: int = 86_400
    import_max_bytes: int = 10_485_760
    import_max_records: int = 10_000
    import_report_ttl_s: int = 604_800
    import_errors_max: int = 1_000
    auth: AuthSettings = field(default_factory=AuthSettings)
    rate_limits: RateLimitSettings = field(default_factory=RateLimitSettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read the settings from ``environ`` (usually ``os.environ``); absent names take the
        local defaults. ``SQS_QUEUE_URL`` defaults to
        ``{SQS_ENDPOINT_URL}/000000000000/{SQS_QUEUE_NAME}``; with an empty ``SQS_ENDPOINT_URL``
        (AWS) it must be given.

        Raises ``SettingsError`` naming the variable when a number is malformed or not positive,
        or when the queue URL cannot be derived.
        """
        defaults = cls()

        def text(name: str, default: str) -> str:
            return environ.get(name, default).strip()

        def optional(name: str, default: str | None) -> str | None:
            value = environ.get(name, default or "").strip()
            return value or None

        endpoint = optional("SQS_ENDPOINT_URL", defaults.sqs_endpoint_url)
        queue_name = text("SQS_QUEUE_NAME", defaults.sqs_queue_name)
        queue_url = environ.get("SQS_QUEUE_URL", "").strip()
        if not queue_url:
            if endpoint is None:
                raise SettingsError("SQS_QUEUE_URL is required when SQS_ENDPOINT_URL is empty.")
            queue_url = f"{endpoint.rstrip('/')}/000000000000/{queue_name}"
        try:
            auth = AuthSettings.from_env(environ)
            rate_limits = RateLimitSettings.from_env(environ)
        except ConfigError as exc:
            raise SettingsError(str(exc)) from None
        return cls(
            redis_url=text("REDIS_URL", defaults.redis_url),
            redis_prefix=environ.get("REDIS_PREFIX", defaults.redis_prefix),
            redis_socket_timeout_s=_positive(
                environ, "REDIS_SOCKET_TIMEOUT_S", defaults.redis_socket_timeout_s, float
            ),
            redis_connect_timeout_s=_positive(
                environ, "REDIS_CONNECT_TIMEOUT_S", defaults.redis_connect_timeout_s, float
            ),
            sqs_endpoint_url=endpoint,
            aws_region=text("AWS_REGION", defaults.aws_region),
            aws_access_key_id=optional("AWS_ACCESS_KEY_ID", defaults.aws_access_key_id),
            aws_secret_access_key=optional("AWS_SECRET_ACCESS_KEY", defaults.aws_secret_access_key),
            sqs_queue_name=queue_name,
            sqs_queue_url=queue_url,
            sqs_send_timeout_s=_positive(
                environ, "SQS_SEND_TIMEOUT_S", defaults.sqs_send_timeout_s, float
            ),
            query_api_base_url=text("QUERY_API_BASE_URL", defaults.query_api_base_url).rstrip("/"),
            default_phone_region=text("DEFAULT_PHONE_REGION", defaults.default_phone_region),
            max_request_bytes=_positive(
                environ, "MAX_REQUEST_BYTES", defaults.max_request_bytes, int
            ),
            batch_max_bytes=_positive(environ, "BATCH_MAX_BYTES", defaults.batch_max_bytes, int),
            request_body_idle_timeout_s=_positive(
                environ,
                "REQUEST_BODY_IDLE_TIMEOUT_S",
                defaults.request_body_idle_timeout_s,
                float,
            ),
            idempotency_ttl_s=_positive(
                environ, "IDEMPOTENCY_TTL_S", defaults.idempotency_ttl_s, int
            ),
            operation_ttl_s=_positive(environ, "OPERATION_TTL_S", defaults.operation_ttl_s, int),
            import_max_bytes=_positive(environ, "IMPORT_MAX_BYTES", defaults.import_max_bytes, int),
            import_max_records=_positive(
                environ, "IMPORT_MAX_RECORDS", defaults.import_max_records, int
            ),
            import_report_ttl_s=_positive(
                environ, "IMPORT_REPORT_TTL_S", defaults.import_report_ttl_s, int
            ),
            import_errors_max=_positive(
                environ, "IMPORT_ERRORS_MAX", defaults.import_errors_max, int
            ),
            auth=auth,
            rate_limits=rate_limits,
        )


N = TypeVar("N", int, float)


def _positive(environ: Mapping[str, str], name: str, default: N, kind: type[N]) -> N:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}.") from None
    if value <= 0:
        raise SettingsError(f"{name} must be positive, got {raw!r}.")
    return value
