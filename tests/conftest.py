"""Shared test helpers. Tests never touch the internet; servers bind to 127.0.0.1 only."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FIXTURES = SHARED / "fixtures"


@pytest.fixture
def fixtures() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip(f"needs the shared fixtures at {FIXTURES} (absent on a fresh clone without ../shared)")
    return FIXTURES


@pytest.fixture(autouse=True, scope="session")
def _quiet_logs():
    """Actors log at DEBUG; tests only need warnings and errors on stderr."""
    import sys

    from loguru import logger

    logger.remove()
    logger.configure(extra={"actor": "-"})
    logger.add(sys.stderr, level="WARNING")
    yield
