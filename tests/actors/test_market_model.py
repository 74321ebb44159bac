"""The fitted market model: one process whichever way it is stepped, seeded, Upbit following Binance, its
parameters refused with the key named when a file is wrong, and the simulator on it."""

import json
import math

import attrs
import numpy as np
import pytest

from actors.sim import market_file
from actors.sim.market_model import CHUNK, MarketParams, MarketProcess
from actors.sim.model import BINANCE_BTC, UPBIT_BTC, UPBIT_USDT, SimMarket
from actors.sim.settings import SimConfig


@pytest.fixture(scope="module")
def params() -> MarketParams:
    return market_file.read(str(market_file.DEFAULT_PATH)).params


def test_the_step_path_and_the_bulk_path_are_one_process(params):
    n = CHUNK + 1234  # across a block of draws
    one, other = MarketProcess(params, 0.1, 5), MarketProcess(params, 0.1, 5)
    stepped = []
    for _ in range(n):
        one.step()
        stepped.append((one.state.b, one.state.d + one.state.f, one.state.fx))
    bulk = other.run(n)
    b, premium, fx = (np.array(c) for c in zip(*stepped))
    assert np.allclose(b, bulk.binance, atol=1e-7)
    assert np.allclose(premium, bulk.premium, atol=1e-7)
    assert np.allclose(fx, bulk.fx, atol=1e-7)
    # and they go on alike: the bulk path leaves the draws where the step path would
    one.step()
    other.step()
    assert math.isclose(one.state.b, other.state.b, abs_tol=1e-7)


def test_a_bulk_run_in_pieces_is_the_same_run(params):
    whole, pieces = MarketProcess(params, 0.5, 9), MarketProcess(params, 0.5, 9)
    a = whole.run(3 * CHUNK)
    parts = [pieces.run(k) for k in (100, CHUNK, 2 * CHUNK - 100)]
    assert np.allclose(a.premium, np.concatenate([p.premium for p in parts]), atol=1e-7)


def test_same_seed_same_market_and_another_seed_another(params):
    a, b, c = (MarketProcess(params, 0.1, s).run(5000) for s in (3, 3, 4))
    assert np.array_equal(a.premium, b.premium) and np.array_equal(a.binance, b.binance)
    assert not np.allclose(a.premium, c.premium)


def test_upbit_follows_a_pinned_binance_with_the_fitted_lag(params):
    quiet = attrs.evolve(
        params,
        upbit=attrs.evolve(params.upbit, noise_bps=0.0, beta=1.0),
        premium=attrs.evolve(params.premium, slow_std_bps=0.0, medium_std_bps=0.0),
    )
    process = MarketProcess(quiet, 0.1, 1)
    for _ in range(10):
        process.step(binance_bps=0.0)
    before = process.state.d
    process.step(binance_bps=100.0)  # Binance jumps 100 bps; Upbit has not followed yet
    # a move at any time within the step: what Upbit has not followed by its end, on average
    tau = quiet.upbit.lag_s
    assert process.state.d - before == pytest.approx(-100.0 * -math.expm1(-0.1 / tau) * tau / 0.1, rel=1e-6)
    steps = round(quiet.upbit.lag_s / 0.1)
    for _ in range(steps - 1):
        process.step(binance_bps=100.0)
    # one lag later the premium has given back all but 1/e of the move
    assert process.state.d - before == pytest.approx(-100.0 / math.e, rel=0.02)


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda d: d.pop("upbit"), "params.upbit: expected a table, got nothing"),
        (
            lambda d: d["binance"].update(vol_bps_per_min="7"),
            "params.binance.vol_bps_per_min: expected a finite number, got '7'",
        ),
        (
            lambda d: d["premium"].update(mean_bps=float("nan")),
            "params.premium.mean_bps: expected a finite number, got nan",
        ),
        (lambda d: d["upbit"].update(lag_s=-1.0), "params.upbit:"),
        (lambda d: d["fx"].update(drift=1.0), "params.fx.drift: not a parameter of this model"),
        (lambda d: d.update(kraken={}), "params: unknown section 'kraken'"),
        (lambda d: d["binance"].update(jumps_per_hour=True), "params.binance.jumps_per_hour: expected a finite number"),
    ],
)
def test_a_bad_parameter_is_named(params, change, problem):
    document = params.as_dict()
    change(document)
    with pytest.raises(ValueError) as err:
        MarketParams.from_dict(document)
    assert str(err.value).startswith(problem)


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a market model (expected a JSON object)"),
        (b'{"kind": "calibration"}', "not a market model (its kind is 'calibration'"),
        (b'{"kind": "arb-paper market model", "version": 99}', "version 99 of the model format"),
        (b"[" * 100_000, "not JSON"),
    ],
)
def test_a_file_that_is_not_a_model_is_refused_in_words(tmp_path, content, problem):
    path = tmp_path / "model.json"
    path.write_bytes(content)
    with pytest.raises(market_file.MarketModelError) as err:
        market_file.read(str(path))
    assert problem in str(err.value)


def test_a_directory_or_a_huge_file_is_refused(tmp_path):
    with pytest.raises(market_file.MarketModelError, match="is a folder, not a file"):
        market_file.read(str(tmp_path))
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as f:
        f.truncate(market_file.MAX_BYTES + 1)
    with pytest.raises(market_file.MarketModelError):
        market_file.read(str(huge))


def test_the_shipped_model_round_trips_through_its_file(tmp_path, params):
    document = json.loads(market_file.DEFAULT_PATH.read_text())
    assert MarketParams.from_dict(document["params"]) == params
    copy = tmp_path / "copy.json"
    copy.write_text(json.dumps(document))
    assert market_file.read(str(copy)).params == params


def test_the_simulator_on_the_fitted_model_moves_its_books_with_it(params):
    cfg = SimConfig()
    market = SimMarket(cfg, 3, 0, params)
    mids = []
    for _ in range(600):
        market.step()
        m = market.mids()
        mids.append((m[BINANCE_BTC], m[UPBIT_BTC], m[UPBIT_USDT]))
    bids, asks = market.books[BINANCE_BTC].top(1)
    assert bids[0][0] < mids[-1][0] < asks[0][0]
    implied = [u / (b * fx) for b, u, fx in mids]
    premium = (implied[-1] - 1) * 1e4
    assert premium == pytest.approx(market.premium_bps, abs=1e-6)
    # Binance's mid is still in most 100 ms steps (it moves about moves_per_s times a second)
    still = np.mean(np.diff([b for b, _, _ in mids]) == 0)
    assert still == pytest.approx(math.exp(-params.binance.moves_per_s * 0.1), abs=0.08)


def test_a_fitted_model_without_its_parameters_is_refused():
    with pytest.raises(ValueError, match="needs its parameters"):
        SimMarket(SimConfig(), 1, 0)
    SimMarket(SimConfig(market_model="ou"), 1, 0)  # the OU model needs none


def test_the_command_line_chooses_the_market_model_and_names_a_bad_one(tmp_path):
    import subprocess
    import sys

    from actors import config
    from actors.cli import build_parser, overrides_from

    root = market_file.DEFAULT_PATH.parents[2]
    args = build_parser().parse_args(["--config", "config/demo.toml", "--market-model", "ou"])
    assert config.load(root / "config" / "demo.toml", overrides_from(args)).sim.market_model == "ou"
    bad = tmp_path / "model.json"
    bad.write_text('{"kind": "arb-paper market model", "version": 1, "params": {"binance": {}}}')
    proc = subprocess.run(
        [sys.executable, "-m", "actors.session", "--config", "config/demo.toml", "--market-model", str(bad)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert (
        f"$.sim.market_model: {str(bad)!r}: params.binance.jump_scale_bps: missing (expected a finite number)"
        in proc.stderr
    )
