"""The session's command line: ``python -m actors.session --config PATH [...]`` (docs/config.md).

Parses the flags into config overrides, checks the config, claims the session's files (and points
``latest/`` at those that exist), sets up logging (stderr for people, the session log for ``tail -f``),
runs the session in real or virtual time, prints the summary (a run without a trade says why), writes
the report, completes ``latest/`` and lists every file written. Exit codes: ``actors.conventions.ExitCode``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import textwrap
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

import attrs
import trio
import trio.testing
from loguru import logger

from actors import config as config_mod
from actors.clock import patch_record
from actors.config import Config, ConfigError
from actors.conventions import FEED_ACTORS, ExitCode
from actors.core.refusals import Refusal, words_of
from actors.inputs import MIB, InputError, read_bounded
from actors.interrupts import Interrupts
from actors.net.memory import memory_network
from actors.records.kpi import ActorKpi, FeedKpi, Kpi, as_kpi, causes_in_words
from actors.records.paths import SessionIdTaken, SessionPaths, claim_session, complete_latest, point_latest
from actors.session import SessionResult, run_session
from actors.sim.recordings import RecordingError
from actors.sim.replay import ReplayMarket
from actors.tools.realism import market_label
from actors.wiring import prepare_replay, replay_pace

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = (
    ExitCode.OK,
    ExitCode.FAILED,
    ExitCode.USAGE,
    ExitCode.INTERRUPTED,
)
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]+$")
KPI_MAX_BYTES = 16 * MIB


def new_session_id() -> str:
    return datetime.now().strftime("%Y%m%d_%H%M%S")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # exit 2 with one line, like a config error
        self.exit(EXIT_USAGE, f"{self.prog}: {message}\n")


def _config_default(section: type, key: str) -> str:
    """The default of a config key in words, read from the config class itself (docs/config.md lists it)."""
    default = attrs.fields_dict(section)[key].default
    if default is attrs.NOTHING:
        return "none: required in the file, or here"
    if isinstance(default, bool):
        return "on" if default else "off"
    if isinstance(default, tuple):
        return ", ".join(map(str, default)) or "none"
    return f"{default:g}" if isinstance(default, float) else str(default)


def _overrides(key: str, note: str = "") -> str:
    """ "overrides session.market (default sim)": the key a flag sets and the default when the file lacks it."""
    section, name = key.split(".")
    cls = {"session": config_mod.SessionConfig, "replay": config_mod.ReplayConfig, "chaos": config_mod.ChaosConfig}
    return f"overrides {key} (default {_config_default(cls[section], name)}{note})"


DESCRIPTION = """\
Run one PAPER arbitrage session: read Upbit's and Binance's order books (live,
from the embedded exchange, or from a recording), trade the premium between
them on paper, and write the fill events, the KPI file, the log and a report.
Each flag overrides one key of the config file; every key, with its default,
is in docs/config.md."""


def _epilog() -> str:
    codes = "\n".join(
        textwrap.fill(code.meaning, 78, initial_indent=f"  {code.value:<5}", subsequent_indent=" " * 7)
        for code in ExitCode
    )
    return f"""\
exit codes:
{codes}

examples:
  python -m actors.session --config config/demo.toml
      60 s against the embedded exchange on 127.0.0.1, with the live panel
  python -m actors.session --config config/d84_2.toml --market sim --virtual-time
      the 1200 s reference run on the embedded exchange and a virtual clock:
      about 15 s, no internet needed

files, in logs_dir: fill_events_<id>.jsonl, kpi_<id>.json, session_<id>.log,
premium_<id>.csv, report_<id>.md, trades_<id>.csv; logs_dir/latest/ links to
the newest session's files (docs/file-formats.md)."""


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m actors.session",
        description=DESCRIPTION,
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", required=True, metavar="PATH", help="the TOML config file (required; docs/config.md)")
    p.add_argument(
        "--duration",
        type=float,
        metavar="S",
        help="trading time in seconds, counted from both feeds ready; " + _overrides("session.duration_s"),
    )
    p.add_argument(
        "--market",
        choices=("live", "sim", "replay"),
        help="where the books come from: live (the exchanges: needs internet), sim (the embedded exchange on "
        "127.0.0.1), replay (a recording); " + _overrides("session.market"),
    )
    p.add_argument(
        "--replay",
        nargs="+",
        metavar="FILE",
        help="recording(s) to replay (ours, hftbacktest or cryptofeed; merged by time), implies --market replay; "
        + _overrides("replay.files"),
    )
    pace = p.add_mutually_exclusive_group()
    pace.add_argument(
        "--speed", type=float, metavar="X", help="replay at X times the recorded pace; " + _overrides("replay.speed")
    )
    pace.add_argument(
        "--as-fast-as-possible",
        action="store_true",
        default=None,
        help="replay on a virtual clock, as fast as the CPU allows (same recording and seed, same fill events); "
        + _overrides("replay.as_fast_as_possible"),
    )
    p.add_argument(
        "--replay-via",
        choices=("auto", "direct", "exchange"),
        help="serve a replay directly to the feeds in memory (fast) or through the embedded exchange's servers "
        "(pings, REST, faults); auto = direct for --as-fast-as-possible without [sim] faults; "
        + _overrides("replay.via"),
    )
    p.add_argument(
        "--session-id",
        metavar="ID",
        help="name the session's files: letters, digits, _ and - (default: the start time, YYYYMMDD_HHMMSS)",
    )
    p.add_argument("--seed", type=int, metavar="N", help="seeds the simulated market; " + _overrides("session.seed"))
    p.add_argument(
        "--market-model",
        metavar="MODEL",
        help="the simulated market's prices: 'default' (fitted to the real Upbit/Binance market), 'ou' (the earlier "
        "Ornstein-Uhlenbeck premium, not fitted: the strategies trade within seconds, to watch the mechanics) or "
        "a model file (python -m actors.calibrate --market); overrides sim.market_model (default 'default')",
    )
    p.add_argument(
        "--logs-dir", metavar="DIR", help="folder for the session's files; " + _overrides("session.logs_dir")
    )
    p.add_argument(
        "--record",
        action="store_true",
        default=None,
        help="save every raw frame with its receive time (recording_<id>.jsonl.gz); " + _overrides("session.record"),
    )
    chaos = config_mod.ChaosConfig()
    p.add_argument(
        "--chaos-kill-every",
        type=float,
        metavar="S",
        help=f"every S seconds, kill one of the actors in chaos.actors (seeded choice; by default the feeds: "
        f"{', '.join(chaos.actors)}), to see the session recover; " + _overrides("chaos.kill_every_s", ": off"),
    )
    p.add_argument(
        "--virtual-time",
        action="store_true",
        help="market = sim only: run on a virtual clock over an in-memory network, as fast as the CPU allows "
        "(same market and decisions; wall-clock fields and rates differ) (default: off, the real clock)",
    )
    return p


def overrides_from(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    session = {
        key: value
        for key, value in (
            ("duration_s", args.duration),
            ("market", args.market),
            ("seed", args.seed),
            ("logs_dir", args.logs_dir),
            ("record", args.record),
        )
        if value is not None
    }
    out: dict[str, dict[str, Any]] = {"session": session} if session else {}
    if args.chaos_kill_every is not None:
        out["chaos"] = {"kill_every_s": args.chaos_kill_every}
    if args.market_model is not None:
        out["sim"] = {"market_model": args.market_model}
    replay = {
        key: value
        for key, value in (
            ("files", args.replay),
            ("speed", args.speed),
            ("as_fast_as_possible", args.as_fast_as_possible),
            ("via", args.replay_via),
        )
        if value is not None
    }
    if replay:
        out["replay"] = replay
        if args.replay and args.market is None:
            out.setdefault("session", {})["market"] = "replay"
    return out


# a replay's lines also say the recording's time ("rec 14:02:11.250 | ", actors.clock)
LOG_FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <7} | {extra[actor]: <12} | {extra[market_time]}{message}"


class _LogFile:
    """The session log as a loguru sink: line-buffered, and on a write error (disk full) it reports once on
    stderr and stops, where loguru's own file sink would print a traceback for every line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: Any = open(path, "a", buffering=1, encoding="utf-8")

    def write(self, message: str) -> None:
        if self._file is None:
            return
        try:
            self._file.write(message)
        except OSError as exc:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
            sys.stderr.write(
                f"log file {self.path}: cannot write ({exc.strerror or exc}); logging to the terminal only\n"
            )

    def stop(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()


def configure_logging(log_path: Path | None, *, stderr_level: str = "INFO", console=None) -> None:
    """stderr for people (through ``console`` when a live view owns the terminal) and a file per session."""
    logger.remove()
    logger.configure(extra={"actor": "-", "market_time": ""}, patcher=patch_record)
    if console is None:
        sink = sys.stderr
    else:

        def sink(message) -> None:
            console.print(str(message).rstrip("\n"), markup=False, highlight=False, soft_wrap=True)

    logger.add(sink, level=stderr_level, format=LOG_FORMAT, colorize=False, backtrace=False, diagnose=False)
    if log_path is not None:
        logger.add(
            _LogFile(log_path), level="DEBUG", format=LOG_FORMAT, colorize=False, backtrace=False, diagnose=False
        )


def _count(n: int, noun: str) -> str:
    """ "1 closed trade", "2 closed trades", "1,681 views"."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def _reconnects(n: int, causes: dict[str, int]) -> str:
    """ "reconnects 0", or "reconnects 3 (stale 2, snapshot 1)": the causes most frequent first."""
    return f"reconnects {n} ({causes_in_words(causes)})" if causes else f"reconnects {n}"


def _feed(venue: str, feed: FeedKpi, actor: ActorKpi | None) -> str:
    """One feed in the summary: its messages and reconnects, or that it never got that far."""
    if actor is not None and actor.starts == 0:
        return f"{venue} not started"
    given_up = actor is not None and actor.gave_up
    if feed.connects == 0:
        failures = sum(actor.causes.values()) if actor is not None else 0
        if not failures:
            return f"{venue} never connected"
        causes = causes_in_words(actor.causes) if actor is not None else ""
        end = "; given up" if given_up else ""
        return f"{venue} never connected ({_count(failures, 'failed attempt')}: {causes}{end})"
    text = f"{venue} msgs {feed.messages} {_reconnects(feed.reconnects, feed.reconnect_causes)}"
    return text + ", given up" if given_up else text


_UNITS = {"_s": "s", "_btc": "BTC", "_usdt": "USDT", "_bps": "bps"}


def _setting(cfg: Config, key: str) -> str:
    """ "strategy.warmup_s = 600 s": a config key, its value and unit."""
    section, name = key.split(".")
    value = getattr(getattr(cfg, section), name)
    unit = next((u for suffix, u in _UNITS.items() if name.endswith(suffix)), "")
    return f"{key} = {value:g} {unit}".rstrip()


def _refusal(reason: str, count: int, k: Kpi, cfg: Config | None) -> str:
    """Why ``count`` views were not traded, as a sentence for a run that made no trade."""
    views = _count(count, "view")
    if reason == Refusal.WARMUP and cfg is not None:
        warmup = cfg.strategy.warmup_s
        if warmup >= k.duration_s:
            return f"warm-up ({_setting(cfg, 'strategy.warmup_s')}) outlasted the run ({views})"
        return f"warm-up: no entry in the first {warmup:g} s ({_setting(cfg, 'strategy.warmup_s')}) ({views})"
    words = words_of(reason)
    sentence, key = words.sentence, words.setting
    if reason == Refusal.BELOW_ENTRY and cfg is not None:
        zone = cfg.strategy.params().zone(k.entry_trades)  # the zone the next entry would have used
        return f"{sentence} ({zone.entry_bps:g} bps from its baseline) ({views})"
    if key is not None and cfg is not None:
        return f"{sentence} ({_setting(cfg, key)}) ({views})"
    return f"{sentence} ({views})"


def _why_no_trade(k: Kpi, cfg: Config | None) -> list[str]:
    """A run without a trade says why: the refusals in words, the most frequent first, with their counts."""
    by_count = sorted(k.refusals.items(), key=lambda kv: (-kv[1], kv[0]))
    if not by_count:
        if k.startup_s is None:
            why = "it was interrupted" if k.status == "interrupted" else "the feeds were not both ready"
            return [f"  no trade: the session never started trading ({why})"]
        return ["  no trade: no market view was complete enough to decide on"]
    return [
        f"  {'no trade: ' if n == 0 else ' ' * 10}{_refusal(reason, count, k, cfg)}"
        for n, (reason, count) in enumerate(by_count)
    ]


def _refusals_line(k: Kpi) -> list[str]:
    """A run with trades: the views not traded, in short words, the most frequent first."""
    by_count = sorted(k.refusals.items(), key=lambda kv: (-kv[1], kv[0]))
    if not by_count:
        return []
    return ["  views not traded: " + ", ".join(f"{words_of(r).short} {n:,}" for r, n in by_count)]


def _summary(result: SessionResult) -> str:
    """What the session prints when it ends (the files it wrote follow, once the report is written:
    ``_files_written``)."""
    k = as_kpi(result.kpi)
    fmt = lambda x: "n/a" if x is None else f"{x:.3f}"  # noqa: E731
    lines = [
        f"session {k.session_id} {k.status} ({k.market}), {k.duration_s:.1f} s of {k.requested_duration_s:g} s",
        f"  entry trades {k.entry_trades}, fill events {k.fill_events} "
        f"(BUY {k.fill_events_by_side.BUY}, SELL {k.fill_events_by_side.SELL}), written {k.fill_events_written}",
    ]
    lines += _why_no_trade(k, result.config) if k.entry_trades == 0 else _refusals_line(k)
    if k.risk_stopped:
        lines.append(f"  risk stop: {k.risk_stopped}")
    lines += _orders_line(k)
    lines += _market_line(k)
    lines += _ledger_line(k)
    lines += [
        f"  available_volume std/mean: BUY {fmt(k.available_volume.BUY.std_over_mean)}, "
        f"SELL {fmt(k.available_volume.SELL.std_over_mean)}",
        f"  PnL {k.pnl_usdt:+.4f} USDT / {k.pnl_krw:+.0f} KRW realized after fees "
        f"({_count(k.closed_trades, 'closed trade')}), open trades marked {k.unrealized_pnl_usdt:+.4f} USDT",
        "  zones: " + (", ".join(f"{z} {n} fills" for z, n in k.fill_events_by_zone.items()) or "none"),
        "  feeds: " + ", ".join(_feed(v, f, k.actors.get(FEED_ACTORS.get(v, ""))) for v, f in k.feeds.items()),
        "  chaos: off"
        if not k.chaos.kill_every_s
        else f"  chaos kills: {k.chaos.kills} (one every {k.chaos.kill_every_s:g} s)",
        f"  fatal exceptions {k.fatal_exceptions}" + (":" if k.fatal_errors else ""),
    ]
    lines += [f"    {error}" for error in k.fatal_errors]
    return "\n".join(lines)


def _market_line(k: Kpi) -> list[str]:
    """Which market the figures come from and, off live, how many realism statistics sit in the real windows'
    range (docs/realism.md; the report's Realism section has the table)."""
    text = f"  market: {market_label(k)}"
    block = k.realism
    if block is None or k.market == "live" or block.reference is None or not block.window_min:
        return [text]
    judged = [s.in_window_range for s in block.stats.values() if s.in_window_range is not None]
    if not judged:
        return [f"{text}; realism: the run is too short for any statistic"]
    return [
        f"{text}; realism: {sum(judged)} of {len(judged)} statistics measured inside the real "
        f"{block.window_min}-min windows' 10-90 % range"
    ]


def _ledger_line(k: Kpi) -> list[str]:
    """Whether the balances add up (the KPI's reconciliation), what open trades hold, the dust closed trades left
    and how exits were worked; nothing before the first fill."""
    r = k.reconciliation
    if not r.fills:
        return []
    if r.ok:
        text = f"  ledger: balances = before + {_count(r.fills, 'fill')} (residuals within float rounding)"
    else:
        off = ", ".join(
            f"{row.venue} {row.asset} {row.residual:+.6g}" for row in r.rows if abs(row.residual) > row.tolerance
        )
        text = f"  ledger: balances DO NOT reconcile with the {_count(r.fills, 'fill')}: {off}"
    held = {v: x for v, x in k.inventory.open_btc.items() if x}
    if held:
        text += "; open trades hold " + ", ".join(f"{v} {x:+.8f}" for v, x in held.items()) + " BTC"
    dust = {v: x for v, x in k.inventory.dust_btc.items() if x}
    if dust:
        text += "; dust " + ", ".join(f"{v} {x:+.8f}" for v, x in dust.items()) + " BTC"
    unexplained = {v: x for v, x in k.inventory.unexplained_btc.items() if abs(x) > 1e-9}
    if unexplained:
        text += "; BTC NOT EXPLAINED " + ", ".join(f"{v} {x:+.8f}" for v, x in unexplained.items())
    e = k.exits
    if e.trades_worked:
        text += (
            f"; {_count(e.trades_worked, 'exit')} worked ({_count(e.resent_legs, 'leg')} re-sent, "
            f"{_count(e.unwind_legs, 'unwind hedge')})"
        )
    return [text]


def _orders_line(k: Kpi) -> list[str]:
    """With depth sizing or split entries: sizes, children and slippage in one line (docs/slippage.md)."""
    o = k.orders
    if not o.parents or (o.sizing == "fixed" and o.children == o.parents):
        return []
    parts = [f"  orders: {o.sizing} sizing, mean {o.planned_qty_btc / o.parents:.4g} BTC planned"]
    if o.filled_share is not None:
        parts.append(f"{o.filled_share:.0%} of it filled")
    if o.children > o.parents:
        parts.append(f"{o.children} child orders ({_count(o.parents_stopped_early, 'trade')} stopped early)")
    slip = k.slippage_bps
    if slip.BUY.mean is not None or slip.SELL.mean is not None:
        parts.append(
            "slippage BUY "
            + ("-" if slip.BUY.mean is None else f"{slip.BUY.mean:.3f}")
            + ", SELL "
            + ("-" if slip.SELL.mean is None else f"{slip.SELL.mean:.3f}")
            + " bps mean"
        )
    return [", ".join(parts)]


def _files_written(paths: SessionPaths, width: int = 100) -> str:
    """Every file of the session that exists (the report, its plots and the trades too, once written), a few
    names a line."""
    lines, line = [f"files in {paths.logs_dir}/ (links in {paths.logs_dir}/latest/):"], ""
    for name in (p.name for p in paths.written()):
        if line and len(line) + 2 + len(name) > width:
            lines.append(line)
            line = ""
        line = f"{line}  {name}"
    return "\n".join(lines + [line] if line else lines)


class _Usage(Exception):
    """Bad input found before the session starts: one line on stderr, exit status 2."""


def main(argv: list[str] | None = None) -> int:
    interrupts = Interrupts()
    interrupts.install()  # from here on, a first Ctrl-C or SIGTERM stops the session, a second one exits
    args = build_parser().parse_args(argv)
    try:
        cfg, replay = _checked_input(args)
        virtual = args.virtual_time or (replay is not None and cfg.replay.as_fast_as_possible)
        paths, console = _claim(args, cfg, virtual)
    except _Usage as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    _announce(cfg, paths, replay)
    session = partial(run_session, cfg, paths, interrupts=interrupts, replay=replay)
    try:
        if virtual:

            async def on_virtual_clock() -> SessionResult:
                memory_network()
                return await session()

            result = trio.run(on_virtual_clock, clock=trio.testing.MockClock(autojump_threshold=0))
        else:
            result = trio.run(partial(session, live_console=console))
    except Exception as exc:  # one boundary for what no supervisor handled
        # the traceback goes to the session log only (DEBUG is below the terminal's level)
        logger.bind(actor="session").opt(exception=exc).debug("session failed: {}", exc)
        print(f"session failed: {type(exc).__name__}: {exc} (details in {paths.log})", file=sys.stderr)
        _complete_latest(paths)
        return EXIT_FAILED
    print(_summary(result), flush=True)
    report_error = _write_report(paths)
    _complete_latest(paths)
    print(_files_written(paths), flush=True)
    if result.kpi_error or result.kpi.get("disk_error") or report_error:
        print(on_disk(result, report_error), file=sys.stderr)
    return result.exit_code


def _checked_input(args: argparse.Namespace) -> tuple[Config, ReplayMarket | None]:
    """The config with the flags applied, checked, and the pre-rolled recording of a replay; _Usage otherwise."""
    try:
        cfg = config_mod.load(args.config, overrides_from(args))
    except ConfigError as exc:
        raise _Usage(f"config error: {exc}") from None
    if args.virtual_time and cfg.session.market != "sim":
        hint = " (a replay uses --as-fast-as-possible)" if cfg.session.market == "replay" else ""
        raise _Usage(f"config error: --virtual-time needs market = 'sim', got {cfg.session.market!r}{hint}")
    if args.speed is not None and cfg.session.market != "replay":
        raise _Usage(
            f"command line error: --speed paces a replay (--replay FILE, or market = 'replay'); "
            f"got market {cfg.session.market!r}"
        )
    if args.session_id is not None and not _SESSION_ID.match(args.session_id):
        raise _Usage(f"command line error: --session-id expected letters, digits, '_' or '-', got {args.session_id!r}")
    if cfg.session.market != "replay":
        return cfg, None
    try:
        return cfg, prepare_replay(cfg)
    except RecordingError as exc:
        raise _Usage(f"replay error: {exc}") from None


def _claim(args: argparse.Namespace, cfg: Config, virtual: bool) -> tuple[SessionPaths, Any]:
    """The session's files (an id no other session has) and its logging: (paths, the live view's console)."""
    logs_dir = Path(cfg.session.logs_dir)
    try:
        paths = claim_session(logs_dir, args.session_id, new_session_id())
        console = None
        if sys.stdout.isatty() and not virtual:
            from rich.console import Console

            console = Console()
        configure_logging(paths.log, console=console)
    except SessionIdTaken as exc:
        raise _Usage(f"command line error: --session-id: {exc}") from None
    except OSError as exc:
        raise _Usage(
            f"config error: {args.config}: $.session.logs_dir: cannot write session files in {str(logs_dir)!r}: "
            f"{exc.strerror or exc}"
        ) from None
    try:
        point_latest(paths)
    except OSError as exc:
        logger.bind(actor="session").warning(
            "{}/latest/ not updated ({}): follow {} instead", logs_dir, exc.strerror or exc, paths.log
        )
    return paths, console


def _announce(cfg: Config, paths: SessionPaths, replay: ReplayMarket | None) -> None:
    """The log's first lines: what runs, where its files go, what a replay serves."""
    log = logger.bind(actor="session")
    s = cfg.session
    log.info(
        "session {}: market {}, {:g} s, seed {}, logs in {}",
        paths.session_id,
        s.market,
        s.duration_s,
        s.seed,
        paths.logs_dir,
    )
    st = cfg.strategy
    zones = ", ".join(f"{e:g}/{t:g}" for e, t in st.params().zones) or f"{st.entry_bps:g}/{st.tp_bps:g}"
    if st.fill_model == "calibrated":
        calibration = config_mod.read_calibration(st.calibration)
        model = f"calibrated ({st.calibration_mode}), calibration {calibration.version} from {st.calibration}"
    else:
        model = "simple (what the visible depth allows)"
    log.info("strategy: zones (entry/tp bps) {}; fill model {}", zones, model)
    if replay is None:
        return
    log.info(
        "replay of {}: recorded {}, synthesised {} (model FX and premium, seed {}); served {}, {}; until the "
        "recording ends or after session.duration_s = {:g} s (--duration), whichever comes first",
        " + ".join(replay.recording.sources),
        ", ".join(sorted(replay.recorded)),
        ", ".join(replay.synthesised) or "nothing",
        s.seed,
        "directly to the feeds (replay.via)" if replay.direct else "by the embedded exchange's servers",
        replay_pace(cfg),
        s.duration_s,
    )


def _write_report(paths: SessionPaths) -> str | None:
    """The report (and the trades beside it), after the summary: its line ends the summary. Why it could not
    be written, or None."""
    try:
        from actors.tools.report import write_report

        report = write_report(paths.logs_dir, paths.session_id)
    except Exception as exc:  # the session's data files are complete either way
        logger.bind(actor="session").opt(exception=exc).debug("report failed: {}", exc)
        print(
            f"  report not written: {type(exc).__name__}: {exc} (python -m actors.tools.report retries)",
            file=sys.stderr,
        )
        return str(exc) or type(exc).__name__
    trades = f", trades in {paths.trades.name}" if paths.trades.exists() else ""
    print(f"  report: {report}{trades}")
    return None


def _kpi_on_disk(path: Path) -> str:
    """What the KPI file on disk is, in words, when the final one could not be written."""
    try:
        kpi = json.loads(read_bounded(path, KPI_MAX_BYTES))
        final, status, traded = kpi["final"], kpi["status"], float(kpi["duration_s"])
    except (InputError, ValueError, KeyError, TypeError):
        return f"{path.name}: absent or unreadable"
    if final:
        return f"{path.name}: the final KPI file (status {status})"
    return (
        f'{path.name}: an earlier snapshot ("final": false, status {status}, {traded:.1f} s traded), NOT the '
        "final figures: those are the summary above"
    )


def on_disk(result: SessionResult, report_error: str | None) -> str:
    """After a disk error (or a report that could not be written): what the session left on disk and what it
    did not, file by file, on stderr (docs/reliability.md, Disk errors)."""
    paths, k = result.paths, as_kpi(result.kpi)
    lines = [
        f"on disk in {paths.logs_dir}/ after the disk error:" if k.disk_error else f"on disk in {paths.logs_dir}/:"
    ]
    if k.disk_error:
        lines.append(f"  the error: {k.disk_error}")
    if paths.fill_events.exists():
        lines.append(
            f"  {paths.fill_events.name}: {k.fill_events_written} of the {k.fill_events} fill events produced, "
            "every line whole"
        )
    if result.kpi_error:
        lines.append("  " + _kpi_on_disk(paths.kpi))
        lines.append(f"  not written: the final KPI file ({result.kpi_error})")
    elif paths.kpi.exists():
        lines.append(f"  {paths.kpi.name}: the final KPI file (status {k.status})")
    for path, what in ((paths.premium, "the premium series, up to the error if it failed"), (paths.log, "the log")):
        if path.exists():
            lines.append(f"  {path.name}: {what}")
    written = [p.name for p in (paths.report, paths.trades) if p.exists()]
    missing = [p.name for p in (paths.report, paths.trades) if not p.exists()]
    if written:
        lines.append(f"  {', '.join(written)}: written whole")
    if report_error:
        lines.append(
            f"  not written: {', '.join(missing) or 'the report'} and the plots not listed above ({report_error}); "
            f"no file is left cut short, and latest/ links none of them. To write them again (once the disk has "
            f"room): python -m actors.tools.report {paths.logs_dir} --session {paths.session_id}"
        )
    return "\n".join(lines)


def _complete_latest(paths: SessionPaths) -> None:
    """latest/ links every file the session wrote, now that the report is written (if still this session's)."""
    try:
        complete_latest(paths)
    except OSError as exc:
        logger.bind(actor="session").warning(
            "{}/latest/ not completed ({}): the files are in {}", paths.logs_dir, exc.strerror or exc, paths.logs_dir
        )


if __name__ == "__main__":
    sys.exit(main())
