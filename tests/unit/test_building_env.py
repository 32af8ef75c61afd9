"""The built-in building environment: API conformance, determinism, physics, state protocol."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import atheria_cli.envs  # noqa: F401  (registers the ids)
from atheria_cli.envs.building import (
    CONTINUOUS_ID,
    DISCRETE_ID,
    BuildingCO2Env,
    IntensityThresholdPolicy,
    register_building_envs,
)
from atheria_cli.envs.protocol import StatefulEnv, supports_state

Policy = Callable[[np.ndarray], Any]
IDLE: Policy = lambda obs: np.zeros(1, dtype=np.float32)  # noqa: E731


def _rollout(env: gym.Env, policy: Policy, obs: Any = None, steps: int | None = None) -> list[tuple[Any, ...]]:
    """(obs, reward, terminated, truncated, info) of each step from ``obs`` until the episode ends."""
    trajectory = []
    for _ in range(steps if steps is not None else 10**6):
        obs, reward, terminated, truncated, info = env.step(policy(obs))
        trajectory.append((obs, reward, terminated, truncated, info))
        if terminated or truncated:
            break
    return trajectory


def _random_policy(seed: int) -> Policy:
    rng = np.random.default_rng(seed)
    return lambda obs: rng.uniform(-1.0, 1.0, size=1).astype(np.float32)


def _assert_same(left: list[tuple[Any, ...]], right: list[tuple[Any, ...]]) -> None:
    assert len(left) == len(right)
    for (obs_a, *rest_a), (obs_b, *rest_b) in zip(left, right, strict=True):
        np.testing.assert_array_equal(obs_a, obs_b)
        assert rest_a == rest_b


def _episode_co2(env: gym.Env, seed: int, predict: Callable[[np.ndarray], Any]) -> float:
    obs, _ = env.reset(seed=seed)
    done, info = False, {}
    while not done:
        obs, _, terminated, truncated, info = env.step(predict(obs))
        done = terminated or truncated
    return info["co2_kg"]


# --- conformance --------------------------------------------------------------------------------


@pytest.mark.parametrize("env_id", [CONTINUOUS_ID, DISCRETE_ID])
def test_check_env_passes_without_warnings(env_id: str) -> None:
    env = gym.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)
    # The only expected remark: check_env recommends checking the unwrapped env.
    assert all("different from the unwrapped version" in str(w.message) for w in caught)


def test_registered_ids_make_with_the_week_long_time_limit() -> None:
    register_building_envs()  # a second call is harmless
    continuous, discrete = gym.make(CONTINUOUS_ID), gym.make(DISCRETE_ID)
    assert continuous.spec is not None and continuous.spec.max_episode_steps == 7 * 24
    assert isinstance(continuous.action_space, gym.spaces.Box)
    assert discrete.action_space == gym.spaces.Discrete(5)
    for env, idle in ((continuous, IDLE), (discrete, lambda obs: 2)):
        env.reset(seed=0)
        trajectory = _rollout(env, idle)
        assert len(trajectory) == 168 and trajectory[-1][3]
        assert all(env.observation_space.contains(obs) for obs, *_ in trajectory)  # the last one too


def test_days_kwarg_sets_the_episode_length() -> None:
    env = BuildingCO2Env(days=2)
    env.reset(seed=0)
    trajectory = _rollout(env, IDLE)
    assert len(trajectory) == 48 and trajectory[-1][3] and not trajectory[-1][2]
    with pytest.raises(RuntimeError):
        env.step(np.zeros(1, dtype=np.float32))


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="soc_min"):
        BuildingCO2Env(soc_min=0.9, soc_max=0.5)
    with pytest.raises(TypeError):
        BuildingCO2Env(battery_size=3)


# --- determinism --------------------------------------------------------------------------------


def test_same_seed_gives_the_same_episode() -> None:
    one, two = BuildingCO2Env(), BuildingCO2Env()
    obs_one, info_one = one.reset(seed=7)
    obs_two, info_two = two.reset(seed=7)
    np.testing.assert_array_equal(obs_one, obs_two)
    assert info_one == info_two
    _assert_same(_rollout(one, _random_policy(1)), _rollout(two, _random_policy(1)))


def test_different_seeds_give_different_profiles() -> None:
    env = BuildingCO2Env()
    env.reset(seed=0)
    first = env.get_state()["profiles"]
    env.reset(seed=1)
    second = env.get_state()["profiles"]
    for key in ("load_kw", "pv_kw", "intensity"):
        assert not np.array_equal(first[key], second[key])


# --- physics ------------------------------------------------------------------------------------


def test_idle_battery_reproduces_the_baseline_exactly() -> None:
    env = BuildingCO2Env()
    env.reset(seed=3)
    trajectory = _rollout(env, IDLE)
    assert all(info["co2_kg"] == info["baseline_co2_kg"] for *_, info in trajectory)
    assert 400 < trajectory[-1][4]["baseline_co2_kg"] < 700
    assert all(obs[2] == pytest.approx(0.5) for obs, *_ in trajectory)


def test_idle_discrete_action_reproduces_the_baseline_exactly() -> None:
    env = gym.make(DISCRETE_ID)
    env.reset(seed=3)
    trajectory = _rollout(env, lambda obs: 2)
    assert all(info["co2_kg"] == info["baseline_co2_kg"] for *_, info in trajectory)


def test_reward_is_minus_the_step_co2_and_info_accumulates() -> None:
    env = BuildingCO2Env()
    env.reset(seed=0)
    trajectory = _rollout(env, _random_policy(0))
    assert -sum(reward for _, reward, *_ in trajectory) == pytest.approx(trajectory[-1][4]["co2_kg"])
    energies = np.array([info["energy_kwh"] for *_, info in trajectory])
    assert np.all(np.diff(energies) >= 0)


def test_soc_stays_within_its_limits_under_extreme_actions() -> None:
    env = BuildingCO2Env(soc_min=0.2, soc_max=0.8)
    day_charge_night_discharge = lambda obs: np.array([1.0 if obs[0] < 0 else -1.0], dtype=np.float32)  # noqa: E731
    beyond_the_box = lambda obs: np.array([5.0], dtype=np.float32)  # noqa: E731
    for policy in (day_charge_night_discharge, _random_policy(2), beyond_the_box):
        obs, _ = env.reset(seed=0)
        socs = [obs[2] for obs, *_ in _rollout(env, policy, obs)]
        assert min(socs) >= np.float32(0.2) and max(socs) <= np.float32(0.8)
        assert min(socs) == np.float32(0.2) or max(socs) == np.float32(0.8)


def test_charging_a_full_battery_buys_no_extra_energy() -> None:
    env = BuildingCO2Env(initial_soc=1.0)
    env.reset(seed=0)
    trajectory = _rollout(env, lambda obs: np.ones(1, dtype=np.float32))
    assert all(info["co2_kg"] == info["baseline_co2_kg"] for *_, info in trajectory)
    assert all(obs[2] == 1.0 for obs, *_ in trajectory)


def test_charging_and_discharging_each_lose_half_the_round_trip() -> None:
    env = BuildingCO2Env(days=1, initial_soc=0.1, soc_min=0.1, battery_capacity_kwh=10.0, battery_power_kw=100.0)
    env.reset(seed=0)
    profiles = env.get_state()["profiles"]
    net = profiles["load_kw"] - profiles["pv_kw"]
    charged = env.step(np.ones(1, dtype=np.float32))[4]["energy_kwh"] - net[0]
    assert charged == pytest.approx(9.0 / np.sqrt(0.9))  # 9 kWh of room, drawn at sqrt(0.9)
    assert env.get_state()["soc"] == 1.0
    bought = env.step(-np.ones(1, dtype=np.float32))[4]["energy_kwh"] - net[0] - charged
    delivered = min(9.0 * np.sqrt(0.9), net[1])  # never more than the building uses
    assert bought == pytest.approx(net[1] - delivered)


def test_infeasible_requests_are_penalized_only_when_asked() -> None:
    free, penalized = BuildingCO2Env(initial_soc=1.0), BuildingCO2Env(initial_soc=1.0, infeasible_penalty=0.5)
    free.reset(seed=0)
    penalized.reset(seed=0)
    charge = np.ones(1, dtype=np.float32)
    _, reward_free, *_, info_free = free.step(charge)
    _, reward_penalized, *_, info_penalized = penalized.step(charge)
    assert info_free == info_penalized
    assert reward_penalized == pytest.approx(reward_free - 0.5 * 15.0)  # the whole 15 kW was infeasible


# --- state protocol -----------------------------------------------------------------------------


def test_env_supports_the_state_protocol_through_wrappers() -> None:
    made = gym.make(CONTINUOUS_ID)
    assert supports_state(made) and isinstance(made.unwrapped, StatefulEnv)
    assert not supports_state(gym.make("CartPole-v1"))


def _plain(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(key, str) and _plain(item) for key, item in value.items())
    return isinstance(value, (bool, int, float, str, np.ndarray))


@pytest.mark.parametrize("fresh", [False, True], ids=["same-instance", "fresh-instance"])
def test_set_state_mid_episode_continues_bit_identically(fresh: bool) -> None:
    env = BuildingCO2Env()
    env.reset(seed=11)
    _rollout(env, _random_policy(5), steps=50)
    state = env.get_state()
    assert _plain(state)
    reference = [*_rollout(env, _random_policy(6)), env.reset()]  # the next reset draws from np_random
    target = BuildingCO2Env() if fresh else env
    if not fresh:
        target.reset(seed=99)  # scramble it first
    target.set_state(state)
    assert target.np_random_seed == 11
    _assert_same(reference[:-1], _rollout(target, _random_policy(6)))
    obs, info = target.reset()
    np.testing.assert_array_equal(obs, reference[-1][0])
    assert info == reference[-1][1]


def test_state_snapshot_is_not_aliased() -> None:
    env = BuildingCO2Env()
    env.reset(seed=0)
    state = env.get_state()
    saved = {key: value.copy() for key, value in state["profiles"].items()}
    _rollout(env, _random_policy(0), steps=5)
    env.reset(seed=1)
    for key, value in saved.items():
        np.testing.assert_array_equal(state["profiles"][key], value)
    assert state["t"] == 0


def test_set_state_refuses_a_state_of_another_length() -> None:
    env = BuildingCO2Env()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="hours long"):
        BuildingCO2Env(days=2).set_state(env.get_state())


# --- the rule-based policy ----------------------------------------------------------------------


def test_heuristic_beats_idle_on_average() -> None:
    env = BuildingCO2Env()
    policy = IntensityThresholdPolicy(env)
    seeds = range(4)
    idle = np.mean([_episode_co2(env, seed, IDLE) for seed in seeds])
    heuristic = np.mean([_episode_co2(env, seed, lambda obs: policy.predict(obs)[0]) for seed in seeds])
    assert heuristic < 0.95 * idle


def test_heuristic_predicts_batches_and_discrete_actions() -> None:
    env = BuildingCO2Env()
    obs, _ = env.reset(seed=0)
    policy = IntensityThresholdPolicy(env)
    single, hidden = policy.predict(obs)
    assert hidden is None and single.shape == (1,) and env.action_space.contains(single)
    batch = np.stack([obs, obs, obs])
    actions, _ = policy.predict(batch, state=None, episode_start=np.ones(3, dtype=bool), deterministic=True)
    assert actions.shape == (3, 1)
    np.testing.assert_array_equal(actions[0], single)

    discrete = gym.make(DISCRETE_ID)
    obs, _ = discrete.reset(seed=0)
    discrete_policy = IntensityThresholdPolicy(discrete)
    assert discrete.action_space.contains(int(discrete_policy.predict(obs)[0]))
    assert discrete_policy.predict(np.stack([obs, obs]))[0].shape == (2,)
    idle = np.mean([_episode_co2(discrete, seed, lambda obs: 2) for seed in range(2)])
    rule = np.mean([_episode_co2(discrete, seed, lambda obs: int(discrete_policy.predict(obs)[0])) for seed in range(2)])
    assert rule < idle
