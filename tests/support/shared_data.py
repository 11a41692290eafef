"""The shared sample address books (``../shared/data``): where they are, read in place.

They are real exports, many broken on purpose (their README says how); tests use the bytes as
they are and never change them.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: The media type each sample directory is uploaded with.
MEDIA_TYPES = {"vcards": "text/vcard", "csv": "text/csv"}


def shared_data_dir() -> Path | None:
    """``../shared/data`` beside the repository (CI lays shared/ there), or
    ``$CONTACTS_SHARED_DIR/data``; ``None`` when neither holds the samples."""
    candidates = [ROOT.parent / "shared"]
    if os.environ.get("CONTACTS_SHARED_DIR"):
        candidates.insert(0, Path(os.environ["CONTACTS_SHARED_DIR"]))
    for shared in candidates:
        if (shared / "data" / "vcards").is_dir():
            return (shared / "data").resolve()
    return None


def sample_files() -> list[Path]:
    """Every sample vCard and CSV file, sorted (empty when the samples are absent)."""
    data = shared_data_dir()
    if data is None:
        return []
    return sorted(
        path
        for kind in MEDIA_TYPES
        for path in (data / kind).iterdir()
        if path.is_file() and not path.name.startswith(".")
    )


def media_type(path: Path) -> str:
    """``text/vcard`` or ``text/csv``, by the sample's directory."""
    return MEDIA_TYPES[path.parent.name]
