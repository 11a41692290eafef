"""``If-None-Match`` evaluation for GET and HEAD (RFC 9110 §13.1.2).

The field is ``*`` or a comma-separated list of entity-tags (``"3"``, ``W/"3"``); it matches when
any listed tag equals the current one under weak comparison (the ``W/`` prefix is ignored), or
when it is ``*`` and the resource exists. A field that is not valid syntax (an unquoted tag, a
stray token) is ignored as a whole: answering 200 is always safe, a wrong 304 is not.
"""

from __future__ import annotations

import re
from typing import Final

# entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE ; etagc = %x21 / %x23-7E / obs-text
_ENTITY_TAG: Final = re.compile(r'(?:W/)?"([\x21\x23-\x7e\x80-\xff]*)"')
_SEPARATOR: Final = re.compile(r"[ \t]*,[ \t]*")


def none_match(field: str | None, opaque_tag: str) -> bool:
    """Whether ``field`` (the raw ``If-None-Match`` value, ``None`` when absent) matches the
    current entity-tag whose quoted-away value is ``opaque_tag`` (e.g. ``3`` for ``"3"``)."""
    if field is None:
        return False
    value = field.strip(" \t")
    if value == "*":
        return True
    tags = []
    position = 0
    while position < len(value):
        separator = _SEPARATOR.match(value, position)
        if separator is not None:
            position = separator.end()
            continue
        tag = _ENTITY_TAG.match(value, position)
        if tag is None:
            return False
        tags.append(tag.group(1))
        position = tag.end()
        if position < len(value) and not _SEPARATOR.match(value, position):
            return False
    return opaque_tag in tags
