"""The markets tests run on.

Sessions and replays run on the market model fitted to the real market (``market_model = "default"``),
where the demo strategies trade a few times an hour at most (docs/simulator.md). Tests of trading mechanics
that need trades within seconds (fills, hedges, reports of trades, identical fill events two ways) run on
the earlier Ornstein-Uhlenbeck premium instead, not fitted to anything: a premium of std 30 bps reverting in
20 s, as the demo had before the fitted model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OU_SIM: dict[str, Any] = {
    "market_model": "ou",
    "premium_mean_bps": 30,
    "premium_std_bps": 30,
    "premium_reversion_s": 20,
}


def on_ou(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Config overrides with the OU market added (``config.load(path, on_ou({...}))``)."""
    out = dict(overrides or {})
    out["sim"] = {**OU_SIM, **out.get("sim", {})}
    return out


def ou_config(tmp_path: Path, base: str | Path = ROOT / "config" / "demo.toml") -> Path:
    """A copy of a shipped config on the OU market, for command lines (``--config``)."""
    text = Path(base).read_text()
    marker = 'market_model = "default"'
    assert marker in text, f"{base} does not select its market model in one line"
    ou = "\n".join(f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}" for k, v in OU_SIM.items())
    path = tmp_path / f"{Path(base).stem}_ou.toml"
    path.write_text(text.replace(marker, ou.replace("'", '"')))
    return path
