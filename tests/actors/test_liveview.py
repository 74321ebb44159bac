"""The live panel renders the session's state (rendered to text, no terminal needed)."""

from pathlib import Path

from rich.console import Console

from actors import config
from actors.net.memory import memory_network
from actors.records.paths import SessionPaths
from actors.session import run_session

ROOT = Path(__file__).resolve().parents[2]


async def test_live_panel_shows_progress_feeds_premium_and_trades(autojump_clock, tmp_path):
    memory_network()
    cfg = config.load(ROOT / "config" / "demo.toml", {"session": {"logs_dir": str(tmp_path), "duration_s": 30}})
    console = Console(record=True, width=100, force_terminal=False)
    await run_session(cfg, SessionPaths(tmp_path, "20260101_000030"), handle_signals=False, live_console=console)
    text = console.export_text()
    assert "session 20260101_000030 (sim)" in text and " / 30 s" in text
    assert "upbit" in text and "binance" in text and "msgs/s" in text
    assert "premium +" in text or "premium -" in text
    assert "fill events" in text and "PnL" in text
