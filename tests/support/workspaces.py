"""Callers of several workspaces for end-to-end tests (docs/architecture.md §10).

``WorkspaceCallers`` makes, for each workspace role of a test session (``"iso-a"``...), an API
key bound to the workspace ``<role>-<run id>`` (``AUTH_API_KEY_HASHES`` entries
``<sha256>@<workspace>=<scopes>``), and serves a JWK Set so that JWTs whose ``org_id`` claim
names ``j<role>-<run id>`` act in that workspace (``AUTH_JWT_WORKSPACE_CLAIM=org_id``). Its
``env()`` configures both APIs for both at once, besides the session's own key (``default``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Final

import requests

from contacts_http.auth import format_api_key_hashes, hash_api_key, new_api_key
from contacts_http.auth import scopes as scope_names
from support.auth import AUTH_ENV
from support.jwks import AUDIENCE, ISSUER, JwksServer, SigningKeys

#: The kinds of credentials every workspace test runs with.
CREDENTIAL_KINDS: Final = ("api-key", "jwt")
#: A workspace's own client: everything but ``contacts:admin``.
CLIENT_SCOPES: Final = " ".join(sorted(scope_names.ALL))
WORKSPACE_CLAIM: Final = "org_id"


@dataclass(frozen=True)
class Caller:
    """A client of one workspace: ``workspace`` and the ``Authorization`` header it sends."""

    workspace: str
    headers: dict[str, str] = field(repr=False)

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """``requests.request`` with this caller's credentials added to ``headers``."""
        headers = {**self.headers, **(kwargs.pop("headers", None) or {})}
        return requests.request(method, url, headers=headers, timeout=30, **kwargs)

    def wait_operation(self, query_url: str, operation_id: str, timeout_s: float = 60) -> Any:
        """Poll ``GET /v1/operations/{id}`` as this caller until it is not ``pending``; returns
        the last answer's body (the problem when it stays 404). Raises ``AssertionError``
        after ``timeout_s`` seconds."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            answer = self.request("GET", f"{query_url}/v1/operations/{operation_id}")
            if answer.status_code == 200 and answer.json()["status"] != "pending":
                return answer.json()
            time.sleep(0.05)
        raise AssertionError(f"operation {operation_id}: {answer.status_code} {answer.text}")

    def wait_import(self, query_url: str, import_id: str, timeout_s: float = 60) -> Any:
        """Poll ``GET /v1/imports/{id}`` as this caller until ``completed``; returns its body.
        Raises ``AssertionError`` after ``timeout_s`` seconds."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            answer = self.request("GET", f"{query_url}/v1/imports/{import_id}")
            if answer.status_code == 200 and answer.json()["status"] == "completed":
                return answer.json()
            time.sleep(0.05)
        raise AssertionError(f"import {import_id}: {answer.status_code} {answer.text}")


class WorkspaceCallers:
    """API keys and a JWT issuer for the workspaces ``roles`` of run ``run_id``; call
    ``start()`` before ``env()`` and ``stop()`` at the end (it serves the JWK Set)."""

    def __init__(self, run_id: str, roles: tuple[str, ...]) -> None:
        self.run_id = run_id
        self.api_keys = {self.workspace("api-key", role): new_api_key() for role in roles}
        self.signing_keys = SigningKeys()
        self.jwks = JwksServer(self.signing_keys)

    def workspace(self, kind: str, role: str) -> str:
        """The workspace of ``role`` for credentials of ``kind`` (one of ``CREDENTIAL_KINDS``)."""
        return f"{'j' if kind == 'jwt' else ''}{role}-{self.run_id}"

    def caller(self, kind: str, role: str) -> Caller:
        """A client of ``role``'s workspace with an API key or a JWT (valid 5 minutes: mint
        another caller for longer tests)."""
        workspace = self.workspace(kind, role)
        if kind == "api-key":
            token = self.api_keys[workspace]
        else:
            token = self.signing_keys.mint(
                "RS256", scope=CLIENT_SCOPES, sub=f"user-of-{workspace}", org_id=workspace
            )
        return Caller(workspace, {"Authorization": f"Bearer {token}"})

    def start(self) -> WorkspaceCallers:
        self.jwks.start()
        return self

    def stop(self) -> None:
        self.jwks.stop()

    def env(self) -> dict[str, str]:
        """Settings of both APIs: the session's key (``default``), one key per workspace and
        JWTs of this JWK Set with the workspace in ``org_id``."""
        entries = [AUTH_ENV["AUTH_API_KEY_HASHES"]] + [
            format_api_key_hashes({hash_api_key(key): scope_names.ALL}, workspace)
            for workspace, key in self.api_keys.items()
        ]
        return {
            "AUTH_API_KEY_HASHES": ";".join(entries),
            "AUTH_JWKS_URL": self.jwks.url,
            "AUTH_JWT_ISSUER": ISSUER,
            "AUTH_JWT_AUDIENCE": AUDIENCE,
            "AUTH_JWT_WORKSPACE_CLAIM": WORKSPACE_CLAIM,
        }
