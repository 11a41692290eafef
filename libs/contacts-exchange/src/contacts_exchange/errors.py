"""Exceptions raised by the import readers."""

from __future__ import annotations


class ImportFormatError(ValueError):
    """The upload is not a file of the requested format at all (an API answers 400 or 415).

    Raised before any record is yielded, or when the stream turns out not to be vCard or CSV;
    a broken record inside a valid file is never this: it becomes that record's error.
    """


class ImportTooLarge(ValueError):
    """The upload passed ``max_bytes`` bytes or ``max_records`` records (an API answers 413).

    Raised as soon as the limit is crossed, so no more than ``max_bytes`` plus one line is ever
    held in memory. ``limit`` names which limit (``"max_bytes"`` or ``"max_records"``) and
    ``value`` its value.
    """

    def __init__(self, limit: str, value: int) -> None:
        self.limit = limit
        self.value = value
        unit = "bytes" if limit == "max_bytes" else "records"
        super().__init__(f"The file has more than {value} {unit} ({limit}).")
