"""Structured logs: one JSON object per line, without personal data (issue 7, items 4 and 6).

Every line has ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``service`` and ``event`` (the
message), plus the context bound for the work in hand: ``request_id``, ``operation_id``,
``contact_id``, ``event_id`` and ``traceparent`` when known (``bind_context``). Records of the
standard library's loggers (gunicorn, celery, kombu, our own ``logging.getLogger``) go through
the same processors and JSON renderer, so one parser reads every line a service writes.

Personal data never reaches a line: ``redact_pii`` replaces the value of every key that names a
contact field, a body or a payload (``PII_KEYS``), at any depth, with ``"[redacted]"``. That
guards structured fields; free text is the caller's responsibility: log ids, counts, statuses
and reasons, never values (the e2e log scan checks the whole output of a run).

``configure_logging`` is called once per process by the composition root (logging is
process-wide state by nature); nothing here acts at import time.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any, Final, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

#: Keys whose values are personal data, or may contain it (bodies, payloads, event data).
#: Compared case-insensitively. A contact's field names come from ``contacts_domain.FIELDS``.
PII_KEYS: Final = frozenset(
    {
        "first_name",
        "last_name",
        "name",
        "full_name",
        "email",
        "emails",
        "phone",
        "phones",
        "address",
        "addresses",
        "street",
        "city",
        "region",
        "postal_code",
        "birthday",
        "notes",
        "company",
        "job_title",
        "tags",
        "value",
        "fields",
        "changes",
        "data",
        "body",
        "json",
        "payload",
        "envelope",
        "args",
        "kwargs",
        "request_body",
        "response_body",
    }
)
REDACTED: Final = "[redacted]"
#: Libraries whose DEBUG lines carry request or message bodies (botocore logs SendMessage
#: parameters, Celery's pool and kombu log task arguments): never below INFO, whatever the
#: configured level, since those bodies are contacts' personal data.
PAYLOAD_LOGGERS: Final = ("botocore", "boto3", "urllib3", "kombu", "celery", "amqp")
#: The context keys a line carries when they are known (``bind_context``).
CONTEXT_KEYS: Final = ("request_id", "operation_id", "contact_id", "event_id", "traceparent")
#: The logger of gunicorn's access lines, one per request: ``json_formatter`` renders its
#: plain records itself (``_JsonFormatter``).
ACCESS_LOGGER: Final = "gunicorn.access"


def redact_pii(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: replace the values of ``PII_KEYS`` (at any depth) by ``REDACTED``.

    Returns the same mapping, changed in place; the message itself (``event``) is kept.
    """
    for key in list(event_dict):
        if key != "event":
            event_dict[key] = _redacted(key, event_dict[key])
    return event_dict


def _redacted(key: str, value: Any) -> Any:
    if key.lower() in PII_KEYS and value is not None:
        return REDACTED
    if isinstance(value, Mapping):
        return {k: _redacted(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted("", v) for v in value]
    return value


def _add_service(service: str) -> Processor:
    def add(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("service", service)
        return event_dict

    return add


def _drop_none_context(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    for key in CONTEXT_KEYS:
        if key in event_dict and event_dict[key] in (None, ""):
            del event_dict[key]
    return event_dict


def _shared_processors(service: str) -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
        _add_service(service),
        _drop_none_context,
        redact_pii,
    ]


def json_formatter(service: str) -> logging.Formatter:
    """A stdlib ``logging.Formatter`` that writes every record as one JSON line (see module doc).

    Usable in a ``logging.config`` dict (gunicorn's ``logconfig_dict``) through
    ``{"()": "contacts_telemetry.logs.json_formatter", "service": "query-api"}``.
    """
    return _JsonFormatter(
        service,
        foreign_pre_chain=_shared_processors(service),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(ensure_ascii=False, default=str),
        ],
    )


class _JsonFormatter(structlog.stdlib.ProcessorFormatter):  # type: ignore[misc]
    """structlog's formatter, with the access line of every request rendered directly.

    An access line (a plain record of ``ACCESS_LOGGER``: no exception, no extra fields) gets
    the very keys, values and order the processors give it (``event``, the bound context,
    ``level``, ``logger``, ``time``, ``service``), without running them: issue 13 measured
    gunicorn's access logging at ~100 µs of a cache hit's ~600 under the server, ~22 µs of it
    in-process this chain. ``time`` is the record's creation time rather than the chain's
    clock reading a few µs later. Every other record goes through the chain.
    """

    def __init__(self, service: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        if record.name != ACCESS_LOGGER or record.exc_info or not isinstance(record.msg, str):
            return str(super().format(record))
        line: dict[str, Any] = {"event": record.getMessage()}
        for key, value in structlog.contextvars.get_contextvars().items():
            if not (key in CONTEXT_KEYS and value in (None, "")):
                line[key] = _redacted(key, value)
        line["level"] = record.levelname.lower()
        line["logger"] = record.name
        line["time"] = _iso_utc(record.created)
        line["service"] = self._service
        return json.dumps(line, ensure_ascii=False, default=str)


def _iso_utc(created: float) -> str:
    """``created`` (epoch seconds) as structlog's ``TimeStamper(fmt="iso", utc=True)`` writes
    a time: ``2026-12-07T05:56:01.791895Z``."""
    stamp = dt.datetime.fromtimestamp(created, dt.UTC).replace(tzinfo=None)
    return stamp.isoformat() + "Z"


def configure_structlog(service: str) -> None:
    """Make structlog loggers render through the standard library (see ``configure_logging``).

    Enough where something else installs the JSON handler (gunicorn's ``logconfig_dict`` with
    ``json_formatter``); idempotent.
    """
    structlog.configure(
        processors=[
            *_shared_processors(service),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def configure_logging(service: str, *, level: str = "INFO", stream: TextIO | None = None) -> None:
    """Route structlog and the standard library's logging to one JSON handler on ``stream``
    (default ``sys.stderr``) at ``level`` (a level name: ``DEBUG``, ``INFO``, ...).

    Replaces the root logger's handlers; loggers that propagate (Celery's and kombu's, once
    Celery is told not to set up logging) then write JSON too. Idempotent.
    """
    configure_structlog(service)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(json_formatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    quiet_payload_loggers()
    logging.captureWarnings(True)  # warnings become JSON lines too (logger ``py.warnings``)


def quiet_payload_loggers() -> None:
    """Raise every logger of ``PAYLOAD_LOGGERS`` to INFO when it is set lower (or unset)."""
    for name in PAYLOAD_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.INFO:
            logger.setLevel(logging.INFO)


def get_logger(name: str) -> Any:
    """A structlog logger named ``name`` (``log.info("event applied", status=...)``)."""
    return structlog.get_logger(name)


def bind_context(**values: str | None) -> None:
    """Bind ``values`` (``request_id=...``) to every line logged from this thread or task until
    ``clear_context``; ``None`` values are skipped."""
    structlog.contextvars.bind_contextvars(**{k: v for k, v in values.items() if v is not None})


def bound_context() -> dict[str, Any]:
    """What ``bind_context`` bound in this thread or task so far (a copy)."""
    return dict(structlog.contextvars.get_contextvars())


def clear_context() -> None:
    """Forget every value bound with ``bind_context`` in this thread or task."""
    structlog.contextvars.clear_contextvars()


@contextmanager
def context(**values: str | None) -> Iterator[None]:
    """Bind ``values`` for the ``with`` block, then restore what was bound before."""
    before: MutableMapping[str, Any] = dict(structlog.contextvars.get_contextvars())
    bind_context(**values)
    try:
        yield
    finally:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(**before)
