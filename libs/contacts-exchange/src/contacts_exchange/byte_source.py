"""Reading an upload line by line in bounded memory, counting bytes against ``max_bytes``."""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import BinaryIO, Final

from contacts_exchange.errors import ImportTooLarge

UTF8_BOM: Final = codecs.BOM_UTF8
#: Read this many bytes at most per ``readline`` call, so one endless line cannot fill memory.
_CHUNK: Final = 64 * 1024


def read_lines(stream: BinaryIO, *, max_bytes: int) -> Iterator[bytes]:
    """Yield the physical lines of ``stream`` as bytes, each with its line ending removed.

    A line ends at LF; any CRs before it are part of the ending (CRLF, and the CR CR LF some
    iOS exports write). A UTF-8 byte order mark at the start is dropped. A UTF-16 stream (with
    its BOM) is transcoded to UTF-8 on the fly. Raises ``ImportTooLarge`` as soon as more than
    ``max_bytes`` bytes of the upload were read (the count is of the upload's own bytes).
    """
    total = 0
    head = stream.read(2)
    total += len(head)
    if head in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        yield from _utf16_lines(stream, head, total, max_bytes)
        return
    buffer = head.removeprefix(UTF8_BOM[:2])
    if buffer == b"" and head:
        third = stream.read(1)
        total += len(third)
        buffer = b"" if third == UTF8_BOM[2:] else head + third
    while True:
        newline = buffer.find(b"\n")
        if newline >= 0:
            line, buffer = buffer[:newline], buffer[newline + 1 :]
            yield line.rstrip(b"\r")
            continue
        chunk = stream.readline(_CHUNK)
        total += len(chunk)
        if total > max_bytes:
            raise ImportTooLarge("max_bytes", max_bytes)
        if not chunk:
            if buffer:
                yield buffer.rstrip(b"\r")
            return
        buffer += chunk


def _utf16_lines(stream: BinaryIO, bom: bytes, total: int, max_bytes: int) -> Iterator[bytes]:
    decoder = codecs.getincrementaldecoder("utf-16")(errors="replace")
    text = decoder.decode(bom)
    while True:
        chunk = stream.read(_CHUNK)
        total += len(chunk)
        if total > max_bytes:
            raise ImportTooLarge("max_bytes", max_bytes)
        text += decoder.decode(chunk, final=not chunk)
        *lines, text = text.split("\n")
        for line in lines:
            yield line.rstrip("\r").encode("utf-8")
        if not chunk:
            if text:
                yield text.rstrip("\r").encode("utf-8")
            return
