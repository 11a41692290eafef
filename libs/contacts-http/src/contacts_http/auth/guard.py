"""The Flask side of authentication: a ``before_request`` guard that demands a bearer token
with the scope the route needs (RFC 6750), and answers refusals as problems (RFC 9457).

- No bearer credentials (no ``Authorization`` header, another scheme, or ``Bearer`` with no
  token after it): 401 with ``WWW-Authenticate: Bearer realm="<realm>"`` (RFC 6750 §3.1: no
  error code when the request carried no bearer credentials); not a refused token, so it does
  not count towards the failure limit.
- A bearer token the ``Authenticator`` refuses (unknown key, bad JWT): 401 with
  ``error="invalid_token"`` and a safe ``error_description``.
- A valid token without the route's scope: 403 with ``error="insufficient_scope"`` and
  ``scope="<needed>"``.
- The token cannot be checked now (JWKS down): 503 with ``Retry-After``.
- The client address has had too many tokens refused (``AuthFailureLimiter``): 429 with
  ``Retry-After``, answered before the token is hashed or its signature checked.

Paths in ``AuthPolicy.open_paths`` (health, readiness, metrics, the OpenAPI document and its
docs page) and every ``OPTIONS`` request (CORS preflights carry no credentials, Fetch standard
§3.2.2) are never guarded. The caller of a request is authenticated once and remembered on
``flask.g`` (``request_principal``); the rate limiter, installed after the guard, keys on it.
Refused requests never reach the per-caller limiter: API keys are 256 random bits and JWTs are
signed, so guessing is hopeless; what a flood of bad tokens can do is burn CPU on hashes and
signature checks, which the failure limit per client address (``failure_limit``) bounds.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, NoReturn

from flask import Flask, current_app, g, request

from contacts_domain.workspaces import DEFAULT_WORKSPACE, InvalidWorkspace, check_workspace
from contacts_http.auth.failure_limit import AuthFailureLimiter
from contacts_http.auth.principal import Authenticator, AuthUnavailable, InvalidToken, Principal
from contacts_http.auth.scopes import ADMIN
from contacts_http.problems import ProblemError
from contacts_http.repeated_fields import BAD_HEADER_PROBLEM, REPEATED_FIELDS, single_header
from contacts_telemetry.logs import bind_context

#: Paths that never need a token.
OPEN_PATHS: Final = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"})
INVALID_TOKEN_PROBLEM: Final = "urn:contacts:problem:invalid-token"
INSUFFICIENT_SCOPE_PROBLEM: Final = "urn:contacts:problem:insufficient-scope"
AUTH_UNAVAILABLE_PROBLEM: Final = "urn:contacts:problem:auth-unavailable"
TOO_MANY_FAILURES_PROBLEM: Final = "urn:contacts:problem:too-many-auth-failures"
NO_WORKSPACE_PROBLEM: Final = "urn:contacts:problem:no-workspace"
WORKSPACE_NOT_ALLOWED_PROBLEM: Final = "urn:contacts:problem:workspace-not-allowed"
#: The header an operator (scope ``contacts:admin``) names the workspace it acts on with.
WORKSPACE_HEADER: Final = "X-Contacts-Workspace"
#: ``Retry-After`` (seconds) of the 503 answered while the JWKS cannot be fetched.
AUTH_RETRY_AFTER_S: Final = 5
EXTENSION: Final = "contacts_http.auth"

logger = logging.getLogger("contacts_http.auth")


@dataclass(frozen=True, slots=True)
class AuthPolicy:
    """What the guard demands.

    ``realm`` names the API in ``WWW-Authenticate``; ``default_scope`` is needed by every
    guarded route unless ``route_scopes`` (Flask endpoint, e.g. ``contacts.list_contacts``
    → scope) names another; ``open_paths`` are never guarded.
    """

    realm: str
    default_scope: str
    route_scopes: Mapping[str, str] = field(default_factory=dict)
    open_paths: frozenset[str] = OPEN_PATHS

    def is_open(self, path: str, method: str) -> bool:
        """Whether a request to ``path`` with ``method`` needs no token."""
        return method == "OPTIONS" or path in self.open_paths or path.startswith("/docs/")


class TooManyFailures(Exception):
    """The client address is over the failure limit: its token was not checked; retry after
    ``retry_after_s`` seconds."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"Too many refused tokens from this address; retry in {retry_after_s} s.")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class _Guard:
    authenticator: Authenticator | None
    policy: AuthPolicy
    failures: AuthFailureLimiter | None


@dataclass(frozen=True, slots=True)
class _Outcome:
    principal: Principal | None = None
    error: Exception | None = None
    bearer: bool = False


def init_auth(
    app: Flask,
    authenticator: Authenticator | None,
    policy: AuthPolicy,
    failures: AuthFailureLimiter | None = None,
) -> None:
    """Guard every route of ``app`` with ``authenticator`` under ``policy``.

    ``authenticator=None`` turns authentication off (an explicit setting, ``AUTH_DISABLED``):
    every route is open and a warning is logged now, at start-up. ``failures`` counts refused
    tokens per client address and stops checking tokens from an address over its limit
    (``None``: no limit). Call it before the rate limiter is initialised, so the guard's
    ``before_request`` runs first.
    """
    app.extensions[EXTENSION] = _Guard(authenticator, policy, failures)
    if authenticator is None:
        logger.warning(
            "authentication is DISABLED (AUTH_DISABLED=true): every route of %s is open to "
            "anyone who can reach it; never run like this outside a local machine",
            policy.realm,
        )
        return

    app.before_request(_guard_request)


def plain_caller(guard: Any, environ: Mapping[str, Any], endpoint: str) -> Principal | None:
    """The caller of a request (its WSGI ``environ``) that ``guard`` (the app's
    ``app.extensions[EXTENSION]``) would let through to ``endpoint`` without answering,
    counting or logging anything: a bearer token its ``Authenticator`` accepts, with the
    route's scope and a workspace of its own, from an address under its failure limit.

    ``None`` for anything else (no bearer token or two ``Authorization`` field lines, a
    refused or uncheckable token, an address
    over its limit, a missing scope or workspace, authentication off): the WSGI fast paths
    (the query API's hot ``GET``, the command API's ``POST /v1/contacts``) then leave the
    request to Flask, whose guard answers it. Never raises for a token."""
    if guard.authenticator is None or "AUTHORIZATION" in environ.get(REPEATED_FIELDS, ()):
        return None
    token = bearer_token(str(environ.get("HTTP_AUTHORIZATION", "")))
    if token is None:
        return None
    failures = guard.failures
    if failures is not None:
        address = failures.client_address(
            environ.get("REMOTE_ADDR"), environ.get("HTTP_X_FORWARDED_FOR")
        )
        if failures.throttled(address):  # the guard refuses it, and counts that
            return None
    try:
        principal: Principal = guard.authenticator.authenticate(token)
    except Exception:  # refused or unchecked: the guard answers (and counts the failure)
        return None
    needed = guard.policy.route_scopes.get(endpoint, guard.policy.default_scope)
    if needed not in principal.scopes or principal.workspace is None:
        return None
    return principal


def bearer_token(authorization: str) -> str | None:
    """The token of an ``Authorization`` field value, or ``None`` when it carries no bearer
    credentials: another scheme, or ``Bearer`` with nothing (or only spaces) after it, which is
    no token at all (RFC 6750 §2.1: ``b64token`` is one or more characters), not a wrong one."""
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _guard_request() -> None:
    """``init_auth``'s ``before_request`` hook: authenticate, then authorize, the request.

    Raises ``ProblemError``: 429 for an address over its failure limit, 503 when the token
    cannot be checked, 401 without a valid token, 403 without the route's scope or a
    workspace. Remembers the request's workspace (``request_workspace``) and binds it to every
    log line of the request."""
    policy = current_app.extensions[EXTENSION].policy
    if policy.is_open(request.path, request.method):
        return
    outcome = _authenticate()
    if isinstance(outcome.error, TooManyFailures):
        raise ProblemError(
            429,
            str(outcome.error),
            type_uri=TOO_MANY_FAILURES_PROBLEM,
            headers={"Retry-After": str(outcome.error.retry_after_s)},
        )
    if isinstance(outcome.error, AuthUnavailable):
        logger.warning("authentication unavailable: %s", outcome.error)
        raise ProblemError(
            503,
            "The token cannot be checked right now; retry later.",
            type_uri=AUTH_UNAVAILABLE_PROBLEM,
            headers={"Retry-After": str(AUTH_RETRY_AFTER_S)},
        )
    if outcome.principal is None:
        _refuse_unauthenticated(policy.realm, outcome)
    needed = policy.route_scopes.get(request.endpoint or "", policy.default_scope)
    if needed not in outcome.principal.scopes:
        _refuse_insufficient_scope(policy.realm, needed)
    workspace = _workspace_of(outcome.principal)
    g._contacts_workspace = workspace
    bind_context(workspace=workspace)


def _workspace_of(principal: Principal) -> str:
    """The workspace ``principal`` acts on: its own, or, for an operator (``contacts:admin``),
    the one ``X-Contacts-Workspace`` names (logged). Raises ``ProblemError`` 403 when the
    identity names no workspace or a non-operator names one, 400 for a header that is no
    workspace id or is sent more than once (``repeated_fields.single_header``)."""
    named = request.headers.get(WORKSPACE_HEADER)
    if named is not None:
        if ADMIN not in principal.scopes:
            raise ProblemError(
                403,
                f"Only a caller with the scope {ADMIN} may name a workspace in {WORKSPACE_HEADER}.",
                type_uri=WORKSPACE_NOT_ALLOWED_PROBLEM,
            )
        workspace = _header_workspace(named)
        logger.info(
            "operator request: %s acts on workspace %s",
            principal.subject,
            workspace,
            extra={"caller": principal.subject, "workspace": workspace},
        )
        return workspace
    if principal.workspace is None:
        raise ProblemError(
            403,
            "The token names no workspace: it lacks the claim the service is configured to "
            "read (AUTH_JWT_WORKSPACE_CLAIM).",
            type_uri=NO_WORKSPACE_PROBLEM,
        )
    return principal.workspace


def _header_workspace(named: str) -> str:
    single_header(request, WORKSPACE_HEADER)
    try:
        return check_workspace(named.strip())
    except InvalidWorkspace as exc:
        raise ProblemError(
            400,
            f"{WORKSPACE_HEADER}: {exc}",
            type_uri=BAD_HEADER_PROBLEM,
            errors={WORKSPACE_HEADER: [str(exc)]},
        ) from None


def request_workspace() -> str:
    """The workspace of the current request (docs/architecture.md §10): decided by the caller's
    identity in the guard. With authentication off (local use only) every request is in
    ``default``, or in the workspace ``X-Contacts-Workspace`` names. Raises ``RuntimeError``
    when called on a request the guard did not authorize (an open path)."""
    workspace: str | None = g.get("_contacts_workspace")
    if workspace is not None:
        return workspace
    if _configured().authenticator is not None:
        raise RuntimeError("request_workspace() outside an authorized request")
    named = request.headers.get(WORKSPACE_HEADER)
    workspace = DEFAULT_WORKSPACE if named is None else _header_workspace(named)
    g._contacts_workspace = workspace
    bind_context(workspace=workspace)
    return workspace


def _refuse_insufficient_scope(realm: str, needed: str) -> NoReturn:
    raise ProblemError(
        403,
        f"The token lacks the scope {needed}.",
        type_uri=INSUFFICIENT_SCOPE_PROBLEM,
        headers={
            "WWW-Authenticate": _challenge(
                realm,
                error="insufficient_scope",
                error_description=f"The token lacks the scope {needed}.",
                scope=needed,
            )
        },
    )


def request_principal() -> Principal | None:
    """The caller of the current request, authenticated at most once per request; ``None``
    when authentication is off, the path is open, or the token was missing or refused."""
    configured = _configured()
    if configured.authenticator is None or configured.policy.is_open(request.path, request.method):
        return None
    return _authenticate().principal


def rate_limit_identity() -> str:
    """Whom a rate limit counts for: the principal's ``rate_limit_key``, or ``ip:<address>``
    when authentication is off."""
    principal = request_principal()
    if principal is not None:
        return principal.rate_limit_key
    return f"ip:{request.remote_addr or 'unknown'}"


def rate_limit_workspace() -> str:
    """Whose workspace limit a request counts for: ``ws:<workspace>`` (``request_workspace``).
    Never raises (the rate limiter would take an error for a storage failure): with
    authentication off, an ``X-Contacts-Workspace`` that is no workspace id (the view answers
    400) counts for ``ws:?``."""
    try:
        return f"ws:{request_workspace()}"
    except ProblemError:
        return "ws:?"


def _configured() -> _Guard:
    configured: _Guard = current_app.extensions[EXTENSION]
    return configured


def _authenticate() -> _Outcome:
    cached = g.get("_contacts_auth")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    configured = _configured()
    assert configured.authenticator is not None
    # One credential per request (RFC 9110 §11.6.2): two field lines are a 400 naming the
    # field, not a token made of both (gunicorn joins them with a comma).
    token = bearer_token(single_header(request, "Authorization") or "")
    if token is None:
        outcome = _Outcome()
    elif configured.failures is None:
        outcome = _check(configured.authenticator, token)
    else:
        failures = configured.failures
        address = failures.client_address(
            request.remote_addr, request.headers.get("X-Forwarded-For")
        )
        # Checked before the token: an address over the limit costs no hash, no signature.
        wait = failures.retry_after(address)
        if wait is not None:
            outcome = _Outcome(error=TooManyFailures(wait), bearer=True)
        else:
            outcome = _check(configured.authenticator, token)
            if isinstance(outcome.error, InvalidToken):
                failures.record_failure(address)
    g._contacts_auth = outcome
    return outcome


def _check(authenticator: Authenticator, token: str) -> _Outcome:
    try:
        return _Outcome(authenticator.authenticate(token), bearer=True)
    except (InvalidToken, AuthUnavailable) as exc:
        return _Outcome(error=exc, bearer=True)
    except Exception:
        # Client input must never make a 500 (docs/architecture.md §6): a token that trips a
        # library bug is refused like any other bad token; the traceback goes to the log.
        logger.exception("authenticator failed on a token")
        return _Outcome(error=InvalidToken("The token is not valid."), bearer=True)


def _refuse_unauthenticated(realm: str, outcome: _Outcome) -> NoReturn:
    if not outcome.bearer:
        raise ProblemError(
            401,
            "Send a token: Authorization: Bearer <API key or JWT>.",
            type_uri=INVALID_TOKEN_PROBLEM,
            headers={"WWW-Authenticate": _challenge(realm)},
        )
    detail = str(outcome.error) if outcome.error is not None else "The token is not valid."
    raise ProblemError(
        401,
        detail,
        type_uri=INVALID_TOKEN_PROBLEM,
        headers={
            "WWW-Authenticate": _challenge(realm, error="invalid_token", error_description=detail)
        },
    )


def _challenge(realm: str, **params: str) -> str:
    """``Bearer realm="...", name="value", ...`` with quoted-string escaping (RFC 9110 §5.6.4)."""
    pairs = {"realm": realm, **params}
    return "Bearer " + ", ".join(f'{name}="{_quote(value)}"' for name, value in pairs.items())


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
