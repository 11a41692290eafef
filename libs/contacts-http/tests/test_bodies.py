"""MAX_CONTENT_LENGTH holds for chunked bodies (no Content-Length) too."""

from __future__ import annotations

import io
import json

import pytest
from flask import Flask, request
from werkzeug.test import EnvironBuilder, run_wsgi_app
from werkzeug.wrappers import Response

from contacts_http import (
    JSON_MAX_DEPTH,
    DuplicateJsonKey,
    JsonTooDeep,
    init_body_limit,
    init_problem_handlers,
    parse_json_body,
)


def make_app() -> Flask:
    app = Flask("bodies")
    app.config["MAX_CONTENT_LENGTH"] = 1000
    init_problem_handlers(app)
    init_body_limit(app)

    @app.post("/echo")
    def echo() -> dict:
        return {"length": len(request.get_data())}

    return app


class EndlessStream(io.RawIOBase):
    """A client that would send forever; counts what the server read."""

    def __init__(self) -> None:
        self.served = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        buffer[:] = b"x" * len(buffer)
        self.served += len(buffer)
        return len(buffer)


def chunked(app: Flask, stream: io.RawIOBase | io.BytesIO):  # type: ignore[no-untyped-def]
    environ = EnvironBuilder(
        path="/echo", method="POST", headers={"Transfer-Encoding": "chunked"}
    ).get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ["wsgi.input"] = stream
    environ["wsgi.input_terminated"] = True
    app_iter, status, headers = run_wsgi_app(app, environ)
    return Response(b"".join(app_iter), status=status, headers=headers)


def test_chunked_body_within_the_limit_is_read_whole() -> None:
    response = chunked(make_app(), io.BytesIO(b"y" * 1000))
    assert response.status_code == 200
    assert response.get_json() == {"length": 1000}


def test_chunked_body_past_the_limit_is_413_without_reading_the_rest() -> None:
    stream = EndlessStream()
    response = chunked(make_app(), stream)
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"
    assert stream.served <= 1001 + 64 * 1024


def make_app_with_a_bulk_route() -> Flask:
    """``/echo`` at the app's 1000 bytes, ``/bulk`` (endpoint ``bulk``) at 3000."""
    app = Flask("bodies")
    app.config["MAX_CONTENT_LENGTH"] = 1000
    init_problem_handlers(app)
    init_body_limit(app, endpoint_limits={"bulk": 3000})

    @app.post("/echo")
    def echo() -> dict:
        return {"length": len(request.get_data())}

    @app.post("/bulk")
    def bulk() -> dict:
        return {"length": len(request.get_data())}

    return app


@pytest.mark.parametrize(
    ("path", "size", "status"),
    [("/bulk", 3000, 200), ("/bulk", 3001, 413), ("/echo", 1000, 200), ("/echo", 1001, 413)],
)
def test_an_endpoint_may_have_its_own_limit(path: str, size: int, status: int) -> None:
    app = make_app_with_a_bulk_route()
    assert app.test_client().post(path, data=b"z" * size).status_code == status
    environ = EnvironBuilder(
        path=path, method="POST", headers={"Transfer-Encoding": "chunked"}
    ).get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ["wsgi.input"] = io.BytesIO(b"y" * size)
    environ["wsgi.input_terminated"] = True
    app_iter, streamed_status, _ = run_wsgi_app(app, environ)
    b"".join(app_iter)
    assert int(streamed_status.split()[0]) == status


def test_bodies_with_content_length_are_left_to_werkzeug() -> None:
    client = make_app().test_client()
    assert client.post("/echo", data=b"z" * 10).get_json() == {"length": 10}
    assert client.post("/echo", data=b"z" * 1001).status_code == 413


def nested(depth: int) -> str:
    """An object whose ``x`` holds arrays so that the whole body is ``depth`` levels deep."""
    return '{"x": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


def test_json_body_as_deep_as_the_limit_parses() -> None:
    assert parse_json_body(nested(JSON_MAX_DEPTH).encode())["x"]
    assert parse_json_body(b'{"addresses": [{"city": "Oslo"}]}', max_depth=3)
    assert parse_json_body(b"3", max_depth=1) == 3


def test_json_body_one_level_past_the_limit_is_too_deep() -> None:
    with pytest.raises(JsonTooDeep, match=f"deeper than {JSON_MAX_DEPTH} levels"):
        parse_json_body(nested(JSON_MAX_DEPTH + 1).encode())
    with pytest.raises(JsonTooDeep):
        parse_json_body(b'{"addresses": [{"city": ["Oslo"]}]}', max_depth=3)


@pytest.mark.parametrize("depth", [900, 5_000, 100_000])
def test_json_body_too_deep_for_the_decoder_is_too_deep_not_recursion_error(depth) -> None:
    # Around 1000 levels json.loads itself raises RecursionError; it must never escape.
    with pytest.raises(JsonTooDeep):
        parse_json_body("[" * depth + "]" * depth)
    with pytest.raises(JsonTooDeep):
        parse_json_body(nested(depth))


def test_json_body_decoding_errors_are_those_of_json_loads() -> None:
    with pytest.raises(json.JSONDecodeError):
        parse_json_body(b"{nope")
    with pytest.raises(UnicodeDecodeError):
        parse_json_body(b'"\xff"')


def test_an_integer_past_pythons_digit_limit_is_undecodable_json_not_a_crash() -> None:
    with pytest.raises(json.JSONDecodeError, match="Unreadable number"):
        parse_json_body('{"notes": ' + "9" * 5000 + "}")


class StalledStream(io.RawIOBase):
    """A client that sent ``sent`` and then stopped: the socket times out."""

    def __init__(self, sent: bytes) -> None:
        self.sent = io.BytesIO(sent)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        data = self.sent.read(len(buffer))
        if not data:
            raise TimeoutError("timed out")
        buffer[: len(data)] = data
        return len(data)


def declared(app: Flask, stream: io.RawIOBase | io.BytesIO, length: int):  # type: ignore[no-untyped-def]
    """POST ``stream`` with ``Content-Length: length`` as gunicorn hands it over (its input
    is marked terminated, so werkzeug reads it as it comes)."""
    environ = EnvironBuilder(path="/echo", method="POST").get_environ()
    environ["CONTENT_LENGTH"] = str(length)
    environ["wsgi.input"] = stream
    environ["wsgi.input_terminated"] = True
    app_iter, status, headers = run_wsgi_app(app, environ)
    return Response(b"".join(app_iter), status=status, headers=headers)


def test_a_body_that_ends_before_its_content_length_is_a_400_problem() -> None:
    response = declared(make_app(), io.BytesIO(b'{"half": '), 500)
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert "ended after 9 of the 500 bytes" in response.get_json()["detail"]


def test_a_body_that_arrives_whole_is_read_as_usual() -> None:
    response = declared(make_app(), io.BytesIO(b"x" * 500), 500)
    assert response.status_code == 200
    assert response.get_json() == {"length": 500}


@pytest.mark.parametrize("streamed", [False, True])
def test_a_client_that_stops_sending_is_a_408_problem(streamed: bool) -> None:
    app = make_app()
    stalled = StalledStream(b"x" * 100)
    response = chunked(app, stalled) if streamed else declared(app, stalled, 500)
    assert response.status_code == 408
    assert response.mimetype == "application/problem+json"
    assert "No byte of the request body arrived for 10 s" in response.get_json()["detail"]


def test_a_member_named_twice_is_refused_at_any_depth() -> None:
    for body in (b'{"a": 1, "a": 2}', b'[{"x": {"b": 1, "c": 2, "b": 3}}]'):
        with pytest.raises(DuplicateJsonKey) as refused:
            parse_json_body(body)
        assert refused.value.key in ("a", "b")
    assert parse_json_body(b'{"a": {"a": 1}, "b": [{"a": 2}, {"a": 3}]}')["b"][1] == {"a": 3}
