"""The live panel renders the session's state (rendered to text, no terminal needed), within 80 columns."""

from pathlib import Path

from rich.console import Console

from actors import config, wiring
from actors.liveview import render
from actors.net.memory import memory_network
from actors.records.info import SessionInfo
from actors.records.paths import SessionPaths
from actors.records.sources import Sources
from actors.session import run_session

ROOT = Path(__file__).resolve().parents[2]


def _frames(text: str) -> list[str]:
    """The panels drawn, as text, in order."""
    return [frame for frame in text.split("╭") if frame.strip()]


def _session(cfg: config.Config, tmp_path: Path, opened_at: float) -> tuple[SessionInfo, Sources]:
    """What a session is and its (empty) sources, as a session opened at ``opened_at`` has them."""
    inputs = config.read_inputs(cfg)
    info = wiring.session_info(cfg, SessionPaths(tmp_path, "20260101_000000_12"), inputs, opened_at)
    return info, wiring.sources(info, inputs)


def _fits(text: str, width: int = 80) -> None:
    assert all(len(line) <= width for line in text.splitlines()), text
    assert "…" not in text, text  # nothing cut short


async def test_live_panel_shows_progress_feeds_premium_and_trades_and_ends_completed(autojump_clock, tmp_path):
    memory_network()
    cfg = config.load(ROOT / "config" / "demo.toml", {"session": {"logs_dir": str(tmp_path), "duration_s": 30}})
    console = Console(record=True, width=80, force_terminal=False)
    await run_session(cfg, SessionPaths(tmp_path, "20260101_000030"), handle_signals=False, live_console=console)
    text = console.export_text()
    _fits(text)
    assert "session 20260101_000030 (sim)" in text and " / 30 s" in text
    assert "upbit" in text and "binance" in text and "msgs/s" in text
    assert "premium +" in text or "premium -" in text
    assert "fill events" in text and "PnL" in text
    last = _frames(text)[-1]
    assert "30.0 / 30 s  completed" in last and "running" not in last
    assert "DOWN" not in text


def test_before_the_first_book_feeds_are_connecting_or_not_started_and_the_panel_fits_80_columns(tmp_path):
    cfg = config.load(ROOT / "config" / "d84_2.toml", {"session": {"logs_dir": str(tmp_path)}})
    info, sources = _session(cfg, tmp_path, 100.0)
    sources.actors["feed:upbit"].starts = 1
    console = Console(record=True, width=80, force_terminal=False)
    console.print(render(info, sources.progress(103.0), {}))
    text = console.export_text()
    _fits(text)
    assert "starting" in text and "running" not in text
    (upbit,) = [line for line in text.splitlines() if "upbit" in line and "session" not in line]
    (binance,) = [line for line in text.splitlines() if "binance" in line]
    assert "connecting" in upbit and "not started" in binance and "DOWN" not in text


def test_the_panel_stays_readable_at_80_columns_with_large_values(tmp_path):
    cfg = config.load(ROOT / "config" / "d84_2.toml", {"session": {"logs_dir": str(tmp_path)}})
    info, sources = _session(cfg, tmp_path, 100.0)
    for name in ("feed:upbit", "feed:binance"):
        sources.actors[name].starts, sources.actors[name].restarts = 120, 119
        sources.actors[name].gave_up = True
    sources.feeds["binance"].connects, sources.feeds["binance"].untrusted_s = 3, 12345.6
    life = sources.lifecycle
    life.trading_since = 101.0
    life.end(1301.0)
    life.finish(interrupted=True)
    console = Console(record=True, width=80, force_terminal=False)
    console.print(render(info, sources.progress(1302.0), {"upbit": 12345.6, "binance": 1234.5}))
    text = console.export_text()
    _fits(text)
    assert "1200.0 / 1200 s  interrupted" in text
    assert "never connected" in text and "given up" in text and "12345.6" in text
