"""A built-in environment: a building with rooftop PV and a battery cutting its CO2 emissions.

One building buys electricity from a grid whose carbon intensity (kg CO2 per kWh) changes over
the day. It has an electric load, rooftop PV and a battery; every hour the agent sets the
battery's power. Energy bought from the grid is ``max(0, load - pv + charge - discharge)``: no
export and no export credit, so PV beyond the load and the charging is curtailed. The reward is
minus the kg CO2 of the energy bought in the hour. A good policy charges from PV surplus and in
low-intensity hours and discharges at the intensity peaks.

Load, PV and intensity follow documented daily and weekly shapes with day-to-day noise drawn
from ``np_random`` at reset (nothing is downloaded), so the same seed gives the same episode.
The environment implements :class:`atheria_cli.envs.protocol.StatefulEnv`. See
``docs/building_env.md`` for the model, every parameter and where its default comes from.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

HOURS_PER_DAY = 24
MAX_DAYS = 3660  # ten years of hourly steps in one episode
CONTINUOUS_ID = "atheria/BuildingCO2-v0"
DISCRETE_ID = "atheria/BuildingCO2Discrete-v0"
DISCRETE_LEVELS = 5  # full discharge, half discharge, idle, half charge, full charge
STATE_VERSION = 1
# Observations of load, PV and intensity are clipped to this many times their scale, so the
# observation space is bounded even for extreme noise draws (never reached with the defaults).
OBS_LIMIT = 4.0
_SNAP = 1e-12  # SoC this close to a limit is put on it, so "full" is exactly full


@dataclass(frozen=True)
class BuildingParams:
    """Every physical parameter of the building, its battery and its grid, with typical values.

    Times are hours of the day (0-24, local time); powers kW; energies kWh; intensities
    kg CO2 per kWh. With the defaults a battery-idle week emits about 550 kg CO2.
    """

    # --- episode ---
    days: int = 7  # one week: the load's weekly cycle (weekdays, weekend) is the longest one
    start_weekday: int = 0  # 0 = Monday ... 6 = Sunday
    forecast_hours: int = 3  # hours of intensity forecast in the observation (day-ahead-style)

    # --- battery: three stacked Powerwall-class units (13.5 kWh, 5 kW each, 90 % round trip),
    # a common size for a small commercial site; one unit alone can cut only ~5 %. ---
    battery_capacity_kwh: float = 40.5
    battery_power_kw: float = 15.0
    round_trip_efficiency: float = 0.9  # Li-ion AC-to-AC; Tesla quotes 90 % for the Powerwall 2
    soc_min: float = 0.1  # backup reserve; home/commercial battery apps default to 10-20 %
    soc_max: float = 1.0
    initial_soc: float = 0.5  # half full at 00:00 of the first day
    # kg CO2-equivalent charged per kWh of requested power that could not be applied (SoC
    # limits, power limit, no export); 0 = infeasible requests are only clipped.
    infeasible_penalty: float = 0.0

    # --- load: a small office-like commercial building: ~265 kWh on a weekday, ~1,730 kWh a
    # week, ~90 MWh a year, what a ~600 m2 office uses at the ~150 kWh/m2/year typical of
    # offices in the US (CBECS) and Europe; weekday peak ~16 kW ---
    load_base_kw: float = 7.0  # always on: ventilation, servers, refrigeration, standby
    load_occupied_kw: float = 9.0  # extra while occupied: lighting, HVAC, plug loads
    load_evening_kw: float = 2.0  # evening bump around 19:30 (cleaning, late work)
    open_hour: float = 8.0
    close_hour: float = 18.0
    weekend_occupancy: float = 0.3  # share of the occupied load on Saturday and Sunday
    load_day_noise: float = 0.05  # std of a daily multiplicative factor (weather, occupancy)
    load_hour_noise: float = 0.03  # std of an hourly multiplicative factor

    # --- rooftop PV: ~15 kWp; 12 kW is a clear-day AC peak around an equinox at mid latitudes,
    # giving ~75 kWh on a clear day and ~48 kWh on an average one (~3 kWh/kWp/day) ---
    pv_peak_kw: float = 12.0
    solar_noon_hour: float = 13.0  # 12:00 solar time plus daylight saving time
    pv_width_hours: float = 2.5  # std of the bell curve of a clear day
    daylight_hours: float = 13.0  # PV is zero outside solar noon +/- half of this
    cloud_min: float = 0.3  # a day's cloudiness factor is uniform in [cloud_min, 1]
    pv_hour_noise: float = 0.05  # std of an hourly multiplicative factor (passing clouds)

    # --- grid carbon intensity: a grid with gas at the margin and a sizeable solar share
    # (Germany, the UK, California: roughly 0.2-0.6 kg/kWh over a day) ---
    intensity_night: float = 0.35  # baseload mix overnight
    intensity_morning_peak: float = 0.45  # around 08:00, demand ramps up before solar
    intensity_evening_peak: float = 0.55  # around 19:00, solar gone and demand high (duck curve)
    intensity_midday: float = 0.22  # around 13:00 on a clear day: solar pushes gas out
    intensity_day_noise: float = 0.08  # std of a daily multiplicative factor (wind)
    intensity_hour_noise: float = 0.01  # std of an hourly additive term

    def __post_init__(self) -> None:
        # Types first: the range checks below compare numbers, and a float day count, an
        # infinite one or 1e30 days would reach numpy's arange and fail there.
        problems = self._type_problems() or self._problems()
        if problems:
            raise ValueError("; ".join(problems))

    def _type_problems(self) -> list[str]:
        problems = []
        for item in fields(self):
            value = getattr(self, item.name)
            if item.type == "int" and (isinstance(value, bool) or not isinstance(value, int)):
                problems.append(f"{item.name} must be an integer (got {value!r})")
            elif item.type == "float" and (
                isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
            ):
                problems.append(f"{item.name} must be a finite number (got {value!r})")
        return problems

    def _problems(self) -> list[str]:
        checks = {
            f"days must be 1..{MAX_DAYS}": 1 <= self.days <= MAX_DAYS,
            "start_weekday must be 0..6": 0 <= self.start_weekday <= 6,
            "forecast_hours must be 0..24": 0 <= self.forecast_hours <= HOURS_PER_DAY,
            "battery_capacity_kwh must be positive": self.battery_capacity_kwh > 0,
            "battery_power_kw must be positive": self.battery_power_kw > 0,
            "round_trip_efficiency must be in (0, 1]": 0 < self.round_trip_efficiency <= 1,
            "need 0 <= soc_min < soc_max <= 1": 0 <= self.soc_min < self.soc_max <= 1,
            "initial_soc must be within [soc_min, soc_max]": self.soc_min <= self.initial_soc <= self.soc_max,
            "infeasible_penalty must be >= 0": self.infeasible_penalty >= 0,
            "need 0 <= open_hour < close_hour <= 24": 0 <= self.open_hour < self.close_hour <= HOURS_PER_DAY,
            "cloud_min must be in [0, 1]": 0 <= self.cloud_min <= 1,
            "loads, PV and intensities must be >= 0": min(self._non_negatives()) >= 0,
            "pv_width_hours and daylight_hours must be positive": self.pv_width_hours > 0 and self.daylight_hours > 0,
            "intensity_evening_peak must be positive": self.intensity_evening_peak > 0,
        }
        return [message for message, ok in checks.items() if not ok]

    def _non_negatives(self) -> tuple[float, ...]:
        return (
            self.load_base_kw,
            self.load_occupied_kw,
            self.load_evening_kw,
            self.pv_peak_kw,
            self.intensity_night,
            self.intensity_midday,
        )

    @property
    def horizon(self) -> int:
        """Steps in an episode: one per hour."""
        return self.days * HOURS_PER_DAY

    @property
    def charge_efficiency(self) -> float:
        # The round trip splits evenly between charging and discharging.
        return math.sqrt(self.round_trip_efficiency)

    @property
    def power_scale_kw(self) -> float:
        """Observation scale of load and PV: the nominal weekday peak load."""
        return max(self.load_base_kw + self.load_occupied_kw, self.pv_peak_kw, 1e-6)


# --- profiles ---------------------------------------------------------------------------------


@dataclass
class Profiles:
    """Hourly load (kW), PV (kW) and intensity (kg/kWh), ``horizon + 1 + forecast_hours`` long.

    The extra hours are for the observation after the last step (its forecast included).
    """

    load_kw: np.ndarray
    pv_kw: np.ndarray
    intensity: np.ndarray


def _bump(hours: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((hours - centre) / width) ** 2)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def daily_shapes(params: BuildingParams) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The noise-free 24-hour shapes: weekday load, weekend load, clear-sky PV, intensity.

    Each value is taken at the middle of its hour.
    """
    hours = np.arange(HOURS_PER_DAY) + 0.5
    occupied = _sigmoid((hours - params.open_hour) / 0.7) * _sigmoid((params.close_hour - hours) / 0.7)
    evening = params.load_evening_kw * _bump(hours, 19.5, 1.5)
    weekday = params.load_base_kw + params.load_occupied_kw * occupied + evening
    weekend = params.load_base_kw + params.weekend_occupancy * params.load_occupied_kw * occupied + evening
    daylight = np.abs(hours - params.solar_noon_hour) < params.daylight_hours / 2
    pv = params.pv_peak_kw * _bump(hours, params.solar_noon_hour, params.pv_width_hours) * daylight
    intensity = (
        params.intensity_night
        + (params.intensity_morning_peak - params.intensity_night) * _bump(hours, 8.0, 1.5)
        + (params.intensity_evening_peak - params.intensity_night) * _bump(hours, 19.0, 2.0)
    )
    return weekday, weekend, pv, intensity


def solar_dip(params: BuildingParams) -> np.ndarray:
    """How far the grid's solar lowers the intensity on a clear day, per hour (kg/kWh)."""
    hours = np.arange(HOURS_PER_DAY) + 0.5
    return (params.intensity_night - params.intensity_midday) * _bump(hours, params.solar_noon_hour, 2.5)


def profile_length(params: BuildingParams) -> int:
    return params.horizon + 1 + params.forecast_hours


def generate_profiles(params: BuildingParams, rng: np.random.Generator) -> Profiles:
    """Daily shapes times seeded day-to-day and hour-to-hour noise.

    The day's cloudiness scales both the building's PV and the grid's solar dip: a sunny day
    is sunny for the region too.
    """
    length = profile_length(params)
    n_days = -(-length // HOURS_PER_DAY)
    weekday, weekend, pv_clear, intensity_shape = daily_shapes(params)
    dip = solar_dip(params)
    is_weekend = (params.start_weekday + np.arange(n_days)) % 7 >= 5
    load_days = np.where(is_weekend[:, None], weekend, weekday)
    sun = rng.uniform(params.cloud_min, 1.0, size=n_days)
    load_factor = rng.normal(1.0, params.load_day_noise, size=n_days)
    wind_factor = rng.normal(1.0, params.intensity_day_noise, size=n_days)
    shape = (n_days, HOURS_PER_DAY)
    load = load_days * load_factor[:, None] * rng.normal(1.0, params.load_hour_noise, size=shape)
    pv = pv_clear * sun[:, None] * rng.normal(1.0, params.pv_hour_noise, size=shape)
    intensity = (intensity_shape - dip * sun[:, None]) * wind_factor[:, None]
    intensity = intensity + rng.normal(0.0, params.intensity_hour_noise, size=shape)
    return Profiles(
        load_kw=np.clip(load, 0.0, None).ravel()[:length],
        pv_kw=np.clip(pv, 0.0, None).ravel()[:length],
        intensity=np.clip(intensity, 0.01, None).ravel()[:length],
    )


# --- battery ----------------------------------------------------------------------------------


def feasible_power(params: BuildingParams, soc: float, requested_kw: float, net_load_kw: float) -> float:
    """The battery power (kW, + charge) closest to the request that the hour allows.

    Charging is limited by the power rating and the room left below ``soc_max``; discharging
    by the rating, the energy above ``soc_min`` and the building's net load (nothing is
    exported, so discharging beyond it would only waste energy).
    """
    capacity = params.battery_capacity_kwh
    if requested_kw > 0:
        room = (params.soc_max - soc) * capacity / params.charge_efficiency
        return min(requested_kw, params.battery_power_kw, max(room, 0.0))
    if requested_kw < 0:
        stored = (soc - params.soc_min) * capacity * params.charge_efficiency
        limit = min(params.battery_power_kw, max(stored, 0.0), max(net_load_kw, 0.0))
        return -min(-requested_kw, limit)
    return 0.0


def next_soc(params: BuildingParams, soc: float, power_kw: float) -> float:
    """SoC after one hour at ``power_kw`` (+ charge), kept exactly within the limits."""
    eta = params.charge_efficiency
    stored = power_kw * eta if power_kw > 0 else power_kw / eta
    soc = soc + stored / params.battery_capacity_kwh
    if soc >= params.soc_max - _SNAP:
        return params.soc_max
    if soc <= params.soc_min + _SNAP:
        return params.soc_min
    return soc


def grid_kwh(net_load_kw: float, power_kw: float) -> float:
    """Energy bought in one hour; surplus PV is curtailed, never sold."""
    return max(0.0, net_load_kw + power_kw)


# --- the environment --------------------------------------------------------------------------


class BuildingCO2Env(gym.Env):
    """A building minimizing the CO2 of its grid purchases with a battery; hourly steps.

    Action: battery power as a fraction of ``battery_power_kw`` in [-1, 1] (+ charge), a
    ``Box(1,)``, or with ``action_levels=n`` a ``Discrete(n)`` over ``n`` evenly spaced levels
    from full discharge to full charge (odd ``n`` includes idle).
    Observation (float32): sin and cos of the hour, SoC in [0, 1], load and PV divided by
    ``power_scale_kw``, and the current intensity and the next ``forecast_hours`` intensities
    divided by ``intensity_evening_peak``.
    Reward: minus the kg CO2 of the hour's grid purchase, minus the infeasibility penalty.
    Info: ``co2_kg``, ``baseline_co2_kg`` (battery idle, same profiles) and ``energy_kwh``,
    totals of the episode so far.
    """

    metadata = {"render_modes": []}  # gymnasium declares it an instance attribute, not a ClassVar
    reference_policies: ClassVar[dict[str, Any]] = {}  # filled below, once the policies are defined

    def __init__(self, action_levels: int | None = None, render_mode: str | None = None, **params: Any) -> None:
        self.params = BuildingParams(**params)
        self.render_mode = render_mode
        self.action_space = self._make_action_space(action_levels)
        # The battery power (fraction of the rating) of each discrete action; None for the Box.
        self.action_fractions: np.ndarray | None = None
        if action_levels is not None:
            self.action_fractions = np.linspace(-1.0, 1.0, action_levels)
        n_obs = 6 + self.params.forecast_hours
        low = np.zeros(n_obs, dtype=np.float32)
        low[:2] = -1.0
        high = np.full(n_obs, OBS_LIMIT, dtype=np.float32)
        high[:3] = 1.0
        self.observation_space = spaces.Box(low=low, high=high, dtype=np.float32)
        self._profiles: Profiles | None = None
        self._t = 0
        self._soc = self.params.initial_soc
        self._totals = _zero_totals()

    @staticmethod
    def _make_action_space(action_levels: int | None) -> spaces.Space:
        if action_levels is None:
            return spaces.Box(low=-1.0, high=1.0, shape=(1,), dtype=np.float32)
        if action_levels < 2:
            raise ValueError(f"action_levels must be at least 2 (got {action_levels})")
        return spaces.Discrete(action_levels)

    # --- gymnasium API ---

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._profiles = generate_profiles(self.params, self.np_random)
        self._t = 0
        self._soc = self.params.initial_soc
        self._totals = _zero_totals()
        return self._observation(), self._info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        profiles = self._require_profiles()
        if self._t >= self.params.horizon:
            raise RuntimeError("the episode is over: call reset()")
        t, params = self._t, self.params
        requested = self._requested_kw(action)
        net = float(profiles.load_kw[t] - profiles.pv_kw[t])
        power = feasible_power(params, self._soc, requested, net)
        intensity = float(profiles.intensity[t])
        bought = grid_kwh(net, power)
        co2 = intensity * bought
        penalty = params.infeasible_penalty * abs(requested - power)
        self._totals["co2_kg"] += co2
        self._totals["baseline_co2_kg"] += intensity * grid_kwh(net, 0.0)
        self._totals["energy_kwh"] += bought
        self._soc = next_soc(params, self._soc, power)
        self._t += 1
        truncated = self._t >= params.horizon  # a time limit, not a terminal state
        return self._observation(), -(co2 + penalty), False, truncated, self._info()

    def _requested_kw(self, action: Any) -> float:
        if self.action_fractions is not None:
            fraction = float(self.action_fractions[int(np.asarray(action).item())])
        else:
            fraction = float(np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[0], -1.0, 1.0))
        return fraction * self.params.battery_power_kw

    def _observation(self) -> np.ndarray:
        profiles, params, t = self._require_profiles(), self.params, self._t
        angle = 2.0 * math.pi * (t % HOURS_PER_DAY) / HOURS_PER_DAY
        intensities = profiles.intensity[t : t + 1 + params.forecast_hours] / params.intensity_evening_peak
        scaled = np.concatenate(
            ([profiles.load_kw[t] / params.power_scale_kw, profiles.pv_kw[t] / params.power_scale_kw], intensities)
        )
        head = [math.sin(angle), math.cos(angle), self._soc]
        return np.concatenate((head, np.clip(scaled, 0.0, OBS_LIMIT))).astype(np.float32)

    def _info(self) -> dict[str, Any]:
        return dict(self._totals)

    def _require_profiles(self) -> Profiles:
        if self._profiles is None:
            raise RuntimeError("call reset() first")
        return self._profiles

    # --- StatefulEnv ---

    def get_state(self) -> dict[str, Any]:
        """Profiles, step, SoC, episode totals and the ``np_random`` state (see protocol.py)."""
        profiles = self._require_profiles()
        return {
            "version": STATE_VERSION,
            "t": self._t,
            "soc": self._soc,
            "totals": dict(self._totals),
            "profiles": {key: value.copy() for key, value in asdict(profiles).items()},
            "np_random": copy.deepcopy(self.np_random.bit_generator.state),
            "np_random_seed": int(self.np_random_seed),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported BuildingCO2Env state version {state.get('version')!r}")
        profiles = Profiles(**{key: np.array(value, dtype=np.float64) for key, value in state["profiles"].items()})
        expected = profile_length(self.params)
        if any(len(array) != expected for array in asdict(profiles).values()):
            raise ValueError(f"state profiles are not {expected} hours long: built with other days/forecast_hours")
        rng_state = copy.deepcopy(state["np_random"])
        generator = np.random.Generator(getattr(np.random, rng_state["bit_generator"])())
        generator.bit_generator.state = rng_state
        self.np_random = generator
        self._np_random_seed = int(state["np_random_seed"])  # the setter above forgets the seed
        self._profiles = profiles
        self._t = int(state["t"])
        self._soc = float(state["soc"])
        self._totals = {key: float(value) for key, value in state["totals"].items()}


def _zero_totals() -> dict[str, float]:
    return {"co2_kg": 0.0, "baseline_co2_kg": 0.0, "energy_kwh": 0.0}


# --- a rule-based reference policy ------------------------------------------------------------


class IntensityThresholdPolicy:
    """Charge on PV surplus or low intensity, discharge at high intensity, else stay idle.

    Works from the observation alone, like a trained agent, with SB3's ``predict`` signature,
    so it can be evaluated with the same code. It needs the env's raw observations (not the
    VecNormalize'd ones): it scales them back to kW and kg/kWh. Thresholds are in kg CO2/kWh;
    the defaults suit the default intensity profile (night 0.35, midday 0.22, peaks 0.45 and
    0.55) and were picked on a grid over seeds 0-4.
    """

    def __init__(self, env: gym.Env, charge_below: float = 0.32, discharge_above: float = 0.44) -> None:
        building = env.unwrapped
        if not isinstance(building, BuildingCO2Env):
            raise TypeError(f"IntensityThresholdPolicy needs a BuildingCO2Env, got {type(building).__name__}")
        self.params = building.params
        self.levels = building.action_fractions
        self.charge_below = charge_below
        self.discharge_above = discharge_above

    def fractions(self, obs: np.ndarray) -> np.ndarray:
        """Battery power as a fraction of the rating, one per row of a (n, obs_dim) batch."""
        params = self.params
        load = obs[:, 3] * params.power_scale_kw
        pv = obs[:, 4] * params.power_scale_kw
        intensity = obs[:, 5] * params.intensity_evening_peak
        surplus_fraction = np.clip((pv - load) / params.battery_power_kw, 0.0, 1.0)
        fraction = np.where(intensity <= self.charge_below, 1.0, 0.0)
        fraction = np.where(intensity >= self.discharge_above, -1.0, fraction)
        return np.where(surplus_fraction > 0, np.maximum(surplus_fraction, fraction), fraction)

    def predict(
        self,
        observation: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, None]:
        obs = np.asarray(observation, dtype=np.float64)
        single = obs.ndim == 1
        fractions = self.fractions(obs.reshape(1, -1) if single else obs)
        if self.levels is not None:
            actions: np.ndarray = np.abs(fractions[:, None] - self.levels[None, :]).argmin(axis=1)
        else:
            actions = fractions.astype(np.float32)[:, None]
        # Like SB3: one observation in, one action out (a 0-d array for Discrete).
        return (np.asarray(actions[0]) if single else actions), None


# --- registration -----------------------------------------------------------------------------


def register_building_envs() -> None:
    """Register the continuous and discrete variants; a second call does nothing."""
    horizon = BuildingParams().horizon
    variants = {CONTINUOUS_ID: {}, DISCRETE_ID: {"action_levels": DISCRETE_LEVELS}}
    for env_id, kwargs in variants.items():
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point="atheria_cli.envs.building:BuildingCO2Env",
                max_episode_steps=horizon,
                kwargs=kwargs,
            )


class IdlePolicy:
    """The battery never moves: the policy whose CO2 is ``baseline_co2_kg``."""

    def __init__(self, env: gym.Env) -> None:
        building = env.unwrapped
        self.levels = getattr(building, "action_fractions", None)

    def predict(
        self, observation: np.ndarray, state: Any = None, episode_start: np.ndarray | None = None, deterministic: bool = True
    ) -> tuple[np.ndarray, None]:
        obs = np.asarray(observation)
        count = 1 if obs.ndim == 1 else len(obs)
        if self.levels is not None:
            actions: np.ndarray = np.full(count, int(np.abs(self.levels).argmin()))
        else:
            actions = np.zeros((count, 1), dtype=np.float32)
        return (np.asarray(actions[0]) if obs.ndim == 1 else actions), None


# Named baselines for `atheria eval` / `atheria compare` (see envs/protocol.py).
BuildingCO2Env.reference_policies = {"heuristic": IntensityThresholdPolicy, "idle": IdlePolicy}
