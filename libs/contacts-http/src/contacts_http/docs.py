"""Interactive API docs at ``/docs``: Swagger UI served by the app itself (issue 14, item 2).

The page and every file it loads come from this origin: Swagger UI's assets from the pinned
``flask-swagger-ui`` wheel (its ``dist/`` is Swagger UI's own build; we use only those files,
not its blueprint, whose page holds an inline script), and our start-up script from this
package. No CDN is contacted, so the docs work without internet access, and the
``Content-Security-Policy`` below lets the page run, style, fetch and load nothing from
elsewhere (CSP Level 3, https://www.w3.org/TR/CSP3/).

Routes (all open: the auth guard exempts ``/docs`` and ``/docs/...``):

- ``GET /docs``: the page. ``<div id="swagger-ui" data-openapi-url="...">`` tells the script
  where the OpenAPI document is.
- ``GET /docs/swagger-ui/<version>/<file>``: Swagger UI's files (``ASSETS``), cached for a
  year: the version in the path changes with the wheel.
- ``GET /docs/init.js``: starts Swagger UI on the page.
"""

from __future__ import annotations

import html
from importlib import resources
from pathlib import Path
from typing import Final

from flask import Blueprint, Response, abort, send_from_directory

DOCS_PATH: Final = "/docs"
#: Swagger UI's files the page needs, from the wheel's ``dist/``; nothing else is served.
ASSETS: Final = frozenset(
    {
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "index.css",
        "favicon-16x16.png",
        "favicon-32x32.png",
    }
)
#: Only this origin. ``img-src data:`` because swagger-ui.css draws its icons as ``data:`` SVG
#: images (part of our own stylesheet, not another origin); Swagger UI sets element styles
#: through the DOM, which ``style-src 'self'`` allows, and needs no ``eval``.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
ASSET_CACHE_CONTROL: Final = "public, max-age=31536000, immutable"

_PAGE: Final = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title}</title>
  <link rel="stylesheet" href="{assets}/swagger-ui.css">
  <link rel="stylesheet" href="{assets}/index.css">
  <link rel="icon" type="image/png" href="{assets}/favicon-32x32.png" sizes="32x32">
  <link rel="icon" type="image/png" href="{assets}/favicon-16x16.png" sizes="16x16">
</head>
<body>
  <div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
  <script src="{assets}/swagger-ui-bundle.js"></script>
  <script src="{docs}/init.js"></script>
</body>
</html>
"""


def swagger_ui_dist() -> tuple[Path, str]:
    """The directory of Swagger UI's build in the ``flask-swagger-ui`` wheel and its version
    (``"5.34.0"``, from its ``VERSION`` file). Raises ``FileNotFoundError`` if the wheel is
    not installed as expected."""
    dist = Path(str(resources.files("flask_swagger_ui") / "dist"))
    version = (dist / "VERSION").read_text(encoding="ascii").strip().removeprefix("v")
    return dist, version


def docs_blueprint(title: str, openapi_url: str = "/openapi.json") -> Blueprint:
    """The ``/docs`` routes above for an API called ``title`` whose OpenAPI document is at
    ``openapi_url`` (a path on this origin). Every answer carries ``CONTENT_SECURITY_POLICY``."""
    dist, version = swagger_ui_dist()
    assets_path = f"{DOCS_PATH}/swagger-ui/{version}"
    page = _PAGE.format(
        title=html.escape(title),
        assets=assets_path,
        docs=DOCS_PATH,
        openapi_url=html.escape(openapi_url),
    )
    init_script = (resources.files("contacts_http") / "docs_assets" / "init.js").read_bytes()
    blueprint = Blueprint("docs", __name__)

    @blueprint.get(DOCS_PATH)
    def docs_page() -> Response:
        return Response(page, mimetype="text/html")

    @blueprint.get(f"{DOCS_PATH}/init.js")
    def docs_init() -> Response:
        return Response(init_script, mimetype="text/javascript")

    @blueprint.get(f"{assets_path}/<name>")
    def docs_asset(name: str) -> Response:
        if name not in ASSETS:
            abort(404)
        response = send_from_directory(dist, name, max_age=None)
        response.headers["Cache-Control"] = ASSET_CACHE_CONTROL
        return response

    @blueprint.after_request
    def content_security_policy(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return response

    return blueprint
