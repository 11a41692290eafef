"""flask-smorest settings both APIs share: OpenAPI 3.1 at ``/openapi.json``
(docs/architecture.md §6). Swagger UI at ``/docs`` is ``contacts_http.docs``, served by the app
itself."""

from __future__ import annotations

from typing import Any, Final

from apispec import BasePlugin

#: Code points that no text field or parameter of the APIs accepts
#: (``contacts_domain.values.clean_text``), as the inside of a JSON Schema (ECMA-262) character
#: class: control characters (C0, DEL, C1), bidirectional embedding, override and isolate
#: controls, and the noncharacters of the Basic Multilingual Plane. (The noncharacters of the
#: other planes, U+1FFFE..., are refused too; a pattern without ECMA-262's ``u`` flag cannot
#: name them.) Found by the contract fuzzer: a name holding U+FDE9 matched the pattern.
_REFUSED: Final = (
    "\\u0000-\\u001f\\u007f-\\u009f\\u202a-\\u202e\\u2066-\\u2069\\ufdd0-\\ufdef\\ufffe\\uffff"
)
#: One code point a text may hold (JSON Schema character class).
NO_CONTROL: Final = f"[^{_REFUSED}]"
#: A one-line text with at least one character that is not white space, and none of the
#: refused ones: what a name, a search or a tag must be (JSON Schema ``pattern``).
VISIBLE_TEXT: Final = f"^{NO_CONTROL}*[^\\s{_REFUSED}]{NO_CONTROL}*$"


class SchemaExtras(BasePlugin):  # type: ignore[misc]
    """An apispec plugin adding a marshmallow schema's ``OPENAPI_EXTRA`` (a dict of JSON Schema
    keywords: ``allOf``, ``anyOf``, ``minProperties``...) to its component: the rules across
    fields that marshmallow fields cannot describe. Give it after marshmallow's plugin."""

    def schema_helper(self, name: str, definition: Any, **kwargs: Any) -> dict[str, Any] | None:
        schema = kwargs.get("schema")
        extra = getattr(schema, "OPENAPI_EXTRA", None)
        return dict(extra) if extra else None


def openapi_config(title: str, description: str | None = None) -> dict[str, Any]:
    """Return the Flask config keys flask-smorest reads, for an API called ``title``.

    flask-smorest's own Swagger UI page is off (it loads its scripts from a CDN): register
    ``docs_blueprint`` for ``/docs``.
    """
    config: dict[str, Any] = {
        "API_TITLE": title,
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.1.0",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
    }
    if description:
        config["API_SPEC_OPTIONS"] = {"info": {"description": description}}
    return config
