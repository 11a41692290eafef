"""Fixtures of the contacts-exchange tests: the shared sample files, read in place."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from contacts_exchange import ImportRecord, read_csv, read_vcards
from support.shared_data import shared_data_dir


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
