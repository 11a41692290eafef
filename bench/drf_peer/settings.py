"""Django settings of the DRF peer: the database from ``QUERY_DATABASE_URL`` (the query API's
read-only role), ``DRF_WORKSPACE`` (default ``default``, the benchmark key's workspace) as the
only workspace it serves, JSON only, no authentication or throttling (a plain ``ModelViewSet``
with the framework's defaults for a public read API), persistent connections.
"""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

_url = urlsplit(
    os.environ.get(
        "QUERY_DATABASE_URL", "postgresql://contacts_reader@127.0.0.1:5432/contacts_bench"
    )
)

# Bench-only: no session, no signing, so never used.
SECRET_KEY = "bench-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
ROOT_URLCONF = "drf_peer.urls"
INSTALLED_APPS = ["rest_framework", "drf_peer"]
MIDDLEWARE: list[str] = []
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _url.path.lstrip("/"),
        "USER": unquote(_url.username or ""),
        "PASSWORD": unquote(_url.password or ""),
        "HOST": _url.hostname or "127.0.0.1",
        "PORT": str(_url.port or 5432),
        # One connection per gunicorn thread, kept (Django's production setting).
        "CONN_MAX_AGE": 600,
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "UNAUTHENTICATED_USER": None,
}
DRF_WORKSPACE = os.environ.get("DRF_WORKSPACE", "default")
