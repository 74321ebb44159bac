"""The session's command line: ``python -m actors.session --config PATH [...]`` (docs/config.md).

Parses the flags into config overrides, checks the config, claims the session's files (and points
``latest/`` at those that exist), sets up logging (stderr for people, the session log for ``tail -f``),
runs the session in real or virtual time, prints the summary (a run without a trade says why), writes
the report, completes ``latest/`` and lists every file written. Exit codes: ``actors.conventions.ExitCode``.
"""

from __future__ import annotations

import argparse
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
from actors.config import Config, ConfigError, Loaded
from actors.conventions import ExitCode
from actors.interrupts import Interrupts
from actors.logs import configure_logging
from actors.net.memory import memory_network
from actors.records.paths import SessionIdTaken, SessionPaths, claim_session, complete_latest, point_latest
from actors.records.summary import files_written, on_disk, summary
from actors.session import SessionResult, run_session
from actors.session.market import MarketUnavailable
from actors.sim.recordings import RecordingError
from actors.sim.replay import ReplayMarket
from actors.wiring import prepare_replay, replay_pace

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = (
    ExitCode.OK,
    ExitCode.FAILED,
    ExitCode.USAGE,
    ExitCode.INTERRUPTED,
)
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]+$")


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
    _book_source_arguments(p)
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


def _book_source_arguments(p: argparse.ArgumentParser) -> None:
    """Where the books come from: the market, a recording to replay and how it is paced and served."""
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


class _Usage(Exception):
    """Bad input found before the session starts: one line on stderr, exit status 2."""


def main(argv: list[str] | None = None) -> int:
    interrupts = Interrupts()
    interrupts.install()  # from here on, a first Ctrl-C or SIGTERM stops the session, a second one exits
    args = build_parser().parse_args(argv)
    try:
        loaded, replay = _checked_input(args)
        cfg = loaded.config
        virtual = args.virtual_time or (replay is not None and cfg.replay.as_fast_as_possible)
        paths, console = _claim(args, cfg, virtual)
    except _Usage as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    _announce(loaded, paths, replay)
    session = partial(run_session, cfg, paths, interrupts=interrupts, replay=replay, inputs=loaded.inputs)
    try:
        if virtual:

            async def on_virtual_clock() -> SessionResult:
                memory_network()
                return await session()

            result = trio.run(on_virtual_clock, clock=trio.testing.MockClock(autojump_threshold=0))
        else:
            result = trio.run(partial(session, live_console=console))
    except MarketUnavailable as exc:  # the pairs could not be listed: nothing traded, no KPI file
        print(f"session not started: {exc}", file=sys.stderr)
        _complete_latest(paths)
        return EXIT_USAGE if exc.usage else EXIT_FAILED
    except Exception as exc:  # one boundary for what no supervisor handled
        # the traceback goes to the session log only (DEBUG is below the terminal's level)
        logger.bind(actor="session").opt(exception=exc).debug("session failed: {}", exc)
        print(f"session failed: {type(exc).__name__}: {exc} (details in {paths.log})", file=sys.stderr)
        _complete_latest(paths)
        return EXIT_FAILED
    print(summary(result.kpi, result.config), flush=True)
    report_error = _write_report(paths)
    _complete_latest(paths)
    print(files_written(paths), flush=True)
    if result.kpi_error or result.kpi.get("disk_error") or report_error:
        print(on_disk(paths, result.kpi, result.kpi_error, report_error), file=sys.stderr)
    return result.exit_code


def _checked_input(args: argparse.Namespace) -> tuple[Loaded, ReplayMarket | None]:
    """The config with the flags applied, checked (and the files it names, parsed), and the pre-rolled
    recording of a replay; _Usage otherwise."""
    try:
        loaded = config_mod.load_with_inputs(args.config, overrides_from(args))
    except ConfigError as exc:
        raise _Usage(f"config error: {exc}") from None
    cfg = loaded.config
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
        return loaded, None
    try:
        return loaded, prepare_replay(cfg, loaded.inputs)
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


def _announce(loaded: Loaded, paths: SessionPaths, replay: ReplayMarket | None) -> None:
    """The log's first lines: what runs, where its files go, what a replay serves."""
    log = logger.bind(actor="session")
    cfg, calibration = loaded.config, loaded.inputs.calibration
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
    if st.fill_model == "calibrated" and calibration is not None:
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
