"""Query-string parsing for the query API's blueprints: errors are 400, unknown names refused."""

from __future__ import annotations

import marshmallow as ma
from flask_smorest import Blueprint
from webargs.flaskparser import FlaskParser


class QueryStringParser(FlaskParser):
    """webargs parser that answers 400 (not webargs' 422) for a bad query string."""

    DEFAULT_VALIDATION_STATUS = 400


class QueryBlueprint(Blueprint):  # type: ignore[misc]  # flask-smorest ships no type hints
    """A flask-smorest blueprint whose arguments refuse unknown parameters (webargs would drop
    them from the query string by default) and fail with 400."""

    ARGUMENTS_PARSER = QueryStringParser(unknown=ma.RAISE)
