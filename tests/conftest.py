"""Shared test helpers: where the real-data corpus and our fixtures live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
CORPUS = Path(os.environ.get("STATIONKIT_CORPUS", ROOT.parent / "shared" / "corpus"))


def corpus_files(fmt: str) -> list[Path]:
    """Every corpus file of one format folder (CI always has the corpus)."""
    folder = CORPUS / fmt
    if not folder.is_dir():
        raise RuntimeError(f"corpus folder {folder} is missing; set STATIONKIT_CORPUS")
    return sorted(p for p in folder.iterdir() if p.is_file())


@pytest.fixture
def corpus() -> Path:
    return CORPUS


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES
