"""contacts_http: the Flask pieces both contacts APIs share (docs/architecture.md §6).

Usage in an app factory::

    app = Flask(__name__)
    api = ProblemApi(app)                   # flask-smorest Api; every error → problem+json
    init_request_id(app)                    # X-Request-ID in, out, and current_request_id()
    init_body_limit(app)                    # MAX_CONTENT_LENGTH holds for chunked bodies
    app.register_blueprint(health_blueprint({"redis": redis_client.ping}, timeout_s=1.0))

- ``problems``: ``ProblemApi``, ``init_problem_handlers``, ``ProblemError``, ``abort_problem``,
  ``problem_response``, ``flatten_errors`` and the problem type constants.
- ``request_id``: ``init_request_id``, ``current_request_id``, ``RequestIdLogFilter``.
- ``health``: ``health_blueprint``, ``run_checks``.
- ``openapi``: ``openapi_config`` (the flask-smorest settings of both APIs).
- ``docs``: ``docs_blueprint`` (Swagger UI at ``/docs`` from this origin only, with a CSP).
- ``bodies``: ``init_body_limit`` (``MAX_CONTENT_LENGTH`` → 413 for chunked bodies too; a
  ``Content-Encoding`` → 415) and ``parse_json_body`` (JSON no deeper than ``JSON_MAX_DEPTH``,
  else ``JsonTooDeep``).
- ``routing``: ``init_routing_answers`` (``OPTIONS`` → 204 with ``Allow``; a trailing slash →
  308 to the route's path).
- ``gunicorn_workers`` (import it by name, as gunicorn's ``worker_class``): sync and gthread
  workers that answer gunicorn's own refusals (400, 414, 431, 501) as problems.
- ``request_buffering`` (import it by name, as gunicorn's ``worker_class``): the gthread worker
  of both APIs, whose loop reads each request whole under deadlines (``request_framing``
  finds where a request ends) and writes each response under deadlines, so slow clients hold
  no thread, whether they send or read slowly, and ``/healthz`` has its own.
- ``repeated_fields``: ``single_header`` (400 for a one-value header sent on several field
  lines, which the worker names in the environ: ``REPEATED_FIELDS``).
- ``auth`` (import it by name): bearer authentication with API keys and JWTs, scopes, the
  Flask guard and its settings (``install_auth``, ``install_rate_limits``).
- ``rate_limits``: per-caller limits with flask-limiter, counted in Redis.
- ``security_headers``: ``nosniff``, default ``Cache-Control: no-store``, ``Vary: Authorization``.

No SQS or database imports; ``rate_limits`` talks to Redis through flask-limiter.
"""

from contacts_http.bodies import (
    JSON_MAX_DEPTH,
    DuplicateJsonKey,
    JsonBodyRefused,
    JsonTooDeep,
    init_body_limit,
    parse_json_body,
)
from contacts_http.docs import docs_blueprint
from contacts_http.health import Check, health_blueprint, run_checks
from contacts_http.openapi import openapi_config
from contacts_http.problems import (
    ABOUT_BLANK,
    MEDIA_TYPE_PROBLEM,
    PROBLEM_JSON,
    VALIDATION_PROBLEM,
    ProblemApi,
    ProblemError,
    ProblemSchema,
    abort_problem,
    flatten_errors,
    init_problem_handlers,
    problem_from_http_exception,
    problem_response,
)
from contacts_http.request_id import (
    REQUEST_ID_HEADER,
    RequestIdLogFilter,
    current_request_id,
    init_request_id,
)
from contacts_http.routing import init_routing_answers

__all__ = [
    "ABOUT_BLANK",
    "JSON_MAX_DEPTH",
    "MEDIA_TYPE_PROBLEM",
    "PROBLEM_JSON",
    "REQUEST_ID_HEADER",
    "VALIDATION_PROBLEM",
    "Check",
    "DuplicateJsonKey",
    "JsonBodyRefused",
    "JsonTooDeep",
    "ProblemApi",
    "ProblemError",
    "ProblemSchema",
    "RequestIdLogFilter",
    "abort_problem",
    "current_request_id",
    "docs_blueprint",
    "flatten_errors",
    "health_blueprint",
    "init_body_limit",
    "init_problem_handlers",
    "init_request_id",
    "init_routing_answers",
    "openapi_config",
    "parse_json_body",
    "problem_from_http_exception",
    "problem_response",
    "run_checks",
]
