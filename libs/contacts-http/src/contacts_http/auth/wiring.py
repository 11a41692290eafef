"""One call per concern for an app factory: authentication (before the routes are registered)
and rate limits (after), wired from settings, every collaborator injectable."""

from __future__ import annotations

import logging

import flask_smorest
from flask import Flask, request
from flask_limiter import Limiter

from contacts_http.auth.failure_limit import AuthFailureLimiter, AuthFailureMetrics
from contacts_http.auth.guard import (
    AuthPolicy,
    init_auth,
    rate_limit_identity,
    rate_limit_workspace,
)
from contacts_http.auth.openapi import document_bearer_auth
from contacts_http.auth.principal import Authenticator
from contacts_http.auth.settings import AuthSettings, build_authenticator
from contacts_http.rate_limits import RateLimitSettings, RateLimitStorage, init_rate_limits
from contacts_telemetry.metrics import MetricsRegistry

logger = logging.getLogger("contacts_http.auth")

SCHEME_DESCRIPTION = (
    "An API key or a JWT from the identity provider, as `Authorization: Bearer <token>`. "
    "Scopes: `contacts:write` (command API), `contacts:read` (query API)."
)


def install_auth(
    app: Flask,
    api: flask_smorest.Api,
    settings: AuthSettings,
    policy: AuthPolicy,
    *,
    metrics: MetricsRegistry,
    authenticator: Authenticator | None = None,
) -> None:
    """Document the bearer scheme in ``api`` and guard ``app`` (``init_auth``).

    ``authenticator`` replaces the one built from ``settings`` (tests pass fakes of the port);
    ``settings.disabled`` turns the guard off with a start-up warning. Refused tokens are
    limited per client address (``settings.failure_limit``, ``AuthFailureLimiter``), counted in
    ``metrics`` (``AuthFailureMetrics``). Call before registering the blueprints. Logs an
    error when authentication is on but no scheme is configured (then every request is
    refused: it fails closed).
    """
    document_bearer_auth(api, SCHEME_DESCRIPTION)
    if settings.disabled:
        init_auth(app, None, policy)
        return
    if authenticator is None:
        built = build_authenticator(settings)
        if not built.configured:
            logger.error(
                "%s: no AUTH_API_KEY_HASHES and no AUTH_JWKS_URL: every request will be refused "
                "with 401 (set one, or AUTH_DISABLED=true on a local machine)",
                policy.realm,
            )
        authenticator = built
    failures = AuthFailureLimiter(
        settings.failure_limit,
        AuthFailureMetrics(metrics),
        trusted_proxies=settings.trusted_proxies,
    )
    init_auth(app, authenticator, policy, failures)


def install_rate_limits(
    app: Flask,
    settings: RateLimitSettings,
    storage: RateLimitStorage,
    policy: AuthPolicy,
    inline_endpoints: frozenset[str] = frozenset(),
    counted_first: frozenset[str] = frozenset(),
) -> Limiter | None:
    """Rate-limit ``app``'s guarded routes per caller and per workspace (``init_rate_limits``,
    ``rate_limit_identity``, ``rate_limit_workspace``); the paths open under ``policy`` are
    never limited; ``inline_endpoints`` count their own (``rate_limits.InlineRateLimits``),
    ``counted_first`` endpoints in one Redis round trip before their view. Call
    after registering the blueprints."""
    return init_rate_limits(
        app,
        settings,
        storage,
        identity=rate_limit_identity,
        exempt=lambda: policy.is_open(request.path, request.method),
        workspace=rate_limit_workspace,
        inline_endpoints=inline_endpoints,
        counted_first=counted_first,
    )
