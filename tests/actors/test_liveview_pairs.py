"""The live panel of a session of many pairs (issue 26): the 10 pairs furthest from their baseline, within 80
columns; one pair, or none, gives the one-pair panel. Rendered to text, no terminal needed."""

from __future__ import annotations

import re
from pathlib import Path

import trio
from rich.console import Console

from actors import config, wiring
from actors.liveview import LiveView, render, top_pairs
from actors.records.info import SessionInfo
from actors.records.pairs import PairRow
from actors.records.paths import SessionPaths
from actors.records.sources import Sources

ROOT = Path(__file__).resolve().parents[2]


def _session(tmp_path: Path) -> tuple[SessionInfo, Sources]:
    cfg = config.load(ROOT / "config" / "d84_2.toml", {"session": {"logs_dir": str(tmp_path)}})
    inputs = config.read_inputs(cfg)
    info = wiring.session_info(cfg, SessionPaths(tmp_path, "20260101_000000_12"), inputs, 100.0)
    return info, wiring.sources(info, inputs)


def _text(renderable: object) -> str:
    console = Console(record=True, width=80, force_terminal=False)
    console.print(renderable)
    return console.export_text()


def _rows(n: int) -> list[PairRow]:
    """Pair ``COIN<i>`` with a deviation of (i - n/2 + 0.25) * 1.7 bps (every third none), large figures."""
    return [
        PairRow(
            f"COIN{i}",
            premium_mean_bps=-1234.5 + i,
            latest_premium_bps=-12345.6 + i,
            latest_deviation_bps=None if i % 3 == 0 else (i - n / 2 + 0.25) * 1.7,
            entries=10_000 + i,
            pnl_usdt=-123_456.789 + i,
        )
        for i in range(n)
    ]


def _pair_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if re.search(r"\bCOIN\d+\b", line)]


def test_150_pairs_show_the_10_furthest_from_their_baseline_within_80_columns(tmp_path):
    info, sources = _session(tmp_path)
    rows = _rows(150)
    text = _text(render(info, sources.progress(103.0), {}, rows))
    assert all(len(line) <= 80 for line in text.splitlines()) and "…" not in text, text
    assert "pairs: top 10 of 150 by |deviation|" in text
    lines = _pair_lines(text)
    expected = top_pairs(rows)
    assert len(lines) == 10 and [line.split()[1] for line in lines] == [r.pair for r in expected]
    assert expected[0].pair == "COIN149" and expected[1].pair == "COIN1" and expected[2].pair == "COIN148"
    first = lines[0].split()
    assert first[1:-1] == ["COIN149", "-12196.6", "+126.2", "10149", "-123307.7890"]
    assert all(r.latest_deviation_bps is not None for r in expected)  # a pair without a deviation comes last


def test_pairs_without_a_deviation_come_last_and_a_long_name_is_cut_not_the_panel(tmp_path):
    info, sources = _session(tmp_path)
    rows = [PairRow("A", latest_deviation_bps=None), PairRow("VERYLONGCOINNAME", latest_deviation_bps=-0.5)]
    assert [r.pair for r in top_pairs(rows)] == ["VERYLONGCOINNAME", "A"]
    text = _text(render(info, sources.progress(103.0), {}, rows))
    assert all(len(line) <= 80 for line in text.splitlines()) and "…" not in text
    assert "VERYLONGCO " in text and "pairs: top 2 of 2" in text


def test_no_pairs_or_one_pair_gives_the_one_pair_panel(tmp_path):
    info, sources = _session(tmp_path)
    progress = sources.progress(103.0)
    before = _text(render(info, progress, {}))
    assert _text(render(info, progress, {}, ())) == before
    assert _text(render(info, progress, {}, _rows(1)[1:2])) == before
    assert "pairs:" not in before


async def test_the_live_view_asks_its_provider_for_the_rows_at_each_frame(tmp_path, autojump_clock):
    info, sources = _session(tmp_path)
    console = Console(record=True, width=80, force_terminal=False)
    calls = []

    def provider() -> list[PairRow]:
        calls.append(trio.current_time())
        return _rows(20)

    with trio.fail_after(10):
        with LiveView(info, sources, console, pairs=provider) as live:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(live.run)
                await trio.sleep(1.2)
                nursery.cancel_scope.cancel()
    assert len(calls) == 4  # the first frame, two refreshes, the last frame
    text = console.export_text()
    assert "pairs: top 10 of 20 by |deviation|" in text
    assert all(len(line) <= 80 for line in text.splitlines())
