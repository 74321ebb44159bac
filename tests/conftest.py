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


@pytest.fixture
def run_virtual():
    """Run a whole session on a fresh virtual clock over the in-memory network; returns the result."""
    import trio
    import trio.testing

    from actors.net.memory import memory_network
    from actors.session import run_session

    def run(cfg, paths):
        async def main():
            memory_network()
            return await run_session(cfg, paths, handle_signals=False)

        return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))

    return run


@pytest.fixture
def assert_balances_conserved():
    """Initial balances + every fill event's flows - its fee == the KPI's final balances."""

    def check(kpi: dict, events: list[dict]) -> None:
        expected = {venue: dict(assets) for venue, assets in kpi["initial_balances"].items()}
        for e in events:
            sign = 1 if e["side"] == "BUY" else -1
            expected[e["venue"]]["BTC"] += sign * e["filled_qty"]
            expected[e["venue"]][e["quote_ccy"]] -= sign * e["filled_qty"] * (e["avg_price"] or 0.0)
            expected[e["venue"]][e["fee_ccy"]] -= e["fee"]
        for venue, assets in expected.items():
            for asset, amount in assets.items():
                assert kpi["balances"][venue][asset] == pytest.approx(amount, rel=1e-9, abs=1e-9), (venue, asset)

    return check
