import math

import pytest

from actors.core.calibration import beta_params, build, from_dict, to_dict
from actors.core.vocabulary import Zone


def events(zone, side, ratios, leg="entry"):
    return [{"entry_bps": zone[0], "tp_bps": zone[1], "side": side, "fill_ratio": r, "leg": leg} for r in ratios]


def test_build_per_zone_and_side_with_intervals_and_fallback():
    evs = (
        events((10, 12), "BUY", [0.2, 0.3, 0.25, 0.35, 0.15, 0.25])
        + events((10, 12), "SELL", [1.0] * 6)
        + events((5, 5), "BUY", [0.9, 1.0])
        + events((5, 5), "SELL", [0.8] * 5)
        + events((5, 5), "SELL", [0.1], leg="hedge")
    )
    cal = build(evs, "v1", sources=("a.jsonl",), min_samples=5)
    buy = cal.lookup(Zone(10, 12), "BUY")
    assert buy.n == 6 and buy.mean == pytest.approx(0.25)
    half = 1.96 * math.sqrt(buy.var / 6)
    assert buy.ci95 == pytest.approx((0.25 - half, 0.25 + half))
    assert cal.lookup(Zone(10, 12), "SELL").ci95 == (1.0, 1.0)
    thin = cal.lookup(Zone(5, 5), "BUY")  # only 2 samples: the pooled fallback, labelled
    assert thin.n == 8 and "fallback: only 2 samples" in thin.source
    assert cal.lookup(Zone(5, 5), "SELL").mean == pytest.approx(0.8)  # hedge legs are not zone orders
    assert cal.lookup(Zone(99, 99), "SELL") == cal.fallback["SELL"]
    assert from_dict(to_dict(cal)) == cal


def test_beta_params_match_the_moments():
    a, b = beta_params(0.3, 0.01)
    assert a / (a + b) == pytest.approx(0.3)
    assert a * b / ((a + b) ** 2 * (a + b + 1)) == pytest.approx(0.01)
    assert beta_params(1.0, 0.0) is None and beta_params(0.5, 0.3) is None


def test_malformed_calibration_is_rejected_with_the_reason():
    with pytest.raises(ValueError, match="KeyError"):
        from_dict({"version": "x", "zones": []})
    good = to_dict(build(events((1, 1), "BUY", [0.5] * 5) + events((1, 1), "SELL", [0.5] * 5), "x"))
    good["zones"][0]["BUY"]["mean"] = 1.5
    with pytest.raises(ValueError, match="outside"):
        from_dict(good)


def test_nothing_to_calibrate():
    with pytest.raises(ValueError, match="no BUY or no SELL"):
        build(events((1, 1), "BUY", [0.5]), "x")
