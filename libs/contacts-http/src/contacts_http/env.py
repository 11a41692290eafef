"""Reading typed values from environment variables: the shared part of each service's settings.

Every reader takes the mapping (usually ``os.environ``), the variable's name and its default, and
raises ``ConfigError`` naming the variable when the value cannot be used. An absent or blank
variable takes the default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


class ConfigError(ValueError):
    """An environment variable holds a value that cannot be used; the message names it."""


def read_text(environ: Mapping[str, str], name: str, default: str = "") -> str:
    """The stripped value of ``name``, or ``default`` when absent or blank."""
    return environ.get(name, "").strip() or default


def read_bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    """``true/false``, ``1/0``, ``yes/no``, ``on/off`` (any case). Raises ``ConfigError``."""
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}.")


def read_positive(environ: Mapping[str, str], name: str, default: float) -> float:
    """A number greater than 0. Raises ``ConfigError``."""
    value = _read_number(environ, name, default)
    if not value > 0:
        raise ConfigError(f"{name} must be greater than 0, got {environ[name].strip()!r}.")
    return value


def read_not_negative(environ: Mapping[str, str], name: str, default: float) -> float:
    """A number of 0 or more. Raises ``ConfigError``."""
    value = _read_number(environ, name, default)
    if value < 0:
        raise ConfigError(f"{name} must not be negative, got {environ[name].strip()!r}.")
    return value


def _read_number(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}.") from None


def read_list(environ: Mapping[str, str], name: str, separator: str = ",") -> tuple[str, ...]:
    """Non-empty, stripped items of a ``separator``-separated value (``()`` when absent)."""
    raw = environ.get(name, "")
    return tuple(item.strip() for item in raw.split(separator) if item.strip())
