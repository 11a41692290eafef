"""An identity provider for tests: keys generated here, a JWK Set served over real HTTP, tokens
signed with those keys.

``JwksServer`` serves ``/.well-known/jwks.json`` from a ``http.server`` thread on 127.0.0.1 and
counts fetches; ``stop()`` closes it (then fetches fail as in an outage). ``mint`` signs a token
with RS256 or ES256 and any claims; ``foreign_rsa_key`` signs with a key the JWK Set does not
hold (a bad signature under a known ``kid``).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://idp.test/"
AUDIENCE = "contacts-api"


@dataclass
class SigningKeys:
    """One RSA (``rsa-1``) and one P-256 (``ec-1``) key pair."""

    rsa_key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    ec_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    def jwk_set(self) -> dict[str, Any]:
        rsa_jwk = json.loads(RSAAlgorithm.to_jwk(self.rsa_key.public_key()))
        ec_jwk = json.loads(ECAlgorithm.to_jwk(self.ec_key.public_key()))
        rsa_jwk.update(kid="rsa-1", alg="RS256", use="sig")
        ec_jwk.update(kid="ec-1", alg="ES256", use="sig")
        return {"keys": [rsa_jwk, ec_jwk]}

    def mint(self, algorithm: str = "RS256", *, key: Any = None, **claims: Any) -> str:
        """A token signed with ``algorithm`` (``RS256``: the RSA key, ``ES256``: the EC key,
        or ``key``); default claims: ``iss``, ``aud``, ``sub``, ``iat``, ``exp`` in 5 minutes,
        ``scope`` ``contacts:read contacts:write``. A claim given as ``None`` is left out."""
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "client-42",
            "iat": now,
            "exp": now + 300,
            "scope": "contacts:read contacts:write",
        }
        body.update(claims)
        body = {name: value for name, value in body.items() if value is not None}
        signing_key = key or (self.rsa_key if algorithm == "RS256" else self.ec_key)
        kid = "rsa-1" if algorithm == "RS256" else "ec-1"
        return jwt.encode(body, signing_key, algorithm=algorithm, headers={"kid": kid})


def foreign_rsa_key() -> rsa.RSAPrivateKey:
    """An RSA key no JWK Set of these tests holds."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class JwksServer:
    """Serves ``keys.jwk_set()`` at ``url`` until ``stop()``; ``fetches`` counts requests."""

    def __init__(self, keys: SigningKeys) -> None:
        self.keys = keys
        self.fetches = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.fetches += 1
                body = json.dumps(server.keys.jwk_set()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/.well-known/jwks.json"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def start(self) -> JwksServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
