"""The perfect-foresight optimum of atheria/BuildingCO2-v0 on given weeks: how far any policy is from it.

For each env seed, the week's load, PV and carbon intensity are known in advance (they are drawn
at ``reset``), so the least CO2 any battery schedule can reach is a linear program: hourly charge
``c``, discharge ``d`` and grid purchase ``g``, the state of charge following the env's
efficiencies within ``[soc_min, soc_max]``, ``g >= load - pv + c - d``, ``g >= 0``, discharge at
most the net load (the env exports nothing), minimizing sum(intensity * g). The schedule found
is then played through the real env (action = (c - d) / battery_power_kw), so the figure reported
is what the env itself scores, not only the program's bound.

Usage: python scripts/building_optimum.py [--seed 10000] [--episodes 5]
(the defaults are the default experiment's evaluation weeks, train.eval). Needs SciPy.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys

import gymnasium
import numpy as np

import atheria_cli.envs_registration  # noqa: F401  (registers atheria/BuildingCO2-v0)
from atheria_cli.envs.building import BuildingCO2Env, BuildingParams, Profiles


def optimal_powers(params: BuildingParams, profiles: Profiles) -> tuple[np.ndarray, float]:
    """The battery power of every hour (kW, + charge) of a least-CO2 week, and its CO2 (kg)."""
    from scipy.optimize import linprog
    from scipy.sparse import csr_array, hstack, identity, vstack

    hours = params.horizon
    net = profiles.load_kw[:hours] - profiles.pv_kw[:hours]
    intensity = profiles.intensity[:hours]
    eta, capacity = params.charge_efficiency, params.battery_capacity_kwh
    # Variables: c (hours), d (hours), g (hours), soc (hours + 1).
    cost = np.concatenate([np.zeros(2 * hours), intensity, np.zeros(hours + 1)])
    eye = identity(hours, format="csr")
    zeros = csr_array((hours, hours))
    # soc[t+1] - soc[t] - (eta c[t] - d[t] / eta) / capacity = 0, and soc[0] = initial.
    step = hstack([csr_array((hours, 1)), eye]) - hstack([eye, csr_array((hours, 1))])
    dynamics = hstack([-eta / capacity * eye, 1 / (eta * capacity) * eye, zeros, step])
    start = csr_array(([1.0], ([0], [3 * hours])), shape=(1, 4 * hours + 1))
    # c[t] - d[t] - g[t] <= -net[t]: the purchase covers the net load and the charging.
    purchase = hstack([eye, -eye, -eye, csr_array((hours, hours + 1))])
    bounds = (
        [(0.0, params.battery_power_kw)] * hours
        + [(0.0, min(params.battery_power_kw, max(value, 0.0))) for value in net]
        + [(0.0, None)] * hours
        + [(params.soc_min, params.soc_max)] * (hours + 1)
    )
    result = linprog(
        cost,
        A_ub=purchase,
        b_ub=-net,
        A_eq=vstack([dynamics, start]),
        b_eq=np.concatenate([np.zeros(hours), [params.initial_soc]]),
        bounds=bounds,
        method="highs",
    )
    if not result.success:
        raise RuntimeError(f"the linear program failed: {result.message}")
    return result.x[:hours] - result.x[hours : 2 * hours], float(result.fun)


def played_co2(env: BuildingCO2Env, seed: int, powers: np.ndarray) -> tuple[float, float]:
    """The env's own co2_kg and its battery-idle baseline for the week, playing ``powers``."""
    env.reset(seed=seed)
    info: dict[str, float] = {}
    for power in powers:
        _, _, _, _, info = env.step(np.array([power / env.params.battery_power_kw], dtype=np.float32))
    return info["co2_kg"], info["baseline_co2_kg"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=10000, help="the first week's env seed")
    parser.add_argument("--episodes", type=int, default=5, help="weeks: seeds seed .. seed + episodes - 1")
    options = parser.parse_args()
    if importlib.util.find_spec("scipy") is None:
        sys.exit("scripts/building_optimum.py needs SciPy (the test extra brings it): pip install scipy")
    env = gymnasium.make("atheria/BuildingCO2-v0").unwrapped
    assert isinstance(env, BuildingCO2Env)
    print("| env seed | battery idle kg | optimum (program) kg | optimum played in the env kg | saving |")
    print("|---:|---:|---:|---:|---:|")
    played, idle = [], []
    for seed in range(options.seed, options.seed + options.episodes):
        env.reset(seed=seed)
        assert env._profiles is not None
        powers, bound = optimal_powers(env.params, env._profiles)
        co2, baseline = played_co2(env, seed, powers)
        played.append(co2)
        idle.append(baseline)
        print(f"| {seed} | {baseline:.1f} | {bound:.1f} | {co2:.1f} | {1 - co2 / baseline:.1%} |")
    mean, spread = statistics.fmean(played), statistics.stdev(played) if len(played) > 1 else 0.0
    print(f"\nmean over the weeks: optimum {mean:.1f} ± {spread:.1f} kg, battery idle {statistics.fmean(idle):.1f} kg")


if __name__ == "__main__":
    main()
