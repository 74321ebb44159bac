"""The simulated market's prices, fitted to the real Upbit/Binance market (docs/simulator.md, "The market model").

Pure and seeded: the same parameters, seed and steps give the same prices. ``MarketParams`` is what
``python -m actors.calibrate --market`` fits and writes (``config/market/*.json``); ``MarketProcess`` steps
it. Every price is a log price in bps (``1e4 * ln``); the processes, per step of ``dt`` seconds:

- **volatility** ``v``: Ornstein-Uhlenbeck around 0 with stationary std ``vol_of_vol`` and reversion time
  ``vol_reversion_min``; it scales Binance's moves and, with elasticity ``vol_elasticity``, the premium's
  fast and medium parts by ``m = exp(v - vol_of_vol^2)`` (so that the mean of ``m^2`` is 1).
- **Binance BTC/USDT** ``b``: price moves arrive as a Poisson process (``moves_per_s``: on the real stream
  the mid is still in most 100 ms steps), each normal with the size that gives ``vol_bps_per_min`` per
  minute, plus jumps (``jumps_per_hour``, Laplace sizes of scale ``jump_scale_bps``), all scaled by ``m``.
- **the premium's slow part** ``s``: Ornstein-Uhlenbeck around ``mean_bps`` (``slow_std_bps``,
  ``slow_reversion_min``, its noise scaled by ``m ** slow_vol_elasticity``: the premium wanders most when
  the market moves most) which also takes up the share ``1 - beta`` of every Binance move (Upbit follows
  only ``beta`` of a move at first; the premium absorbs the rest and gives it back as ``s`` reverts).
- **its medium part** ``x``: Ornstein-Uhlenbeck around 0 (``medium_std_bps``, ``medium_reversion_min``).
- **Upbit** follows its target, Binance plus the slow and medium premium, with an exponential lag of
  ``lag_s``: ``d`` is Upbit's followed price less Binance's; plus its own fast noise ``f`` (``noise_bps``,
  ``noise_reversion_s``). The premium (on the USDT basis, as a log) is ``d + f``.
- **USDT/KRW**: a random walk of ``vol_bps_per_day``, on its own.

The random draws come in blocks of ``CHUNK`` steps from one numpy generator, in a fixed order, so the
step-by-step path (``step``: the simulator, and a replay that pins Binance to a recording) and the bulk path
(``run``: arrays, for fitting checks and for synthesising a venue ahead of a replay) see the same draws and
give the same prices (to rounding; tests/actors/test_market_model.py).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import attrs
import numpy as np
import numpy.typing as npt

from actors.core.rules import between, non_negative, positive

Array = npt.NDArray[np.float64]
CHUNK = 4096  # steps of draws made at once
FORMAT = "arb-paper market model"  # the "kind" of a model file
VERSION = 1


@attrs.frozen
class BinanceParams:
    vol_bps_per_min: float = attrs.field(validator=positive)  # diffusive part at m = 1
    moves_per_s: float = attrs.field(validator=positive)  # how often the price moves (sub-second)
    vol_of_vol: float = attrs.field(validator=between(0, 3))  # std of log volatility
    vol_reversion_min: float = attrs.field(validator=positive)
    jumps_per_hour: float = attrs.field(validator=non_negative)
    jump_scale_bps: float = attrs.field(validator=non_negative)  # Laplace scale at m = 1


@attrs.frozen
class UpbitParams:
    lag_s: float = attrs.field(validator=positive)  # Upbit follows its target with this exponential lag
    beta: float = attrs.field(validator=between(0, 1.5))  # share of a Binance move Upbit follows at first
    noise_bps: float = attrs.field(validator=non_negative)  # Upbit's own fast noise, stationary std
    noise_reversion_s: float = attrs.field(validator=positive)


@attrs.frozen
class PremiumParams:
    mean_bps: float = attrs.field(validator=between(-5000, 5000))
    slow_std_bps: float = attrs.field(validator=non_negative)
    slow_reversion_min: float = attrs.field(validator=positive)
    medium_std_bps: float = attrs.field(validator=non_negative)
    medium_reversion_min: float = attrs.field(validator=positive)
    vol_elasticity: float = attrs.field(validator=between(0, 2))  # fast and medium noise scale with m ** this
    slow_vol_elasticity: float = attrs.field(validator=between(0, 2))  # the slow part's noise, with m ** this


@attrs.frozen
class FxParams:
    vol_bps_per_day: float = attrs.field(validator=non_negative)


@attrs.frozen
class MarketParams:
    binance: BinanceParams
    upbit: UpbitParams
    premium: PremiumParams
    fx: FxParams

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {
            name: attrs.asdict(getattr(self, name))
            for name in ("binance", "upbit", "premium", "fx")  # the file's order
        }

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> MarketParams:
        """From the ``params`` table of a model file; ValueError naming the key for anything wrong."""
        sections = {"binance": BinanceParams, "upbit": UpbitParams, "premium": PremiumParams, "fx": FxParams}
        if not isinstance(document, Mapping):
            raise ValueError(f"params: expected a table, got {type(document).__name__}")
        unknown = sorted(set(document) - set(sections))
        if unknown:
            raise ValueError(f"params: unknown section {unknown[0]!r} (expected {', '.join(sections)})")
        built = {}
        for name, section in sections.items():
            table = document.get(name)
            if not isinstance(table, Mapping):
                raise ValueError(f"params.{name}: expected a table, got {'nothing' if table is None else repr(table)}")
            fields = {f.name for f in attrs.fields(section)}
            extra = sorted(set(table) - fields)
            if extra:
                raise ValueError(f"params.{name}.{extra[0]}: not a parameter of this model")
            values = {}
            for key in sorted(fields):
                value = table.get(key)
                if value is None:
                    raise ValueError(f"params.{name}.{key}: missing (expected a finite number)")
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise ValueError(f"params.{name}.{key}: expected a finite number, got {value!r}")
                values[key] = float(value)
            try:
                built[name] = section(**values)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"params.{name}: {exc}") from None
        return cls(**built)


@attrs.frozen
class Draws:
    """One block of random draws, one array per process (standard normal unless said)."""

    vol: Array
    move: Array
    moves: Array  # Poisson counts of Binance price moves in the step
    jump_u: Array  # uniform: a jump when below the step's jump probability
    jump: Array  # standard Laplace
    slow: Array
    medium: Array
    fast: Array
    fx: Array

    @classmethod
    def draw(cls, rng: np.random.Generator, n: int, moves_per_step: float) -> Draws:
        return cls(
            vol=rng.standard_normal(n),
            move=rng.standard_normal(n),
            moves=rng.poisson(moves_per_step, n).astype(np.float64),
            jump_u=rng.random(n),
            jump=rng.laplace(0.0, 1.0, n),
            slow=rng.standard_normal(n),
            medium=rng.standard_normal(n),
            fast=rng.standard_normal(n),
            fx=rng.standard_normal(n),
        )


@attrs.frozen
class Coefficients:
    """The per-step constants of ``MarketParams`` at step ``dt`` (exact transitions of each process)."""

    vol_decay: float
    vol_shock: float
    vol_offset: float  # vol_of_vol^2: m = exp(v - this)
    move_bps: float  # one price move's std at m = 1
    moves_per_step: float
    jump_p: float
    jump_bps: float
    absorb: float  # 1 - beta
    mean: float
    slow_decay: float
    slow_shock: float
    medium_decay: float
    medium_shock: float
    fast_decay: float
    fast_shock: float
    elasticity: float
    slow_elasticity: float
    lag_decay: float
    lag_move: float  # how much of a move within the step Upbit has not followed by its end (moves come at any time)
    fx_shock: float

    @classmethod
    def of(cls, p: MarketParams, dt: float) -> Coefficients:
        def decay(reversion_s: float) -> float:
            return math.exp(-dt / reversion_s)

        def shock(std: float, d: float) -> float:
            return std * math.sqrt(1.0 - d * d)

        b, u, pr = p.binance, p.upbit, p.premium
        vol_d, slow_d = decay(b.vol_reversion_min * 60), decay(pr.slow_reversion_min * 60)
        medium_d, fast_d = decay(pr.medium_reversion_min * 60), decay(u.noise_reversion_s)
        return cls(
            vol_decay=vol_d,
            vol_shock=shock(b.vol_of_vol, vol_d),
            vol_offset=b.vol_of_vol**2,
            move_bps=b.vol_bps_per_min / math.sqrt(60.0 * b.moves_per_s),
            moves_per_step=b.moves_per_s * dt,
            jump_p=-math.expm1(-b.jumps_per_hour / 3600.0 * dt),
            jump_bps=b.jump_scale_bps,
            absorb=1.0 - u.beta,
            mean=pr.mean_bps,
            slow_decay=slow_d,
            slow_shock=shock(pr.slow_std_bps, slow_d),
            medium_decay=medium_d,
            medium_shock=shock(pr.medium_std_bps, medium_d),
            fast_decay=fast_d,
            fast_shock=shock(u.noise_bps, fast_d),
            elasticity=pr.vol_elasticity,
            slow_elasticity=pr.slow_vol_elasticity,
            lag_decay=decay(u.lag_s),
            lag_move=-math.expm1(-dt / u.lag_s) * u.lag_s / dt,
            fx_shock=p.fx.vol_bps_per_day * math.sqrt(dt / 86_400.0),
        )


@attrs.frozen
class Path:
    """``run``'s output, one value per step: log prices in bps (Binance, Upbit in USDT at the model's FX,
    USDT/KRW), the premium in bps of the log and the volatility multiplier."""

    binance: Array
    upbit: Array
    fx: Array
    premium: Array
    m: Array


@attrs.define
class MarketState:
    """Where every process is (bps of log prices; ``b`` and ``fx`` from the start prices)."""

    v: float
    b: float
    s: float
    x: float
    f: float
    d: float
    fx: float


class MarketProcess:
    """The fitted market, stepped ``dt`` seconds at a time (``step``) or many steps at once (``run``)."""

    def __init__(
        self, params: MarketParams, dt: float, seed: int | tuple[int, ...], start_volatility: str = "mean"
    ) -> None:
        self.params = params
        self.dt = dt
        self.c = Coefficients.of(params, dt)
        self._rng = np.random.default_rng(seed)
        self._draws: list[list[float]] = []
        self._i = CHUNK
        # start where the processes are stationary (the premium's level differs by seed), except volatility:
        # "mean" starts it where m = 1, the data's mean variance, so that a run of hours shows the average
        # market (it wanders from there over vol_reversion_min); "random" draws the regime too
        b, pr, u = params.binance, params.premium, params.upbit
        start = self._rng.standard_normal(4)
        v = b.vol_of_vol**2 if start_volatility == "mean" else b.vol_of_vol * float(start[0])
        m_e = math.exp(pr.vol_elasticity * (v - b.vol_of_vol**2))
        s = pr.mean_bps + self._slow_std(math.exp(pr.slow_vol_elasticity * (v - b.vol_of_vol**2))) * float(start[1])
        x = pr.medium_std_bps * m_e * float(start[2])
        self.state = MarketState(v=v, b=0.0, s=s, x=x, f=u.noise_bps * m_e * float(start[3]), d=s + x, fx=0.0)

    def _slow_std(self, m_l: float = 1.0) -> float:
        """The slow part's stationary std (its own noise at ``m ** slow_vol_elasticity`` = ``m_l``, and the share
        of Binance's moves it takes up)."""
        pr = self.params.premium
        absorbed = (1 - self.params.upbit.beta) ** 2 * self._q() * pr.slow_reversion_min / 2
        return math.sqrt((pr.slow_std_bps * m_l) ** 2 + absorbed)

    def _q(self) -> float:
        """Binance's mean variance per minute (bps^2): moves and jumps."""
        b = self.params.binance
        return b.vol_bps_per_min**2 + 2 * b.jump_scale_bps**2 * b.jumps_per_hour / 60

    def _next_draws(self) -> Draws:
        return Draws.draw(self._rng, CHUNK, self.c.moves_per_step)

    @property
    def premium_bps(self) -> float:
        """The premium on the USDT basis, in bps (Upbit / (Binance x USDT/KRW) - 1)."""
        return math.expm1((self.state.d + self.state.f) / 1e4) * 1e4

    def step(self, binance_bps: float | None = None) -> None:
        """One step; ``binance_bps`` pins Binance's log price (bps, on the scale of ``state.b``) to a recording."""
        if self._i == CHUNK:
            drawn = self._next_draws()
            self._draws = [getattr(drawn, f.name).tolist() for f in attrs.fields(Draws)]
            self._i = 0
        i, (vol, move, moves, jump_u, jump, slow, medium, fast, fx), c, st = self._i, self._draws, self.c, self.state
        self._i += 1
        st.v = st.v * c.vol_decay + c.vol_shock * vol[i]
        m = math.exp(st.v - c.vol_offset)
        if binance_bps is None:
            db = m * c.move_bps * math.sqrt(moves[i]) * move[i]
            if jump_u[i] < c.jump_p:
                db += m * c.jump_bps * jump[i]
        else:
            db = binance_bps - st.b
        st.b += db
        m_e = m**c.elasticity
        st.s = c.mean + (st.s - c.mean) * c.slow_decay + c.slow_shock * m**c.slow_elasticity * slow[i] - c.absorb * db
        st.x = st.x * c.medium_decay + c.medium_shock * m_e * medium[i]
        st.f = st.f * c.fast_decay + c.fast_shock * m_e * fast[i]
        st.d = c.lag_decay * st.d - c.lag_move * db + (1.0 - c.lag_decay) * (st.s + st.x)
        st.fx += c.fx_shock * fx[i]

    def run(self, n: int) -> Path:
        """``n`` steps at once (the same draws and prices as ``n`` calls of ``step``, to rounding)."""
        from scipy.signal import lfilter  # the bulk path only: a session's steps never need it

        parts: list[Draws] = []
        need, have = n, CHUNK - self._i
        if have and self._draws:
            take = min(have, need)
            rest = [np.asarray(a[self._i : self._i + take]) for a in self._draws]
            parts.append(Draws(*rest))
            self._i += take
            need -= take
        while need > 0:
            drawn = self._next_draws()
            take = min(CHUNK, need)
            parts.append(Draws(*(getattr(drawn, f.name)[:take] for f in attrs.fields(Draws))))
            if take < CHUNK:
                self._draws = [getattr(drawn, f.name).tolist() for f in attrs.fields(Draws)]
                self._i = take
            else:
                self._i = CHUNK
            need -= take
        if not parts:
            empty = np.empty(0)
            return Path(empty, empty, empty, empty, empty)
        d = Draws(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in attrs.fields(Draws)))
        c, st = self.c, self.state

        def ar1(decay: float, shocks: Array, start: float) -> Array:
            out: Array = lfilter([1.0], [1.0, -decay], shocks, zi=[decay * start])[0]
            return out

        v = ar1(c.vol_decay, c.vol_shock * d.vol, st.v)
        m = np.exp(v - c.vol_offset)
        db = m * c.move_bps * np.sqrt(d.moves) * d.move + np.where(d.jump_u < c.jump_p, m * c.jump_bps * d.jump, 0.0)
        b = st.b + np.cumsum(db)
        m_e = m**c.elasticity
        s = c.mean + ar1(c.slow_decay, c.slow_shock * m**c.slow_elasticity * d.slow - c.absorb * db, st.s - c.mean)
        x = ar1(c.medium_decay, c.medium_shock * m_e * d.medium, st.x)
        f = ar1(c.fast_decay, c.fast_shock * m_e * d.fast, st.f)
        dd = ar1(c.lag_decay, -c.lag_move * db + (1.0 - c.lag_decay) * (s + x), st.d)
        fx = st.fx + np.cumsum(c.fx_shock * d.fx)
        self.state = MarketState(
            v=float(v[-1]),
            b=float(b[-1]),
            s=float(s[-1]),
            x=float(x[-1]),
            f=float(f[-1]),
            d=float(dd[-1]),
            fx=float(fx[-1]),
        )
        premium = dd + f
        return Path(binance=b, upbit=b + premium, fx=fx, premium=premium, m=m)

    def skip(self, seconds: float) -> None:
        """Move every process ``seconds`` ahead in one exact step (a gap between stretches of a long run:
        what happens during it is not observed, only where it leaves the slow processes)."""
        p, st = self.params, self.state
        rng = self._rng
        z = rng.standard_normal(6)

        def ou(x: float, mean: float, std: float, reversion_s: float, shock: float) -> float:
            decay = math.exp(-seconds / reversion_s)
            return mean + (x - mean) * decay + std * math.sqrt(1 - decay * decay) * shock

        st.v = ou(st.v, 0.0, p.binance.vol_of_vol, p.binance.vol_reversion_min * 60, float(z[0]))
        st.b += math.sqrt(self._q() * seconds / 60) * float(z[1])
        log_m = st.v - p.binance.vol_of_vol**2
        m_l = math.exp(p.premium.slow_vol_elasticity * log_m)
        st.s = ou(st.s, p.premium.mean_bps, self._slow_std(m_l), p.premium.slow_reversion_min * 60, float(z[2]))
        m_e = math.exp(p.premium.vol_elasticity * log_m)
        st.x = ou(st.x, 0.0, p.premium.medium_std_bps * m_e, p.premium.medium_reversion_min * 60, float(z[3]))
        st.f = ou(st.f, 0.0, p.upbit.noise_bps * m_e, p.upbit.noise_reversion_s, float(z[4]))
        st.d = st.s + st.x
        st.fx += p.fx.vol_bps_per_day * math.sqrt(seconds / 86_400) * float(z[5])
