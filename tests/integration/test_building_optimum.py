"""scripts/building_optimum.py: the perfect-foresight optimum the docs compare policies with is a
schedule the env itself plays, and no policy beats it (the heuristic's week is never below)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from atheria_cli.envs.building import BuildingCO2Env, IntensityThresholdPolicy

pytestmark = pytest.mark.integration
pytest.importorskip("scipy")  # with the test extra, MLflow brings it

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "building_optimum.py"


def _script(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("script_building_optimum", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def _heuristic_co2(env: BuildingCO2Env, seed: int) -> float:
    policy = IntensityThresholdPolicy(env)
    obs, info = env.reset(seed=seed)
    done = False
    while not done:
        obs, _, terminated, truncated, info = env.step(policy.predict(obs)[0])
        done = terminated or truncated
    return float(info["co2_kg"])


@pytest.mark.parametrize("seed", [0, 10000])
def test_the_optimum_is_played_by_the_env_and_beats_the_heuristic(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    optimum = _script(monkeypatch)
    env = BuildingCO2Env()
    env.reset(seed=seed)
    assert env._profiles is not None
    powers, bound = optimum.optimal_powers(env.params, env._profiles)
    played, idle = optimum.played_co2(env, seed, powers)
    assert played == pytest.approx(bound, rel=1e-6)  # the program's schedule is feasible as the env plays it
    assert played < _heuristic_co2(env, seed) < idle
    assert np.all(np.abs(powers) <= env.params.battery_power_kw + 1e-9)
