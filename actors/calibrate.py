"""Build a fill-ratio calibration from measured fill events.

``python -m actors.calibrate FILL_EVENTS... --out config/calibration/NAME.json [--version NAME]
[--min-samples N] [--notes TEXT] [--keep-from CALIBRATION --keep ENTRY/TP ...]``

Per zone (entry_bps, tp_bps) and side: mean fill ratio, sample count, variance and a 95 % interval
for the mean (normal approximation, clipped to [0, 1]); zones with fewer than ``--min-samples``
fills on a side use the side's pooled fallback and say so. The source files are listed in the
output. ``--keep ENTRY/TP`` copies that zone, numbers and sources unchanged, from the calibration
``--keep-from`` instead of measuring it (for zones measured elsewhere, such as live runs). A torn
last line (a session killed mid-write) is skipped with a warning.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from actors.core import calibration


def read_events(path: Path) -> list[dict]:
    lines = path.read_text(encoding="utf-8").splitlines()
    events = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except ValueError:
            if number == len(lines):
                print(f"{path}:{number}: torn last line skipped", file=sys.stderr)
                continue
            raise ValueError(f"{path}:{number}: not a JSON line") from None
    return events


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m actors.calibrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", metavar="FILL_EVENTS")
    parser.add_argument("--out", required=True, help="calibration JSON to write")
    parser.add_argument("--version", help="calibration version (default: the output file's stem)")
    parser.add_argument("--min-samples", type=int, default=5)
    parser.add_argument("--notes", default="")
    parser.add_argument("--keep-from", metavar="CALIBRATION", help="calibration JSON to copy --keep zones from")
    parser.add_argument("--keep", action="append", default=[], metavar="ENTRY/TP",
                        help="a zone to copy from --keep-from (repeatable)")
    args = parser.parse_args(argv)
    if args.keep and not args.keep_from:
        parser.error("--keep needs --keep-from")
    events = []
    try:
        for name in args.files:
            events += read_events(Path(name))
        result = calibration.build(events, args.version or Path(args.out).stem,
                                   sources=tuple(Path(n).name for n in args.files), min_samples=args.min_samples)
        result = calibration.Calibration(result.version, result.zones, result.fallback, result.sources, args.notes)
        if args.keep_from:
            base = calibration.from_dict(json.loads(Path(args.keep_from).read_text(encoding="utf-8")))
            keep = [tuple(float(x) for x in zone.split("/")) for zone in args.keep]
            result = calibration.keep_zones(result, base, keep, args.notes)
    except (OSError, ValueError) as exc:
        print(f"calibrate: {exc}", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(calibration.to_dict(result), indent=2) + "\n", encoding="utf-8")
    for zone in result.zones:
        sides = ", ".join(f"{s} {zone.sides[s].mean:.4f} (n={zone.sides[s].n}, ci95 "
                          f"{zone.sides[s].ci95[0]:.4f}-{zone.sides[s].ci95[1]:.4f})" for s in calibration.SIDES)
        print(f"zone {zone.entry_bps:g}/{zone.tp_bps:g}: {sides}{' [fallback]' if zone.fallback else ''}")
    print(f"wrote {out} ({len(events)} fill events from {len(args.files)} file(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
