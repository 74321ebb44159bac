"""Figures in the report's tables, formatted once (the session report, its ledger section, the comparison)."""

from __future__ import annotations

from typing import Any

from actors.tools.report_plots import clean


def fmt(x: Any, digits: int = 4) -> str:
    """A figure for a table: ``digits`` significant digits, thousands separated from 10,000 on."""
    if x is None:
        return "-"
    if isinstance(x, float):
        x = clean(x)
        return f"{x:.{digits}g}" if abs(x) < 1e4 else f"{x:,.0f}"
    return str(x)


def num(x: float | None, spec: str) -> str:
    """``x`` formatted with ``spec`` (``"+.4f"``), or "-"; a value that rounds to zero shows no sign."""
    if x is None:
        return "-"
    text = format(clean(x), spec)
    if float(text.replace(",", "")) == 0:
        text = format(0.0, spec.replace("+", ""))
    return text
