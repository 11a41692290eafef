"""W3C Trace Context (``traceparent``) carried from an HTTP request into the event it produces.

The command API keeps a valid incoming ``traceparent`` header (or none) and puts it in the
CloudEvents ``traceparent`` extension attribute (the CloudEvents distributed-tracing
extension); the worker binds it to its log lines. No span is created here: OpenTelemetry can
be switched on later and read the same value (its instrumentation packages stay optional).
"""

from __future__ import annotations

import re
from typing import Final

TRACEPARENT_HEADER: Final = "traceparent"
# version-traceid-parentid-flags, lowercase hex (W3C Trace Context §3.2); version ff is invalid.
_TRACEPARENT: Final = re.compile(
    r"^(?!ff)[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$"
)


def valid_traceparent(value: str | None) -> str | None:
    """Return ``value`` when it is a well-formed W3C ``traceparent``, else ``None``.

    Anything else (absent, malformed, all-zero ids, too long) is dropped rather than carried,
    so a header cannot inject text into events or logs.
    """
    if value is None:
        return None
    value = value.strip()
    return value if _TRACEPARENT.fullmatch(value) else None
