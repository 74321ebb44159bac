"""Build a fill-ratio calibration from measured fill events.

``python -m actors.tools.calibrate FILL_EVENTS... --out config/calibration/NAME.json [--version NAME]
[--min-samples N] [--notes TEXT] [--keep-from CALIBRATION --keep ENTRY/TP ...]``, or with ``--slippage``
the slippage drift model instead (``python -m actors.calibrate`` is the same command).

``--slippage``: per venue, side and size bucket, the drift of realized from predicted slippage (mean, n,
std, 95 % interval of the mean) over the legs that filled and carry a prediction (``actors.core.slippage``,
docs/calibration.md); fill events written before predictions existed have none, and a set of files
without any is an error.

Per zone (entry_bps, tp_bps) and side: mean fill ratio, sample count, variance and a 95 % interval
for the mean (normal approximation, clipped to [0, 1]); zones with fewer than ``--min-samples``
fills on a side use the side's pooled fallback and say so. The source files are listed in the
output. ``--keep ENTRY/TP`` copies that zone, numbers and sources unchanged, from the calibration
``--keep-from`` instead of measuring it (for zones measured elsewhere, such as live runs). A torn
last line (a session killed mid-write) is skipped with a warning.

Fill events of the calibrated fill model (``fill_model`` = "calibrated") hold that calibration's own
ratios: a refit gives them back. A warning on stderr says so and how many legs they are (more bluntly
when every zone and side repeats one ratio, the deterministic mode); the exit status does not change.

Bad input is one line on stderr naming the file (and line) and the problem, and exit status 2 (the rule of
every command: docs/reliability.md): a file that is not a regular file, a line that is not JSON or not a
fill event (the fields used here are checked by a typed decoder: ``leg``; for entry and exit legs ``side``
BUY or SELL, ``fill_ratio`` in [0, 1], ``entry_bps`` and ``tp_bps`` > 0, ``fill_model`` simple or
calibrated if present), a line over 16 MiB, a ``--keep-from`` file that is not a calibration, an ``--out``
that cannot go where it is asked to (a folder, a path under a file, no permission). An ``--out`` that the
disk fails (full, an I/O error) is one line too, and exit status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import msgspec

from actors.conventions import ExitCode, write_failure_status
from actors.core import calibration, slippage
from actors.core.vocabulary import Zone
from actors.inputs import MAX_LINE_BYTES, MIB, BadLine, read_jsonl, read_text_bounded

CALIBRATION_MAX_BYTES = 16 * MIB
_SAME_RATIO = 1e-9  # fill ratios closer than this are one ratio (the deterministic calibrated model's)

_Ratio = Annotated[float, msgspec.Meta(ge=0, le=1)]
_Bps = Annotated[float, msgspec.Meta(gt=0)]


class _Measured(msgspec.Struct, tag_field="leg"):
    """An entry or exit leg: the fields a calibration is built from (the other fields are not read)."""

    side: Literal["BUY", "SELL"]
    fill_ratio: _Ratio
    entry_bps: _Bps
    tp_bps: _Bps
    fill_model: Literal["simple", "calibrated"] | None = None  # absent in files older than the field


class _Entry(_Measured, tag="entry"):
    pass


class _Exit(_Measured, tag="exit"):
    pass


class _Hedge(msgspec.Struct, tag_field="leg", tag="hedge"):
    """Sized by the leg imbalance, not by the zone's order: not calibrated, so nothing else is read."""


_FillLine = Union[_Entry, _Exit, _Hedge]


class CalibrateError(ValueError):
    """Input calibrate cannot use; str() names the file (and line) and the problem."""


class CannotWrite(Exception):
    """The output could not be written; str() names the file and the problem, ``status`` the exit status
    (``conventions.write_failure_status``: 1 for a full disk, 2 for a place that cannot take it)."""

    def __init__(self, message: str, status: ExitCode) -> None:
        super().__init__(message)
        self.status = status


def _record(e: _Entry | _Exit | _Hedge) -> dict[str, Any]:
    """A fill-event line as the dict ``calibration.build`` reads."""
    if isinstance(e, _Hedge):
        return {"leg": "hedge"}
    return {
        "leg": "entry" if isinstance(e, _Entry) else "exit",
        "side": e.side,
        "fill_ratio": e.fill_ratio,
        "entry_bps": e.entry_bps,
        "tp_bps": e.tp_bps,
        "fill_model": e.fill_model,
    }


def _refuse(line: BadLine) -> None:
    """A line that is not a fill event ends the run with CalibrateError; a torn last line is skipped."""
    where, cause = f"{line.path}:{line.number}", line.cause
    if line.torn:
        print(f"{where}: torn last line skipped", file=sys.stderr)
        return
    if cause is None:
        raise CalibrateError(f"{where}: not a fill event: line longer than {MAX_LINE_BYTES // MIB} MiB")
    if isinstance(cause, msgspec.ValidationError):  # JSON, but not the shape of a fill event
        raise CalibrateError(f"{where}: not a fill event: {cause}")
    if isinstance(cause, msgspec.DecodeError):
        raise CalibrateError(f"{where}: not a JSON line ({cause})")
    # deeply nested JSON raises RecursionError, not a decode error
    raise CalibrateError(f"{where}: not a fill event: {type(cause).__name__}: {cause}")


class _SlippageLeg(msgspec.Struct):
    """The fields the slippage drift model is built from (the other fields are not read)."""

    venue: str
    side: Literal["BUY", "SELL"]
    order_qty: Annotated[float, msgspec.Meta(ge=0)]
    filled_qty: Annotated[float, msgspec.Meta(ge=0)]
    slippage_bps: float
    predicted_slippage_bps: float | None = None  # absent in files older than the field


def read_slippage_legs(path: Path) -> list[dict[str, Any]]:
    """The legs of one file as ``slippage.build`` reads them; CalibrateError for a line that is not one."""
    return [msgspec.structs.asdict(e) for _, e in read_jsonl(path, _SlippageLeg, on_bad=_refuse)]


def _slippage(args: argparse.Namespace, out: Path) -> int:
    """``--slippage``: build and write the drift model; one line on stderr and 2 for unusable input, 1 when the
    model cannot be written."""
    try:
        legs: list[dict[str, Any]] = []
        for name in args.files:
            legs += read_slippage_legs(Path(name))
        model = slippage.build(legs, args.version or out.stem, tuple(Path(n).name for n in args.files))
        if not model.pooled:
            raise CalibrateError(
                f"{', '.join(args.files)}: no leg that filled carries predicted_slippage_bps (fill events written "
                "before slippage predictions); run a session with this version and calibrate its fill events"
            )
        _write(out, json.dumps(slippage.to_dict(model), indent=2) + "\n")
    except ValueError as exc:  # InputError and CalibrateError alike
        print(f"calibrate: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except CannotWrite as exc:
        print(f"calibrate: {exc}", file=sys.stderr)
        return exc.status
    for (venue, side, bucket), stats in model.buckets.items():
        lo, hi = stats.ci95
        enough = "" if stats.n >= slippage.MIN_SAMPLES else f" [under {slippage.MIN_SAMPLES} legs: pooled used]"
        print(
            f"{venue} {side} {slippage.bucket_label(bucket)} BTC: drift {stats.mean:+.4f} bps "
            f"(n={stats.n}, ci95 {lo:+.4f} to {hi:+.4f}){enough}"
        )
    print(f"wrote {out} ({sum(s.n for s in model.pooled.values())} legs from {len(args.files)} file(s))")
    return 0


def read_events(path: Path) -> list[dict[str, Any]]:
    """The fill events of one file; CalibrateError (or InputError) for the first line that is not one."""
    return [_record(e) for _, e in read_jsonl(path, _FillLine, on_bad=_refuse)]


def _zone(text: str) -> Zone:
    """A zone given on the command line (``--keep 10/12``)."""
    try:
        entry, tp = (float(x) for x in text.split("/"))
    except ValueError:
        raise CalibrateError(f"--keep expects a zone ENTRY/TP such as 10/12, got {text!r}") from None
    return Zone(entry, tp)


def _base(path: str) -> calibration.Calibration:
    """The --keep-from calibration (a bounded read: calibration files are small)."""
    text = read_text_bounded(path, CALIBRATION_MAX_BYTES)
    try:
        return calibration.from_dict(json.loads(text))
    except ValueError as exc:  # from_dict names the key; json names the position
        raise CalibrateError(f"{path}: not a calibration file ({exc})") from None
    except Exception as exc:  # deeply nested JSON raises RecursionError
        raise CalibrateError(f"{path}: not a calibration file ({type(exc).__name__}: {exc})") from None


def _write(out: Path, text: str) -> None:
    """Write ``out`` whole or not at all (a temporary file renamed over it)."""
    if out.is_dir():
        raise CalibrateError(f"{out}: cannot write (is a folder)")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, out)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        raise CannotWrite(f"{out}: cannot write ({exc.strerror or exc})", write_failure_status(exc)) from None


def echo_warning(events: list[dict[str, Any]]) -> str | None:
    """A warning when entry or exit legs came from the calibrated fill model: their fill ratios are the
    calibration's own numbers (lower only where the book's depth capped a fill), so a refit gives back what
    went in. Stronger when every zone and side repeats one ratio (the deterministic mode: std 0)."""
    measured = [e for e in events if e["leg"] != "hedge"]
    calibrated = [e for e in measured if e.get("fill_model") == "calibrated"]
    if not calibrated:
        return None
    share = f"{len(calibrated)} of {len(measured)} entry/exit legs ({len(calibrated) / len(measured):.0%})"
    measure = 'measure with fill_model = "simple" instead (config/calibration-run.toml, docs/calibration.md)'
    ratios: dict[tuple[float, float, str], list[float]] = {}
    for e in calibrated:
        ratios.setdefault((e["entry_bps"], e["tp_bps"], e["side"]), []).append(e["fill_ratio"])
    # one ratio per zone and side, up to the last bits of filled_qty / order_qty
    if len(calibrated) > len(ratios) and all(max(r) - min(r) <= _SAME_RATIO for r in ratios.values()):
        return (
            f"warning: {share} came from the calibrated fill model, and every zone and side repeats a single "
            f"fill ratio (std 0: the deterministic mode, no fill capped by depth): this refit returns that "
            f"calibration's numbers unchanged and measures nothing; {measure}"
        )
    return (
        f"warning: {share} came from the calibrated fill model: their fill ratios were drawn from a "
        f"calibration (its means, or Beta samples around them in the stochastic mode), capped only by the "
        f"book's depth, so this refit gives back the numbers that went in, not a measurement; {measure}"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m actors.tools.calibrate",
        description="Build a fill-ratio calibration (per zone and side), or with --slippage the slippage drift "
        "model (per venue, side and size bucket), from measured fill events (docs/calibration.md).",
    )
    parser.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="fill_events_<id>.jsonl files to measure; with --market, market data (docs/simulator.md)",
    )
    parser.add_argument("--out", required=True, metavar="FILE", help="calibration JSON to write (required)")
    parser.add_argument("--version", metavar="NAME", help="calibration version (default: the output file's stem)")
    parser.add_argument(
        "--min-samples",
        type=int,
        default=5,
        metavar="N",
        help="fills a zone needs on a side, else it uses the side's pooled numbers (default: %(default)s)",
    )
    parser.add_argument(
        "--notes", default="", metavar="TEXT", help="where the numbers come from, in words (default: empty)"
    )
    parser.add_argument(
        "--keep-from",
        metavar="CALIBRATION",
        help="calibration JSON to copy --keep zones from (default: none)",
    )
    parser.add_argument(
        "--keep",
        action="append",
        default=[],
        metavar="ENTRY/TP",
        help="a zone to copy from --keep-from, repeatable (default: none)",
    )
    parser.add_argument(
        "--slippage",
        action="store_true",
        help="build the slippage drift model (realized minus predicted slippage per venue, side and size "
        "bucket) instead of a fill-ratio calibration",
    )
    _market_arguments(parser)
    return parser


def _market_arguments(parser: argparse.ArgumentParser) -> None:
    market = parser.add_argument_group("--market: fit the simulated market to real prices (docs/simulator.md)")
    market.add_argument(
        "--market",
        action="store_true",
        help="fit a market model to 1-minute closes of both venues: the shared paired file, premium_<id>.csv "
        "files, recordings, or candles as upbit=FILE binance=FILE fx=FILE",
    )
    market.add_argument(
        "--prior",
        metavar="MODEL",
        help="model file to take what the data cannot show from (default: config/market/upbit_binance_btc_2024h2.json)",
    )
    market.add_argument(
        "--bootstrap",
        type=int,
        default=100,
        metavar="N",
        help="bootstrap replicates for the 95 %% intervals (default: %(default)s)",
    )
    market.add_argument(
        "--seed", type=int, default=1, help="seed of the bootstrap and of the check run (default: %(default)s)"
    )
    market.add_argument("--name", metavar="NAME", help="the model's name (default: the output file's stem)")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.market:
        from actors.tools import calibrate_market

        if args.bootstrap < 0:
            parser.error(f"argument --bootstrap: expected a whole number >= 0, got {args.bootstrap}")
        return calibrate_market.run(args)
    if args.keep and not args.keep_from:
        parser.error("--keep needs --keep-from")
    out = Path(args.out)
    if args.slippage:
        return _slippage(args, out)
    return _fill_ratios(args, out)


def _fill_ratios(args: argparse.Namespace, out: Path) -> int:
    """The fill-ratio calibration: build and write it, print its zones; one line on stderr and 2 for unusable
    input, 1 when it cannot be written."""
    events: list[dict[str, Any]] = []
    try:
        if args.min_samples < 1:
            raise CalibrateError(f"--min-samples expects a whole number >= 1, got {args.min_samples}")
        keep = [_zone(zone) for zone in args.keep]
        base = _base(args.keep_from) if args.keep_from else None
        for name in args.files:
            events += read_events(Path(name))
        result = calibration.build(
            events,
            args.version or out.stem,
            sources=tuple(Path(n).name for n in args.files),
            min_samples=args.min_samples,
        )
        result = calibration.Calibration(result.version, result.zones, result.fallback, result.sources, args.notes)
        if base is not None:
            result = calibration.keep_zones(result, base, keep, args.notes)
        _write(out, json.dumps(calibration.to_dict(result), indent=2) + "\n")
    except ValueError as exc:  # InputError, CalibrateError and calibration.build's errors alike
        print(f"calibrate: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except CannotWrite as exc:
        print(f"calibrate: {exc}", file=sys.stderr)
        return exc.status
    warning = echo_warning(events)
    if warning is not None:
        print(f"calibrate: {warning}", file=sys.stderr)
    for zone in result.zones:
        sides = ", ".join(
            f"{s} {zone.sides[s].mean:.4f} (n={zone.sides[s].n}, ci95 "
            f"{zone.sides[s].ci95[0]:.4f}-{zone.sides[s].ci95[1]:.4f})"
            for s in calibration.SIDES
        )
        print(f"zone {zone.entry_bps:g}/{zone.tp_bps:g}: {sides}{' [fallback]' if zone.fallback else ''}")
    print(f"wrote {out} ({len(events)} fill events from {len(args.files)} file(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
