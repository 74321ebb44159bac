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


@pytest.fixture(scope="session")
def forked_cli():
    """``python -m MODULE ARGS`` run from a process that imported the project once (tests/forked_cli.py)."""
    from forked_cli import ForkedCli

    cli = ForkedCli()
    yield cli
    cli.close()


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


@pytest.fixture
def assert_ledger_adds_up():
    """The ledger of a finished session, recomputed from its fill events (actors.core.ledger): balances after =
    before + every fill, the KPI's own reconciliation agrees, every finished trade is flat (dust below the
    venue's minimum order at most), and the BTC the balances moved is what open trades hold plus that dust.
    Returns the finished trades' ids."""

    def check(kpi: dict, events: list[dict]) -> list[int]:
        import msgspec

        from actors.core.fills import Lots
        from actors.core.ledger import left_by_trade, not_flat, reconcile_fills
        from actors.tools.trades import FillLine

        lines = [msgspec.convert(e, FillLine) for e in events]
        r = reconcile_fills(kpi["initial_balances"], kpi["balances"], lines)
        assert r.ok and r.fills == len(events), r.failures()
        assert kpi["reconciliation"]["ok"] and kpi["reconciliation"]["fills"] == len(events)
        finished = sorted({e["trade_id"] for e in events if e["trade_pnl_usdt"] is not None})
        left = left_by_trade(lines)
        assert not_flat(left, finished, Lots(**kpi["lots"])) == ()
        inventory = kpi["inventory"]
        assert all(abs(x) < 1e-9 for x in inventory["unexplained_btc"].values()), inventory["unexplained_btc"]
        for venue, dust in inventory["dust_btc"].items():
            recomputed = sum(left[t][venue].btc for t in finished if venue in left.get(t, {}))
            assert dust == pytest.approx(recomputed, abs=1e-12)
        assert kpi["carried_imbalance_btc"] == pytest.approx(sum(inventory["open_btc"].values()), abs=1e-12)
        assert inventory["samples"] and inventory["end"] is not None
        return finished

    return check
