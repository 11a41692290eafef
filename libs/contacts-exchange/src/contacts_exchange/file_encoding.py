"""Which character encoding an uploaded address book is in, decided once for the whole file.

Order (issue 16, item 1):

1. A byte order mark: UTF-32 LE/BE, UTF-8, UTF-16 LE/BE (``bom_encoding``).
2. No BOM: UTF-32 or UTF-16 told by where the NUL bytes of the file's first 4 KiB fall
   (``nul_pattern_encoding``). vCard and CSV files are mostly ASCII (``BEGIN:VCARD``, the
   header row, the delimiters), and every ASCII character is one non-NUL byte padded with NULs:
   ``00 xx`` in UTF-16BE, ``xx 00`` in UTF-16LE, ``00 00 00 xx`` / ``xx 00 00 00`` in UTF-32.
3. Else the text segments of the file (CSV lines, or vCard values without a CHARSET) decide
   (``segments_encoding``): UTF-8 when every one of them is UTF-8; else the best result of
   ``charset_normalizer`` over the ones that are not, accepted only when it decodes every one
   of them cleanly (no undecodable byte, no C0/C1 control character other than TAB, CR and LF)
   and charset-normalizer's mess ratio says it reads as text of a language. That last choice is
   a guess, and the readers say so in the report (``guess_message``).

A file that no encoding decodes cleanly raises ``UndecodableFile`` (an ``ImportFormatError``,
so the API answers 400): it is never read as mojibake.
"""

from __future__ import annotations

import codecs
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import charset_normalizer
from charset_normalizer import CharsetMatch
from charset_normalizer.md import mess_ratio

from contacts_exchange.errors import ImportFormatError

#: Bytes of the file's start that ``nul_pattern_encoding`` looks at.
HEAD_BYTES: Final = 4096
#: Longest sample of non-UTF-8 text given to charset-normalizer (it samples within it too).
_SAMPLE_BYTES: Final = 256 * 1024
#: Highest mess ratio (0..1, charset-normalizer's ``chaos``) of the text read with a guess is
#: twice this.
_MAX_CHAOS: Final = 0.1
#: How much lower a double-byte East Asian encoding's mess ratio counts (see ``_rank``).
_MULTIBYTE_BONUS: Final = 0.05
_MULTIBYTE: Final = frozenset(
    {"cp932", "shift_jis", "shift_jis_2004", "euc_jp", "euc_jis_2004", "gb18030", "gbk"}
    | {"gb2312", "big5", "big5hkscs", "cp950", "cp949", "euc_kr", "johab"}
)
#: Tie-breaks between equally clean readings: the code pages address books are most often
#: written in (the Windows ANSI code page of the larger user bases first).
_PREFERRED: Final = (
    "cp1252", "cp932", "gb18030", "big5", "cp949", "euc_jp", "cp1251", "cp1250", "cp1253",
    "cp1254", "cp1255", "cp1256", "cp1257", "cp1258", "cp874", "latin_1",
)  # fmt: skip
#: Checked longest first: the UTF-32LE BOM starts with the UTF-16LE one.
_BOMS: Final = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_TEXT_CONTROLS: Final = frozenset("\t\r\n")


class UndecodableFile(ImportFormatError):
    """No encoding reads the file as clean text (an API answers 400)."""


@dataclass(frozen=True, slots=True)
class FileEncoding:
    """How to read a file: ``name`` a Python codec name, ``bom`` the octets of its byte order
    mark (0 when none), ``guessed`` True when charset-normalizer chose it. ``wide`` is True for
    the encodings that are not ASCII-compatible (UTF-16, UTF-32): the readers transcode those to
    UTF-8 before they look at a line."""

    name: str
    bom: int = 0
    guessed: bool = False

    @property
    def wide(self) -> bool:
        """True for UTF-16 and UTF-32."""
        return self.name.startswith(("utf-16", "utf-32"))


UTF8: Final = FileEncoding("utf-8")


def bom_encoding(head: bytes) -> FileEncoding | None:
    """The encoding that ``head`` (the file's first bytes, 4 or more) starts with the byte
    order mark of, or ``None``."""
    for bom, name in _BOMS:
        if head.startswith(bom):
            return FileEncoding(name, bom=len(bom))
    return None


def nul_pattern_encoding(head: bytes) -> FileEncoding | None:
    """UTF-32/UTF-16 LE/BE told from where the NUL bytes of ``head`` (the file's first
    ``HEAD_BYTES`` bytes, no BOM) fall, or ``None`` when ``head`` has no such pattern.

    A pattern needs at least 4 NULs, the padding octets (the ``00`` of ``00 xx`` in UTF-16BE)
    NUL in at least 3 code units of 10 (the rest are letters beyond Latin-1, such as kanji),
    and the low octet of each code unit NUL in at most 1 of 20. ``head`` must decode in the
    encoding found, else ``None``.
    """
    if head.count(0) < 4:
        return None
    for name, unit, padding, content in (
        ("utf-32-be", 4, (0, 1), (3,)),
        ("utf-32-le", 4, (2, 3), (0,)),
        ("utf-16-be", 2, (0,), (1,)),
        ("utf-16-le", 2, (1,), (0,)),
    ):
        usable = head[: len(head) - len(head) % unit]
        units = len(usable) // unit
        if units < 2:
            continue
        padded = min(_nul_share(usable, unit, i) for i in padding)
        filled = max(_nul_share(usable, unit, i) for i in content)
        if padded >= 0.3 and filled <= 0.05 and _decodes(usable, name):
            return FileEncoding(name)
    return None


def _nul_share(data: bytes, unit: int, offset: int) -> float:
    column = data[offset::unit]
    return column.count(0) / len(column)


def _decodes(data: bytes, name: str) -> bool:
    try:
        codecs.getincrementaldecoder(name)(errors="strict").decode(data, final=False)
    except UnicodeDecodeError:
        return False
    return True


def segments_encoding(segments: Iterable[bytes]) -> FileEncoding:
    """The encoding of an ASCII-compatible file whose text is ``segments`` (its lines, or its
    vCard values without a CHARSET), as the module says: ``UTF8``, or a guess (``guessed``).

    Candidates are charset-normalizer's results over the segments that are not UTF-8. One is
    kept when it decodes every non-ASCII segment (UTF-8 ones too: the file has one encoding)
    cleanly; the kept ones are ranked by ``_rank``. The winner's reading of the non-ASCII text
    must also pass charset-normalizer's mess detector (a UTF-8 line read as windows-1251 does
    not). Holds the non-ASCII segments in memory (at most the file's size). Raises
    ``UndecodableFile`` when no encoding passes.
    """
    texts = [segment for segment in segments if not segment.isascii()]
    foreign = [segment for segment in texts if not _is_utf8(segment)]
    if not foreign:
        return UTF8
    sample = b"\n".join(foreign)[:_SAMPLE_BYTES]
    kept = [
        match
        for match in charset_normalizer.from_bytes(sample)
        if not match.encoding.startswith(("utf_16", "utf_32"))
        and all(_clean(segment, match.encoding) for segment in texts)
    ]
    for match in sorted(kept, key=_rank)[:1]:
        text = "\n".join(segment.decode(match.encoding) for segment in texts)[:_SAMPLE_BYTES]
        if mess_ratio(text, _MAX_CHAOS * 2) <= _MAX_CHAOS * 2:
            return FileEncoding(codecs.lookup(match.encoding).name, guessed=True)
    raise UndecodableFile(
        "The file is not text in any encoding we can read: it is not UTF-8 (nor UTF-16 or "
        "UTF-32), and no legacy encoding (such as Shift_JIS, GB18030, Big5, EUC-KR, "
        "windows-1251 or windows-1252) decodes all of it cleanly. Save it as UTF-8 and "
        "upload it again."
    )


def _rank(match: CharsetMatch) -> tuple[float, float, int]:
    """Sort key of a candidate, best first: mess ratio (a double-byte East Asian encoding gets
    ``_MULTIBYTE_BONUS`` off: that a text decodes at all in one is evidence, as its lead and
    trail bytes must pair up, where any byte decodes in a single-byte code page), then
    charset-normalizer's language coherence, then ``_PREFERRED`` (ties are common on short
    files: ``Zoë Ødegård`` is as clean in windows-1250 as in windows-1252)."""
    name = codecs.lookup(match.encoding).name
    bonus = _MULTIBYTE_BONUS if name in _MULTIBYTE else 0.0
    preference = _PREFERRED.index(name) if name in _PREFERRED else len(_PREFERRED)
    return round(match.chaos - bonus, 2), -round(match.coherence, 2), preference


def guess_message(encoding: FileEncoding) -> str:
    """The report's words for a guessed encoding: ``read as shift_jis (a guess)``."""
    return f"read as {encoding.name} (a guess)"


def _is_utf8(segment: bytes) -> bool:
    if segment.isascii():
        return True
    try:
        segment.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _clean(segment: bytes, name: str) -> bool:
    """True when ``segment`` decodes strictly in ``name`` to text without control characters
    (C0 other than TAB/CR/LF, DEL, C1), which a mojibake reading of bytes often gives."""
    try:
        text = segment.decode(name)
    except UnicodeDecodeError:
        return False
    return not any(
        unicodedata.category(char) == "Cc" and char not in _TEXT_CONTROLS
        for char in text
        if not char.isascii() or char < " " or char == "\x7f"
    )
