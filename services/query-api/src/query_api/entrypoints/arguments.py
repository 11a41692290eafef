"""Query-string parsing for the query API's blueprints: errors are 400, unknown names refused."""

from __future__ import annotations

from typing import ClassVar

import marshmallow as ma
from flask_smorest import Blueprint
from webargs.flaskparser import FlaskParser


class QueryStringParser(FlaskParser):
    """webargs parser that answers 400 (not 422) for a bad query string and, unlike webargs'
    default for the query location, refuses unknown parameters."""

    DEFAULT_VALIDATION_STATUS = 400
    DEFAULT_UNKNOWN_BY_LOCATION: ClassVar[dict[str, str | None]] = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "query": ma.RAISE,
        "querystring": ma.RAISE,
    }


class QueryBlueprint(Blueprint):
    """A flask-smorest blueprint using ``QueryStringParser``."""

    ARGUMENTS_PARSER = QueryStringParser()
