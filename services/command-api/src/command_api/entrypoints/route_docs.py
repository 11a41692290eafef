"""flask-smorest's documentation decorators applied by a blueprint factory to module-level views.

The views of this API are plain module-level functions (they can be named and read alone); the
blueprint factories (``contacts_blueprint``, ``imports_blueprint``) wrap them with the
decorators of their own ``Blueprint``. The decorators return new functions (flask-smorest copies
the documentation it attaches), so the module's functions are never changed and each app gets
views of its own blueprint.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

from flask_smorest import Blueprint

View = TypeVar("View", bound=Callable[..., Any])


def decorated(view: View, *decorators: Callable[[View], View]) -> View:
    """``view`` under ``decorators``, listed outermost first as they would be stacked with
    ``@`` above a ``def``."""
    for decorate in reversed(decorators):
        view = decorate(view)
    return view


def alt_responses(blp: Blueprint, *statuses: int) -> Callable[[View], View]:
    """A decorator documenting each of ``statuses`` with the shared response of that name
    (``BAD_REQUEST``, ``PRECONDITION_FAILED``...: problem+json, registered by
    ``contacts_http.ProblemApi``)."""

    def decorate(view: View) -> View:
        for status in statuses:
            view = blp.alt_response(status, response=HTTPStatus(status).name)(view)
        return view

    return decorate
