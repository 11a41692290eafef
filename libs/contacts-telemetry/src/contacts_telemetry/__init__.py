"""contacts_telemetry: logs, metrics and trace context shared by the contacts services.

- ``logs``: ``configure_logging`` (JSON lines through structlog for structlog and stdlib
  loggers), ``redact_pii``, ``bind_context``/``clear_context``/``context``, ``json_formatter``.
- ``metrics``: ``MetricsRegistry`` and the multi-process directory helpers of prometheus-client.
- ``trace``: ``valid_traceparent`` (W3C Trace Context).

No Flask, Celery or server imports: each service wires these at its composition root.
"""
