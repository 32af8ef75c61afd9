"""`atheria tune` refuses a bad tune: section with exit 2, one line naming the path, nothing written."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from atheria_cli.cli import app
from tests.conftest import write_config

runner = CliRunner()

BASE: dict[str, Any] = {
    "experiment": "bad",
    "device": "cpu",
    "env": {"id": "CartPole-v1", "max_episode_steps": 20},
    "agents": {"PPO": {"hyperparams": {"n_steps": 32, "batch_size": 16, "n_epochs": 2, "policy_kwargs": {"net_arch": [8]}}}},
    "train": {"eval": {"every": 2, "episodes": 2}},
    "tune": {
        "study": "s",
        "agent": "PPO",
        "episodes": 4,
        "seeds": [0, 1],
        "space": {"learning_rate": {"float": [1.0e-4, 1.0e-2], "log": True}},
    },
}


def _tune(tmp_path: Path, change: dict[str, Any] | None = None, *options: str, **sections: Any) -> Any:
    config = copy.deepcopy(BASE)
    config["tune"].update(change or {})
    config.update(sections)
    path = write_config(tmp_path / "exp.yaml", config)
    return runner.invoke(app, ["tune", "--config", str(path), "--checkpoints-dir", str(tmp_path / "checkpoints"), *options])


def _refused(result: Any, *fragments: str) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("atheria: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("space", "fragments"),
    [
        ({"lerning_rate": {"float": [1e-4, 1e-2]}}, ("tune.space.lerning_rate", "did you mean 'learning_rate'")),
        ({"batch_size": {"float": [16, 64]}}, ("tune.space.batch_size", "integer")),
        ({"n_epochs": {"choice": ["many", 2]}}, ("tune.space.n_epochs", "'many'")),
        ({"learning_rate": {"float": [1e-2, 1e-4]}}, ("tune.space.learning_rate", "empty range")),
        ({"gamma": {"one_minus": [0.1, 1.5]}}, ("tune.space.gamma", "0 < lo < hi < 1")),
        ({"learning_rate": {"float": [0.0, 1e-2], "log": True}}, ("tune.space.learning_rate", "positive range")),
        ({"learning_rate": {"flaot": [1e-4, 1e-2]}}, ("tune.space.learning_rate.flaot", "did you mean 'float'")),
        ({"policy_kwargs.net_arh": {"choice": {"small": [8]}}}, ("tune.space.policy_kwargs.net_arh", "did you mean 'net_arch'")),
        ({"policy_kwargs.net_arch": {"choice": [[8], [16]]}}, ("tune.space.policy_kwargs.net_arch", "{label: value}")),
    ],
)
def test_a_bad_space_exits_2_naming_the_path_and_writes_nothing(
    tmp_path: Path, space: dict[str, Any], fragments: tuple[str, ...]
) -> None:
    _refused(_tune(tmp_path, {"space": space}), *fragments)
    assert not (tmp_path / "checkpoints").exists()


def test_final_seeds_that_overlap_the_tuning_seeds_exit_2(tmp_path: Path) -> None:
    _refused(_tune(tmp_path, {"final": {"seeds": [1, 5]}}), "tune.final.seeds", "seed 1 is also a tuning seed")


def test_evaluation_seeds_equal_to_training_seeds_exit_2(tmp_path: Path) -> None:
    line = _refused(_tune(tmp_path, train={"eval": {"every": 2, "episodes": 3, "seed": 0}}), "train.eval.seed")
    assert "training seed 0" in line


def test_tuning_without_evaluations_exits_2(tmp_path: Path) -> None:
    _refused(_tune(tmp_path, train={"episodes": 3}), "set train.eval")


def test_an_unknown_tune_field_and_agent_exit_2_with_a_suggestion(tmp_path: Path) -> None:
    _refused(_tune(tmp_path, {"trails": 3}), "tune.trails", "did you mean 'trials'")
    _refused(_tune(tmp_path, {"agent": "PPO2"}), "tune.agent", "did you mean 'PPO'")


def test_an_enqueued_value_outside_the_space_exits_2(tmp_path: Path) -> None:
    _refused(_tune(tmp_path, {"enqueue": [{"learning_rate": 0.5}]}), "tune.enqueue.0.learning_rate", "outside the range")


def test_without_optuna_tune_exits_2_naming_the_extra_before_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)  # what an environment without the extra has: import fails
    _refused(_tune(tmp_path), "pip install 'atheria-cli[tune]'")
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize(
    ("options", "train"),
    [(("--backend", "ray"), {}), ((), {"backend": "ray"}), (("--final", "--report", "--backend", "ray"), {})],
    ids=["option", "train.backend", "final"],
)
def test_the_ray_backend_without_the_extra_exits_2_naming_it_before_writing(
    options: tuple[str, ...], train: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # an environment without the 'ray' extra
    result = _tune(tmp_path, None, *options, train={**BASE["train"], **train})
    assert _refused(result) == "atheria: error: --backend ray needs the 'ray' extra: pip install 'atheria-cli[ray]'"
    assert not (tmp_path / "checkpoints").exists()


def test_an_unknown_backend_exits_2(tmp_path: Path) -> None:
    _refused(_tune(tmp_path, None, "--backend", "slurm"), "unknown --backend 'slurm': use local or ray")
    assert not (tmp_path / "checkpoints").exists()


def test_a_remote_address_without_shared_storage_exits_2(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="the Ray backend needs the 'ray' extra: pip install 'atheria-cli[ray]'")
    mirror = {**BASE["train"], "mirror": {"to": str(tmp_path / "mirror")}}  # enough for train, not for tune
    result = _tune(tmp_path, None, "--backend", "ray", "--address", "ray://127.0.0.1:10001", train=mirror)
    _refused(result, "the driver reads each trial's evaluations from checkpoints_dir", "train.shared_storage: true")
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        ({"train": {"save_evry": 2}}, "train.save_evry: unknown field (did you mean 'save_every'?)"),
        ({"agents": {"PPO": {"hyperparms": {}}}}, "agents.PPO.hyperparms: unknown field (did you mean 'hyperparams'?)"),
        (
            {"env": {"id": "CartPole-v1", "max_episode_step": 5}},
            "env.max_episode_step: unknown field (did you mean 'max_episode_steps'?)",
        ),
    ],
)
def test_an_unknown_field_anywhere_in_the_config_suggests_the_closest_name(
    tmp_path: Path, section: dict[str, Any], fragment: str
) -> None:
    _refused(_tune(tmp_path, **section), fragment)


def test_a_trial_budget_is_exactly_one_of_episodes_and_until_timesteps(tmp_path: Path) -> None:
    error = f"atheria: error: {tmp_path / 'exp.yaml'}: "
    neither = copy.deepcopy(BASE["tune"])
    del neither["episodes"]
    assert _refused(_tune(tmp_path, None, tune=neither)) == (
        f"{error}tune.episodes: give tune.episodes or tune.until_timesteps (each trial's budget per seed)"
    )
    assert _refused(_tune(tmp_path, {"until_timesteps": 200})) == (
        f"{error}tune.until_timesteps: give tune.episodes or tune.until_timesteps, not both"
    )
    final = {"seeds": [5], "episodes": 4, "until_timesteps": 200}
    assert _refused(_tune(tmp_path, {"final": final})) == (
        f"{error}tune.final.until_timesteps: give tune.final.episodes or tune.final.until_timesteps, not both"
    )
    assert _refused(_tune(tmp_path, {"episodes": 1})) == (  # the episodes budget's own check, unchanged
        f"{error}tune.episodes: 1 episode(s) give 0 evaluation(s) (train.eval.every 2), fewer than tune.objective.window 1"
    )
    assert not (tmp_path / "checkpoints").exists()
