"""Parameter sweeps over recordings or over the simulated market: ``python -m actors.sweep --config PATH
(--replay FILE... | --sim-seeds SEEDS) --grid KEY=V1,V2 ... [--engine local|ray] [--address ADDR] [--workers N]
[--out DIR] [--resume]``.

Every grid point x recording is one replay session on the virtual clock (``--as-fast-as-possible``), and every
grid point x seed of ``--sim-seeds`` one simulated session on it (``--virtual-time``), run by ``run_task`` in a
worker process with its own ``trio.run``: a local process pool by default, or Ray tasks (``pip install
.[ray]``; a local Ray instance unless ``--address`` names a cluster). Each run's files go to
``<out>/runs/<run_id>/``; each finished row is appended to ``<out>/rows.jsonl`` at once, so an interrupted sweep
keeps what finished and ``--resume`` skips rows already done. ``results.csv``, ``results_by_point.csv`` (each
grid point over its seeds or recordings), ``results.md`` (which market, then both sorted by PnL) and
``heatmap.png`` (mean PnL over two grid keys, coloured from zero) are written at the end, or at Ctrl-C from the
rows so far. A grid key whose values would all give the same runs (``strategy.entry_bps`` while ``[strategy]
zones`` is set, ``session.seed`` in a sweep over seeds) is refused before anything starts. docs/scaling.md.
"""

from actors.sweep.grid import SweepError, parse_grid, parse_seeds, plan, plan_sim
from actors.sweep.results import (
    SweepRow,
    by_point,
    read_rows,
    row_document,
    row_from_document,
    write_heatmap,
    write_tables,
)

__all__ = [
    "SweepError",
    "SweepRow",
    "by_point",
    "parse_grid",
    "parse_seeds",
    "plan",
    "plan_sim",
    "read_rows",
    "row_document",
    "row_from_document",
    "write_heatmap",
    "write_tables",
]
