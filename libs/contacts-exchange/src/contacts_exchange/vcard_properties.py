"""Reading one unfolded vCard content line: group, name, parameters, decoded value.

Content line grammar: RFC 6350 §3.3 (4.0), RFC 2426 §4 (3.0), vCard 2.1 §2. Tolerated beyond
the grammar: 2.1 bare parameters (``TEL;WORK;VOICE``, ``QUOTED-PRINTABLE``) in any version,
``TYPE=`` repeated or comma lists, quoted parameter values holding ``;`` or ``:``, RFC 6868
caret escapes in parameter values, ``/`` in property names, a line without ``:`` (an empty
value), parameter names in any case.

Values are decoded from bytes here: quoted-printable (RFC 2045 §6.7) when ENCODING says so,
then the declared CHARSET (any Python codec name, e.g. UTF-8, Shift_JIS, windows-1252), else
UTF-8, else the card's guessed charset (see ``vcard_reader``). Bytes a charset cannot decode
become U+FFFD and a warning, never an exception.
"""

from __future__ import annotations

import codecs
import quopri
import re
from dataclasses import dataclass, field
from typing import Final

_BARE_ENCODINGS: Final = {"QUOTED-PRINTABLE", "BASE64", "8BIT", "7BIT", "B"}
_CARET: Final = re.compile(r"\^(.)")
_CARET_CHARS: Final = {"n": "\n", "^": "^", "'": '"'}


@dataclass(slots=True)
class Property:
    """One content line: ``name`` upper case, ``params`` upper-case names to values (``TYPE``
    values upper-cased and split at commas), ``raw`` the value bytes after quoted-printable
    decoding, ``charset`` the declared one (``None`` when not declared)."""

    line: int
    group: str | None
    name: str
    params: dict[str, list[str]] = field(default_factory=dict)
    raw: bytes = b""
    charset: str | None = None

    @property
    def types(self) -> set[str]:
        """The TYPE values, upper case (``{"HOME", "PREF"}``)."""
        return set(self.params.get("TYPE", ()))

    def text(self, fallback: str) -> tuple[str, bool]:
        """Return the value decoded, and whether some bytes could not be decoded.

        Uses the declared charset, else strict UTF-8, else ``fallback`` (a codec name)."""
        if self.charset:
            try:
                text = self.raw.decode(codecs.lookup(self.charset).name, errors="replace")
            except LookupError:  # unknown, or not a text encoding (CHARSET=base64)
                pass
            else:
                return text, "\ufffd" in text and b"\xef\xbf\xbd" not in self.raw
        try:
            return self.raw.decode("utf-8"), False
        except UnicodeDecodeError:
            text = self.raw.decode(fallback, errors="replace")
            return text, "\ufffd" in text


def _split_outside_quotes(text: bytes, separator: int) -> list[bytes]:
    if 0x22 not in text:  # no quoted section: the common case, at C speed
        return text.split(bytes((separator,)))
    parts: list[bytes] = []
    quoted = False
    start = 0
    for i, byte in enumerate(text):
        if byte == 0x22:
            quoted = not quoted
        elif byte == separator and not quoted:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _param_value(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace").strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    if "^" not in text:  # no RFC 6868 escape: the common case, without a regex
        return text
    return _CARET.sub(lambda m: _CARET_CHARS.get(m.group(1), m.group(0)), text)


def _adr_head(pieces: list[bytes]) -> bytes:
    """ADR with an unquoted parameter value holding ``:`` (e.g. a 4.0 LABEL written without
    quotes): the value starts at the last ``:`` after which all 7 components remain."""
    for cut in range(len(pieces) - 1, 0, -1):
        value = b":".join(pieces[cut:])
        if value.count(b";") - value.count(b"\\;") >= 6:
            return b":".join(pieces[:cut])
    return pieces[0]


def _head_and_value(line: bytes) -> tuple[bytes, bytes]:
    """The line's head (group, name, parameters) and value bytes: split at the first ``:``
    outside double quotes (for an ADR with parameters, see ``_adr_head``); no such ``:``
    gives an empty value."""
    colon = line.find(b":")
    # No quote before the first colon: that colon is the split, found at C speed.
    if colon >= 0 and line.find(b'"', 0, colon) < 0:
        head = line[:colon]
        # An ADR's head is cut elsewhere only when its value has a ``:`` too (``_adr_head``).
        if b"=" not in head or line.find(b":", colon + 1) < 0 or not _is_adr(head):
            return head, line[colon + 1 :]
    head_and_value = _split_outside_quotes(line, 0x3A)
    head = head_and_value[0]
    if b"=" in head and _is_adr(head):
        head = _adr_head(head_and_value)
    return head, line[len(head) + 1 :] if len(head_and_value) > 1 else b""


def _is_adr(head: bytes) -> bool:
    return head.split(b";")[0].split(b".")[-1].strip().upper() == b"ADR"


def parse_property(number: int, line: bytes) -> Property:
    """Parse one unfolded content line. Never raises: odd input gives odd but safe values."""
    head, value = _head_and_value(line)
    # Without a ``;`` the head is the name alone (7 of a typical card's 10 lines).
    parts = _split_outside_quotes(head, 0x3B) if b";" in head else [head]
    full_name = parts[0].decode("ascii", errors="replace").strip()
    group, _, name = full_name.rpartition(".")
    prop = Property(number, group or None, name.upper())
    if len(parts) == 1:
        prop.raw = value
        return prop
    for part in parts[1:]:
        key, equals, raw_value = part.partition(b"=")
        if not equals:
            bare = _param_value(key).upper()
            if not bare:
                continue
            if bare in _BARE_ENCODINGS:
                prop.params.setdefault("ENCODING", []).append(bare)
            else:
                prop.params.setdefault("TYPE", []).append(bare)
            continue
        pname = key.decode("ascii", errors="replace").strip().upper()
        values = [_param_value(v) for v in _split_outside_quotes(raw_value, 0x2C)]
        if pname == "TYPE":  # a quoted list, TYPE="work,voice", is a list too
            values = [t.strip().upper() for v in values for t in v.split(",") if t.strip()]
        prop.params.setdefault(pname, []).extend(values)
    if "ENCODING" in prop.params and "QUOTED-PRINTABLE" in {
        e.upper() for e in prop.params["ENCODING"]
    }:
        value = quopri.decodestring(value)
    if prop.params.get("CHARSET"):
        prop.charset = prop.params["CHARSET"][0]
    prop.raw = value
    return prop


_ESCAPES_30: Final = {"n": "\n", "N": "\n", "\\": "\\", ",": ",", ";": ";", ":": ":"}
_ESCAPES_21: Final = {"\\": "\\", ";": ";"}


def split_value(text: str, separator: str | None, version: str) -> list[str]:
    """Split ``text`` at unescaped ``separator`` (``;`` for N/ADR/ORG, ``,`` for CATEGORIES,
    ``None`` for a single text) and unescape each part.

    3.0 and 4.0 escapes (RFC 6350 §3.4, RFC 2426 §5): ``\\n \\N \\\\ \\, \\;`` (``\\:`` too,
    which some writers emit). vCard 2.1 (§2.1.3) only escapes ``\\;`` (and ``\\\\`` in
    practice); any other backslash is kept as it is, as is an unknown escape like ``\\'``.
    """
    if "\\" not in text:  # nothing to unescape: the common case, at C speed
        return [text] if separator is None else text.split(separator)
    escapes = _ESCAPES_21 if version == "2.1" else _ESCAPES_30
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in escapes:
            current.append(escapes[text[i + 1]])
            i += 2
            continue
        if separator is not None and char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    parts.append("".join(current))
    return parts
