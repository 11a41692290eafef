"""``/docs`` is served from this origin only, under a Content-Security-Policy (issue 14)."""

from __future__ import annotations

import re
from importlib.metadata import version

import pytest
from flask import Flask
from flask.testing import FlaskClient

from contacts_http import docs_blueprint
from contacts_http.docs import ASSETS, CONTENT_SECURITY_POLICY


@pytest.fixture
def client() -> FlaskClient:
    app = Flask("docs_test")
    app.register_blueprint(docs_blueprint("Test <API>", "/openapi.json"))
    return app.test_client()


def linked_paths(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', page)


def test_the_page_loads_only_files_of_this_origin_and_has_no_inline_script(
    client: FlaskClient,
) -> None:
    response = client.get("/docs")

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    paths = linked_paths(page)
    assert paths, page
    assert all(path.startswith("/docs/") for path in paths), paths
    assert "//" not in "".join(paths)
    assert re.findall(r"<script(?![^>]*\ssrc=)[^>]*>", page) == [], "an inline script"
    assert " style=" not in page
    assert "<title>Test &lt;API&gt;</title>" in page
    assert 'data-openapi-url="/openapi.json"' in page


def test_every_linked_file_is_served_under_the_policy(client: FlaskClient) -> None:
    page = client.get("/docs").get_data(as_text=True)

    for path in ["/docs", *linked_paths(page)]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, path
        assert response.content_length, path


def test_the_policy_allows_this_origin_only() -> None:
    directives = dict(
        (part.split()[0], part.split()[1:]) for part in CONTENT_SECURITY_POLICY.split("; ")
    )

    assert directives["default-src"] == ["'none'"]
    for directive in ("script-src", "style-src", "connect-src"):
        assert directives[directive] == ["'self'"], directive
    assert directives["img-src"] == ["'self'", "data:"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert not any("unsafe" in value for values in directives.values() for value in values)


def test_swagger_ui_is_the_pinned_wheels_and_its_files_are_cached(client: FlaskClient) -> None:
    pinned = version("flask-swagger-ui")
    response = client.get(f"/docs/swagger-ui/{pinned}/swagger-ui-bundle.js")

    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert b"SwaggerUIBundle" in response.data
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert "swagger-ui-bundle.js" in ASSETS


@pytest.mark.parametrize("name", ["oauth2-redirect.html", "VERSION", "..%2fLICENSE", "nope.js"])
def test_files_the_page_does_not_need_are_not_served(client: FlaskClient, name: str) -> None:
    pinned = version("flask-swagger-ui")
    assert client.get(f"/docs/swagger-ui/{pinned}/{name}").status_code == 404
