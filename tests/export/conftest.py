"""Fixtures of the export tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_source_date_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Exports read $SOURCE_DATE_EPOCH for their "Created" time; tests fix it."""
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
