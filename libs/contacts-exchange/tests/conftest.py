"""Fixtures of the contacts-exchange tests: the shared sample files, read in place."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from contacts_exchange import ImportRecord, read_csv, read_vcards

ROOT = Path(__file__).resolve().parents[3]


def shared_data_dir() -> Path | None:
    """``../shared/data`` beside the repository (CI lays shared/ there), or
    ``$CONTACTS_SHARED_DIR/data``, as tests/deploy/test_compose.py finds it."""
    candidates = [ROOT.parent / "shared"]
    if os.environ.get("CONTACTS_SHARED_DIR"):
        candidates.insert(0, Path(os.environ["CONTACTS_SHARED_DIR"]))
    for shared in candidates:
        if (shared / "data" / "vcards").is_dir():
            return (shared / "data").resolve()
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    found = shared_data_dir()
    if found is None:
        pytest.skip("shared/data (the sample address books) is not beside the repository")
    return found


@pytest.fixture(scope="session")
def vcard_file(data_dir: Path) -> Callable[[str], list[ImportRecord]]:
    """Read ``vcards/<prefix>*.vcf`` and return its records in file order."""

    def read(prefix: str) -> list[ImportRecord]:
        (path,) = sorted((data_dir / "vcards").glob(f"{prefix}*.vcf"))
        with path.open("rb") as stream:
            return list(read_vcards(stream))

    return read


@pytest.fixture(scope="session")
def csv_file(data_dir: Path) -> Callable[[str], list[ImportRecord]]:
    """Read ``csv/<prefix>*.csv`` and return its records in file order."""

    def read(prefix: str) -> list[ImportRecord]:
        (path,) = sorted((data_dir / "csv").glob(f"{prefix}*.csv"))
        with path.open("rb") as stream:
            return list(read_csv(stream))

    return read
