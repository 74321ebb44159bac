"""The embedded exchange as a program of its own: ``python -m actors.sim --config PATH [...]`` (docs/simulator.md).

Serves the ``[sim]`` model (or, with ``--replay``, recordings) on Upbit's and Binance's wire protocols until
Ctrl-C or SIGTERM, for any client. stdout carries exactly one line, the endpoints as JSON, flushed as soon
as the servers listen; everything else (log lines, a status line every ``STATUS_INTERVAL_S``, the totals
at the end) goes to stderr. Exit status: 0 once stopped by a signal, 2 for bad input (config, command line,
recording, a port or host that cannot be served), one line on stderr and no traceback.

It sits with the other command lines, above the config it reads (``actors/sim/`` is below ``actors.config``);
``actors/sim/__main__.py`` runs it.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import signal
import sys
from functools import partial
from typing import Any, NoReturn

import trio
from loguru import logger

from actors import config as config_mod
from actors.config import Config, ConfigError, Loaded
from actors.conventions import ExitCode
from actors.logs import configure_logging
from actors.sim.exchange import HubStatistics, SimEndpoints, SimHub
from actors.sim.recordings import RecordingError
from actors.sim.replay import ReplayHub, ReplayMarket, ReplayPacer
from actors.sim.serve import SimPorts, serve_hub, simulated_hub
from actors.wiring import prepare_replay, replay_pace

STATUS_INTERVAL_S = 10.0
DEFAULT_HOST = "127.0.0.1"
PROG = "python -m actors.sim"


class _Usage(Exception):
    """Bad input found before the exchange serves: one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # exit 2 with one line, like a config error
        self.exit(ExitCode.USAGE, f"{self.prog}: {message}\n")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number from 0 to 65535, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 0 to 65535, got {port}")
    return port


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description="Run the embedded Upbit + Binance exchange simulator for any client, until Ctrl-C. "
        "stdout: one JSON line with the endpoints; stderr: log and status lines (docs/simulator.md).",
    )
    p.add_argument(
        "--config",
        required=True,
        metavar="PATH",
        help="TOML config; its [sim] table sets the market and faults (required)",
    )
    p.add_argument(
        "--replay",
        nargs="+",
        metavar="FILE",
        help="serve these recordings (ours, hftbacktest or cryptofeed; merged by time) instead of the model; "
        "default: none, unless the config says session.market = 'replay' (then its replay.files)",
    )
    p.add_argument(
        "--speed",
        type=float,
        metavar="X",
        help="replay at X times the recorded pace (default: the config's replay.speed, 1)",
    )
    p.add_argument(
        "--seed", type=int, metavar="N", help="seed of the model and its random faults (default: session.seed)"
    )
    p.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default: {DEFAULT_HOST}); any other than loopback makes the exchange "
        "reachable from the network",
    )
    p.add_argument(
        "--upbit-port", type=_port, default=0, metavar="P", help="Upbit WebSocket port (default: 0, any free port)"
    )
    p.add_argument(
        "--binance-ws-port",
        type=_port,
        default=0,
        metavar="P",
        help="Binance WebSocket streams port (default: 0, any free port)",
    )
    p.add_argument(
        "--binance-rest-port",
        type=_port,
        default=0,
        metavar="P",
        help="Binance REST port, /api/v3/depth (default: 0, any free port)",
    )
    return p


def overrides_from(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The command line as config overrides. A replay is always served by the exchange's servers on the
    real clock (replay.via and replay.as_fast_as_possible are a session's choices)."""
    out: dict[str, dict[str, Any]] = {"replay": {"via": "exchange", "as_fast_as_possible": False}}
    if args.seed is not None:
        out["session"] = {"seed": args.seed}
    if args.replay:
        out.setdefault("session", {})["market"] = "replay"
        out["replay"]["files"] = args.replay
    if args.speed is not None:
        out["replay"]["speed"] = args.speed
    return out


def _checked_input(args: argparse.Namespace) -> tuple[Loaded, ReplayMarket | None]:
    """The config with the flags applied (and the files it names, parsed), and the pre-rolled recording of a
    replay; _Usage otherwise."""
    try:
        loaded = config_mod.load_with_inputs(args.config, overrides_from(args))
    except ConfigError as exc:
        raise _Usage(f"config error: {exc}") from None
    cfg = loaded.config
    if cfg.session.market != "replay":
        if args.speed is not None:
            raise _Usage("command line error: --speed needs --replay (or session.market = 'replay' in the config)")
        return loaded, None
    try:
        return loaded, prepare_replay(cfg, loaded.inputs)
    except RecordingError as exc:
        raise _Usage(f"replay error: {exc}") from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- status ----------------------------------------------------------------------------------------


def status_line(before: HubStatistics, now: HubStatistics, elapsed_s: float) -> str:
    """Connections and frames/s per venue over the last interval, and faults so far."""
    parts = []
    for venue, v in now.venues.items():
        rate = (v.frames_sent - before.venues[venue].frames_sent) / elapsed_s if elapsed_s > 0 else 0.0
        parts.append(f"{venue} {v.connected} connected ({v.opened} opened), {rate:.1f} frames/s")
    return "status: " + "; ".join(parts) + f"; {_faults(now)}"


def totals_line(stats: HubStatistics, elapsed_s: float) -> str:
    """What the exchange did over its whole run."""
    parts = [f"{venue} {v.opened} opened, {v.frames_sent} frames" for venue, v in stats.venues.items()]
    return f"totals after {elapsed_s:.1f} s: " + "; ".join(parts) + f"; {_faults(stats)}"


def _faults(stats: HubStatistics) -> str:
    detail = ", ".join(f"{kind} {n}" for kind, n in sorted(stats.faults_injected.items()))
    return f"faults injected {stats.faults_total}" + (f" ({detail})" if detail else "")


def _replay_state(pacer: ReplayPacer) -> str:
    if pacer.finished.is_set():
        return "replay ended, serving its last books"
    if pacer.started_at is None:
        return "replay waiting for a client on each venue"
    return f"replay at {pacer.market.served_s:.1f} s of the recording"


async def _report_status(hub: SimHub, pacer: ReplayPacer | None, interval_s: float) -> None:
    log = logger.bind(actor="sim")
    before, since = hub.statistics(), trio.current_time()
    while True:
        await trio.sleep(interval_s)
        now, at = hub.statistics(), trio.current_time()
        line = status_line(before, now, at - since)
        log.info(line + (f"; {_replay_state(pacer)}" if pacer is not None else ""))
        before, since = now, at


async def _announce_replay_end(pacer: ReplayPacer) -> None:
    await pacer.finished.wait()
    logger.bind(actor="sim").info(
        "the recording has ended: the exchange keeps serving its last books (REST answers, no more updates) "
        "until Ctrl-C"
    )


# -- running ---------------------------------------------------------------------------------------


def _print_endpoints(endpoints: SimEndpoints) -> None:
    doc = {
        "upbit_url": endpoints.upbit_url,
        "binance_ws_url": endpoints.binance_ws_url,
        "binance_rest_url": endpoints.binance_rest_url,
        "upbit_rest_url": endpoints.upbit_rest_url,  # /v1/market/all (a market of many coins lists them there)
    }
    print(json.dumps(doc), flush=True)


def _os_error(group: BaseExceptionGroup) -> OSError | None:
    """The first OSError in a (nested) group of a server that could not listen."""
    found: BaseException | None = group.subgroup(OSError)
    while isinstance(found, BaseExceptionGroup):
        found = found.exceptions[0]
    return found if isinstance(found, OSError) else None


async def _serve(hub: SimHub, cfg: Config, args: argparse.Namespace, pacer: ReplayPacer | None) -> None:
    """Serve until Ctrl-C / SIGTERM; _Usage if a server cannot listen."""
    log = logger.bind(actor="sim")
    ports = SimPorts(args.upbit_port, args.binance_ws_port, args.binance_rest_port)
    serving = False
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        started_at = trio.current_time()
        try:
            async with trio.open_nursery() as nursery:
                endpoints = await nursery.start(
                    partial(serve_hub, hub, host=args.host, ports=ports, binance_symbol=cfg.feeds.binance.symbol)
                )
                serving = True
                _print_endpoints(endpoints)
                nursery.start_soon(_report_status, hub, pacer, STATUS_INTERVAL_S)
                if pacer is not None:
                    nursery.start_soon(_announce_replay_end, pacer)
                async for signum in signals:
                    name = signal.Signals(signum).name
                    log.info("{} received: stopping", name)
                    nursery.cancel_scope.cancel(reason=f"{name} received")
                    break
        except BaseExceptionGroup as group:
            error = None if serving else _os_error(group)
            if error is None:
                raise
            raise _Usage(f"cannot serve on {args.host}: {error.strerror or error}") from None
        if serving:
            log.info(totals_line(hub.statistics(), trio.current_time() - started_at))


def _hub(loaded: Loaded, replay: ReplayMarket | None) -> tuple[SimHub, ReplayPacer | None]:
    cfg = loaded.config
    if replay is None:
        return simulated_hub(cfg.sim, cfg.session.seed, cfg.feeds.binance.symbol, loaded.inputs.market_model), None
    pacer = ReplayPacer(replay, cfg.replay.speed, replay_pace(cfg))
    return ReplayHub(replay, cfg.sim, cfg.session.seed, pacer, cfg.replay.read_ahead_bytes), pacer


def _announce(cfg: Config, args: argparse.Namespace, replay: ReplayMarket | None) -> None:
    log = logger.bind(actor="sim")
    if not _is_loopback(args.host):
        log.warning(
            "listening on {}: the exchange is reachable from the network (no TLS, no authentication)", args.host
        )
    if replay is None:
        log.info("serving the [sim] model of {} (seed {})", args.config, cfg.session.seed)
        return
    log.info(
        "serving a replay of {} {} (recorded {}, synthesised {}); it starts once each venue has a client",
        " + ".join(replay.recording.sources),
        replay_pace(cfg),
        ", ".join(sorted(replay.recorded)),
        ", ".join(replay.synthesised) or "nothing",
    )


def _only_interrupts(group: BaseExceptionGroup) -> bool:
    """Whether every exception in ``group`` is a KeyboardInterrupt (Ctrl-C, or SIGTERM outside the Trio run)."""
    _, rest = group.split(KeyboardInterrupt)
    return rest is None


def main(argv: list[str] | None = None) -> int:
    # until the Trio run listens for signals (and after it), SIGTERM stops the program as Ctrl-C does
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        args = build_parser().parse_args(argv)
        configure_logging(None)
        loaded, replay = _checked_input(args)
        _announce(loaded.config, args, replay)
        hub, pacer = _hub(loaded, replay)
        trio.run(_serve, hub, loaded.config, args, pacer)
    except _Usage as exc:
        print(exc, file=sys.stderr)
        return ExitCode.USAGE
    except KeyboardInterrupt:  # before the Trio run listened for signals, or a second one while stopping
        print("stopped by a signal", file=sys.stderr)
    except BaseExceptionGroup as group:
        if not _only_interrupts(group):
            raise
        print("stopped by a signal", file=sys.stderr)
    return ExitCode.OK
