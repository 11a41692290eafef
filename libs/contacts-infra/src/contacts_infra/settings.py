"""Typed settings, read from the environment once at start-up, with pydantic-settings.

Every service's settings class derives from ``EnvSettings`` (and from the groups below that it
shares with other services). Rules, the same in every service (docs/architecture.md,
"Settings"):

- A field reads the variable named by its ``validation_alias``, else its name in capitals.
- Values are stripped; an absent or blank variable takes the default, except on fields marked
  ``BLANK_IS_NONE`` (blank means "none", e.g. empty AWS keys select boto3's default credential
  chain) or ``BLANK_IS_EMPTY`` (blank is a valid value, e.g. an empty Redis key prefix).
- ``Model.from_env(environ)`` reads only the mapping it is given (``os.environ`` at start-up, a
  dict in tests); ``Model()`` is the defaults, never the process environment.
- A value that does not parse or breaks its rule raises ``SettingsError``, whose message is one
  line naming the variable and the rule; a process prints it and exits (``exit_on_error``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Annotated, Any, Final, NoReturn, TypeVar
from urllib.parse import parse_qs, urlsplit

from pydantic import BeforeValidator, Field, PositiveFloat, ValidationError, model_validator
from pydantic.config import JsonDict
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

#: ``json_schema_extra`` marks of a field: how a blank value reads, and whether its value may be
#: shown in an error message (secrets are never echoed).
BLANK_IS_NONE: Final[JsonDict] = {"blank": "none"}
BLANK_IS_EMPTY: Final[JsonDict] = {"blank": "empty"}
SECRET: Final[JsonDict] = {"secret": True}
BLANK_IS_NONE_SECRET: Final[JsonDict] = {"blank": "none", "secret": True}

_NO_ENVIRON: Final[Mapping[str, str]] = MappingProxyType({})
_ENVIRON: ContextVar[Mapping[str, str]] = ContextVar(
    "contacts_settings_environ", default=_NO_ENVIRON
)

S = TypeVar("S", bound="EnvSettings")


class SettingsError(ValueError):
    """A variable holds a value the service cannot use; the message is one line naming the
    variable (never a secret's value) and the rule it breaks."""


def split_list(raw: Any) -> Any:
    """``"a, b,,c"`` → ``("a", "b", "c")``: items of a comma-separated variable, stripped,
    empty ones dropped. Other values pass through for pydantic to check."""
    if isinstance(raw, str):
        return tuple(item.strip() for item in raw.split(",") if item.strip())
    return raw


#: A comma-separated list of texts (``CORS_ALLOWED_ORIGINS=a,b``); absent: ``()``.
CommaList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(split_list)]


class _EnvironSource(EnvSettingsSource):
    """The environment source, reading the mapping given to ``from_env`` instead of
    ``os.environ``, with every value stripped."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {key.lower(): value.strip() for key, value in _ENVIRON.get().items()}

    def _extract_field_info(
        self, field: FieldInfo, field_name: str, model_config: Mapping[str, Any] | None = None
    ) -> list[tuple[str, str, bool]]:
        # A field with a variable of its own reads only that variable, never one spelled like
        # its name (the query API's ``database_url`` must not read the writer's DATABASE_URL).
        found = super()._extract_field_info(field, field_name, model_config)
        alias = field.validation_alias
        if isinstance(alias, str):
            return [entry for entry in found if entry[0] == alias]
        return found


class EnvSettings(BaseSettings):
    """Base of every settings class: frozen, extra variables ignored, fields settable by name
    in code (``Settings(redis_prefix="t:")``) and by variable name from the environment."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="ignore",
        case_sensitive=False,
        validate_by_name=True,
        validate_by_alias=True,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments first, then the mapping of ``from_env``; no ``.env`` file and no
        secrets directory (the deployment puts everything in the environment)."""
        return (init_settings, _EnvironSource(settings_cls))

    @model_validator(mode="before")
    @classmethod
    def _read_blanks(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        fields = _fields_by_key(cls)
        cleaned: dict[str, Any] = {}
        for key, value in data.items():
            field = fields.get(key.lower()) if isinstance(key, str) else None
            if value != "" or field is None:
                cleaned[key] = value
            elif _extra(field).get("blank") == "none":
                cleaned[key] = None
            elif _extra(field).get("blank") == "empty":
                cleaned[key] = ""
        return cleaned

    @classmethod
    def from_env(cls: type[S], environ: Mapping[str, str]) -> S:
        """The settings read from ``environ``. Raises ``SettingsError`` (one line naming each
        variable at fault and its rule)."""
        with reading(environ):
            try:
                return cls()
            except ValidationError as exc:
                raise SettingsError(describe(exc, cls)) from None


@contextmanager
def reading(environ: Mapping[str, str]) -> Iterator[None]:
    """Within the block, settings classes built with no arguments read ``environ`` (nested
    settings built by a ``default_factory`` read the same mapping as their parent)."""
    token = _ENVIRON.set(environ)
    try:
        yield
    finally:
        _ENVIRON.reset(token)


def env_name(name: str, field: FieldInfo) -> str:
    """The variable a field reads: its ``validation_alias`` or its name in capitals."""
    alias = field.validation_alias
    return alias if isinstance(alias, str) else name.upper()


def describe(error: ValidationError, model: type[BaseSettings]) -> str:
    """One line for ``error``: ``NAME='value': rule; ...`` (a secret's value left out)."""
    fields = _fields_by_key(model)
    parts = []
    for item in error.errors(include_url=False):
        loc = item.get("loc") or ()
        rule = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        field = fields.get(str(loc[0]).lower()) if loc else None
        if field is None:
            parts.append(rule)
            continue
        name = _env_of(model, field)
        if item.get("type") == "missing":
            parts.append(f"{name} is required")
        elif _extra(field).get("secret"):
            parts.append(f"{name}: {rule}")
        else:
            parts.append(f"{name}={item.get('input')!r}: {rule}")
    return "; ".join(parts)


def exit_on_error(read: Callable[[], S], service: str) -> S:
    """``read()``, or exit the process with status 2 after one line on stderr when it raises
    ``SettingsError`` (a misconfigured pod fails fast and says why in its log)."""
    try:
        return read()
    except SettingsError as exc:
        _fail(service, exc)


def _fail(service: str, exc: SettingsError) -> NoReturn:
    print(f"{service}: invalid settings: {exc}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def _fields_by_key(model: type[BaseSettings]) -> dict[str, FieldInfo]:
    """Field name and variable name (lower case) → field, nested settings' fields included
    (their errors name their own variables)."""
    fields: dict[str, FieldInfo] = {}
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, EnvSettings):
            fields.update(_fields_by_key(field.annotation))
        fields[name.lower()] = field
        fields[env_name(name, field).lower()] = field
    return fields


def _env_of(model: type[BaseSettings], field: FieldInfo) -> str:
    for name, candidate in model.model_fields.items():
        if candidate is field:
            return env_name(name, field)
        nested = candidate.annotation
        if isinstance(nested, type) and issubclass(nested, EnvSettings):
            found = _env_of(nested, field)
            if found != "?":
                return found
    return "?"


def _extra(field: FieldInfo) -> Mapping[str, Any]:
    extra = field.json_schema_extra
    return extra if isinstance(extra, Mapping) else {}


class RedisSettings(EnvSettings):
    """The Redis server every service uses: ``redis_url``, the prefix of every key (blank
    allowed), the bound on one call in seconds (connect and socket), and whether it is a Redis
    Cluster (``REDIS_CLUSTER_MODE``, docs/architecture.md §10 "Scaling out").

    In cluster mode ``redis_url`` names one node of the cluster (on ElastiCache, its
    configuration endpoint), ``redis://`` or ``rediss://`` (TLS), database 0 or none: the
    client learns every other node from it. ``from_env`` raises ``SettingsError`` for another
    scheme or database."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = Field("contacts:", json_schema_extra=BLANK_IS_EMPTY)
    redis_socket_timeout_s: PositiveFloat = 0.25
    redis_connect_timeout_s: PositiveFloat = 0.25
    redis_cluster_mode: bool = False

    @model_validator(mode="after")
    def _cluster_url(self) -> RedisSettings:
        if self.redis_cluster_mode:
            problem = _cluster_url_problem(self.redis_url)
            if problem:
                raise ValueError(f"REDIS_URL with REDIS_CLUSTER_MODE=true: {problem}")
        return self


def _cluster_url_problem(url: str) -> str | None:
    """Why ``url`` cannot name a Redis Cluster node (``None``: it can). A cluster has only
    database 0 and no Unix sockets."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        return "the scheme must be redis:// or rediss://"
    if not parts.hostname:
        return "a host is required"
    if parts.path.strip("/") not in ("", "0") or parse_qs(parts.query).get("db", ["0"]) != ["0"]:
        return "a Redis Cluster has only database 0"
    return None


class SqsConnectionSettings(EnvSettings):
    """How to reach SQS: ``sqs_endpoint_url`` is ``None`` (blank) on AWS itself; blank AWS keys
    are ``None`` so boto3 uses its default credential chain (IRSA on EKS). The local defaults
    fit the LocalStack of ``make up``."""

    sqs_endpoint_url: str | None = Field("http://127.0.0.1:4566", json_schema_extra=BLANK_IS_NONE)
    aws_region: str = "us-east-1"
    aws_access_key_id: str | None = Field("test", json_schema_extra=BLANK_IS_NONE_SECRET)
    aws_secret_access_key: str | None = Field("test", json_schema_extra=BLANK_IS_NONE_SECRET)
