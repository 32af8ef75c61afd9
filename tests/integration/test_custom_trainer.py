"""A user's own PyTorch trainer (agents.X.trainer): exact resume, the first commit's state checks,
bad input refused before anything is written, and the reading commands on its run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from atheria_cli.cli import app
from tests.conftest import TINY_AGENTS, listing, write_config
from tests.integration.helpers import agent_dir, assert_same_tree, episodes, last_payload, train

pytestmark = pytest.mark.integration

runner = CliRunner()
METRICS = [{"name": "loss", "goal": "min"}, "lr"]


def trainer_config(trainer: str = "tests.trainers:Shuffler", **agent: Any) -> dict[str, Any]:
    return {
        "experiment": "test",
        "seed": 7,
        "device": "cpu",
        "agents": {"fit": {"trainer": trainer, "kwargs": {"hidden": 8}, "metrics": METRICS, **agent}},
        "train": {"allow_import": True},
    }


def _records(root: Path, agent: str = "fit") -> list[dict[str, Any]]:
    return [record.model_dump(exclude={"seconds"}) for record in episodes(root, agent)]


def test_n_plus_m_equals_n_then_resume_m(tmp_path: Path) -> None:
    config = trainer_config()
    one_go = train(config, tmp_path / "one", episodes=5)
    assert one_go.warnings == []
    train(config, tmp_path / "split", episodes=2)
    resumed = train(config, tmp_path / "split", episodes=3, resume=True)
    assert resumed.warnings == []

    assert _records(tmp_path / "one") == _records(tmp_path / "split")
    records = _records(tmp_path / "one")
    assert [record["episode"] for record in records] == [1, 2, 3, 4, 5]
    assert [record["timesteps"] for record in records] == [1, 2, 3, 4, 5]  # a trainer's clock: episodes
    # The reward is higher-is-better: the main metric, a loss (goal min), negated.
    assert records[0]["reward"] == -records[0]["metrics"]["loss"] and records[0]["length"] == 6
    assert records[4]["metrics"]["lr"] == 0.05 * 0.5**2  # the scheduler stepped once per episode
    left, right = last_payload(tmp_path / "one", "fit"), last_payload(tmp_path / "split", "fit")
    assert left["trainer"] == "torch" and left["episode"] == right["episode"] == 5
    assert_same_tree(left["state"], right["state"], "state")
    assert_same_tree(left["rng"], right["rng"], "rng")

    metadata = json.loads((agent_dir(tmp_path / "one", "fit") / "metadata.json").read_text())
    assert (metadata["algo"], metadata["policy"], metadata["env_id"]) == ("torch", "tests.trainers:Shuffler", None)
    assert (metadata["trainer"], metadata["hyperparams"]) == ("tests.trainers:Shuffler", {"hidden": 8})


def test_a_tensor_left_out_of_state_dict_is_named_at_the_first_commit(tmp_path: Path) -> None:
    observer = train(trainer_config("tests.trainers:ForgetsPsi"), tmp_path, episodes=2)
    assert observer.warnings == [
        "fit: the trainer's psi differs after a round trip through a fresh instance: is it in state_dict?"
    ]


def test_a_committed_state_does_not_alias_the_trainer(tmp_path: Path) -> None:
    # Shuffler updates psi in place: the checkpoint of episode 1 keeps episode 1's value.
    train(trainer_config(), tmp_path, episodes=1)
    first = last_payload(tmp_path, "fit")["state"]["psi"].clone()
    train(trainer_config(), tmp_path, episodes=1, resume=True)
    assert not first.equal(last_payload(tmp_path, "fit")["state"]["psi"])


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args))


def _refused(in_tmp: Path, config: dict[str, Any], *, progress: list[str] | None = None) -> str:
    """The one error line of ``atheria train`` on ``config``, which exits 2 and writes nothing;
    ``progress``: the lines before it (a metric is checked in the first episode)."""
    path = write_config(in_tmp / "exp.yaml", config)
    result = invoke("train", "--config", str(path), "--episodes", "2")
    assert result.exit_code == 2, result.output
    assert listing(in_tmp) == ["exp.yaml"]  # nothing written
    *before, last = result.stderr.strip().splitlines()
    assert before == (progress or []) and "Traceback" not in result.output, result.output
    return last


def _allowed(config: dict[str, Any]) -> dict[str, Any]:
    return {**config, "checkpoints_dir": "checkpoints"}


def test_a_trainer_path_needs_allow_import(in_tmp: Path) -> None:
    config = _allowed(trainer_config())
    config["train"] = {}
    assert _refused(in_tmp, config) == (
        "atheria: error: agents.fit.trainer: importing 'tests.trainers:Shuffler' runs its code; "
        "allow it with train.allow_import: true or --allow-import"
    )
    path = write_config(in_tmp / "exp.yaml", config)
    result = invoke("train", "--config", str(path), "--episodes", "1", "--allow-import")
    assert result.exit_code == 0, result.output


def test_a_trainer_path_that_does_not_import(in_tmp: Path) -> None:
    assert _refused(in_tmp, _allowed(trainer_config("tests.no_such_module:Shuffler"))) == (
        "atheria: error: agents.fit.trainer: cannot import module 'tests.no_such_module' of "
        "'tests.no_such_module:Shuffler': No module named 'tests.no_such_module'"
    )
    assert _refused(in_tmp, _allowed(trainer_config("tests.trainers:Shufler"))) == (
        "atheria: error: agents.fit.trainer: module 'tests.trainers' has no class 'Shufler'"
    )


def test_a_trainer_missing_a_method(in_tmp: Path) -> None:
    config = _allowed(trainer_config("tests.trainers:NoLoad"))
    config["agents"]["fit"]["kwargs"] = {}
    assert _refused(in_tmp, config) == (
        "atheria: error: agents.fit.trainer: tests.trainers:NoLoad has no load_state_dict() "
        "(a trainer needs train_episode, state_dict, load_state_dict)"
    )


def test_unknown_kwargs(in_tmp: Path) -> None:
    config = _allowed(trainer_config())
    config["agents"]["fit"]["kwargs"] = {"hiden": 8}
    assert _refused(in_tmp, config) == (
        "atheria: error: agents.fit.kwargs: tests.trainers:Shuffler does not accept 'hiden' "
        "(did you mean 'hidden'? accepted: batch, hidden, lr, samples)"
    )


def test_a_metric_the_first_episode_does_not_return(in_tmp: Path) -> None:
    config = _allowed(trainer_config())
    config["agents"]["fit"]["metrics"] = ["loss", "accuracy"]
    assert _refused(in_tmp, config, progress=["fit: episodes 1–2 (new run)"]) == (
        "atheria: error: agents.fit.metrics: 'accuracy' is not among the values train_episode returned in "
        "episode 1 (loss, lr, steps); fix agents.fit.metrics or the trainer"
    )


CO2 = [{"name": "co2_kg", "goal": "min"}]


def mixed_config() -> dict[str, Any]:
    """A2C (SB3) and a user's own random search, both on EmissionsEnv, ranked by its co2_kg."""
    return {
        "experiment": "test",
        "checkpoints_dir": "checkpoints",
        "seed": 3,
        "device": "cpu",
        "env": {"id": "tests.envs:EmissionsEnv", "metrics": CO2},
        "agents": {"A2C": TINY_AGENTS["A2C"], "search": {"trainer": "tests.trainers:RandomSearch", "metrics": CO2}},
        "train": {"allow_import": True},
    }


def test_sb3_agents_and_trainers_share_an_experiment(in_tmp: Path) -> None:
    path = write_config(in_tmp / "exp.yaml", mixed_config())
    result = invoke("train", "--config", str(path), "--episodes", "3")
    assert result.exit_code == 0, result.output
    root = in_tmp / "checkpoints" / "test"
    assert json.loads((root / "A2C/metadata.json").read_text())["env_id"] == "tests.envs:EmissionsEnv"
    assert json.loads((root / "search/metadata.json").read_text())["env_id"] is None  # it makes its own env
    records = [record.model_dump() for record in episodes(in_tmp / "checkpoints", "search")]
    # The trainer's reward is the return it reported, not its main metric negated.
    assert all(record["reward"] < 0 and record["reward"] != -record["metrics"]["co2_kg"] for record in records)
    assert [record["length"] for record in records] == [20, 20, 20]
    compare = invoke("compare", "--config", str(path))
    assert compare.exit_code == 0 and "co2_kg" in compare.output
    assert {"A2C", "search"} <= set(compare.output.split())
    resumed = invoke("train", "--config", str(path), "--episodes", "2", "--resume")
    assert resumed.exit_code == 0, resumed.output


def test_a_trainer_beside_sb3_agents_resumes_exactly(tmp_path: Path) -> None:
    config = mixed_config()
    train(config, tmp_path / "one", episodes=4)
    train(config, tmp_path / "split", episodes=1)
    train(config, tmp_path / "split", episodes=3, resume=True)
    for agent in ("search", "A2C"):
        assert _records(tmp_path / "one", agent) == _records(tmp_path / "split", agent), agent
    assert_same_tree(last_payload(tmp_path / "one", "search")["state"], last_payload(tmp_path / "split", "search")["state"])


def test_beside_sb3_agents_a_trainer_s_main_metric_is_env_metrics_first(in_tmp: Path) -> None:
    config = mixed_config()
    config["agents"]["search"]["metrics"] = ["reward_rate", *CO2]
    assert _refused(in_tmp, config) == (
        f"atheria: error: {in_tmp / 'exp.yaml'}: agents.search.metrics: its main (first) metric is 'reward_rate', "
        "env.metrics' is 'co2_kg'; the agents of one experiment are ranked by one main metric"
    )
    config = mixed_config()
    config["env"]["metrics"] = []
    assert _refused(in_tmp, config) == (
        f"atheria: error: {in_tmp / 'exp.yaml'}: env.metrics: A2C (SB3) is ranked by its reward and search (trainer) by "
        "'co2_kg'; name 'co2_kg' first in env.metrics to rank them alike"
    )
    config = mixed_config()
    config["agents"]["search"]["metrics"] = [{"name": "co2_kg", "goal": "max"}]
    assert _refused(in_tmp, config) == (
        f"atheria: error: {in_tmp / 'exp.yaml'}: agents.search.metrics: 'co2_kg' has goal max here, min in env.metrics"
    )
    config = mixed_config()
    del config["env"]
    assert _refused(in_tmp, config) == f"atheria: error: {in_tmp / 'exp.yaml'}: env: Field required"


def test_trainers_of_one_experiment_share_their_main_metric(in_tmp: Path) -> None:
    # Ranked by the first trainer's main metric, a second trainer with another one would show no value.
    config = _allowed(trainer_config())
    config["agents"]["other"] = {**config["agents"]["fit"], "metrics": ["lr", {"name": "loss", "goal": "min"}]}
    assert _refused(in_tmp, config) == (
        f"atheria: error: {in_tmp / 'exp.yaml'}: agents.other.metrics: its main (first) metric is 'lr', fit's is 'loss'; "
        "the agents of one experiment are ranked by one main metric"
    )


def test_a_raising_episode_exits_1_with_earlier_commits_intact(in_tmp: Path) -> None:
    config = _allowed(trainer_config("tests.trainers:FailsInEpisode"))
    config["agents"]["fit"]["kwargs"] = {"fail_at": 3}
    path = write_config(in_tmp / "exp.yaml", config)
    result = invoke("train", "--config", str(path), "--episodes", "5")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "atheria: error: agents.fit: train_episode failed in episode 3: RuntimeError: the simulation blew up in episode 3; "
        "the committed checkpoints are intact (--resume continues from the last)"
    )
    folder = in_tmp / "checkpoints" / "test" / "fit"
    assert [name for name in listing(folder) if name.endswith(".pt")] == ["episode_0001.pt", "episode_0002.pt"]
    assert invoke("verify", "--config", str(path)).exit_code == 0


def test_history_status_and_compare_read_a_trainer_run(in_tmp: Path) -> None:
    path = write_config(in_tmp / "exp.yaml", _allowed(trainer_config()))
    assert invoke("train", "--config", str(path), "--episodes", "3").exit_code == 0
    for command in (["history", "fit"], ["status"], ["compare"]):
        result = invoke(*command, "--config", str(path))
        assert result.exit_code == 0, f"{command}: {result.output}"
        assert "fit" in result.output, command
    assert "loss" in invoke("compare", "--config", str(path)).output  # the main metric


def test_the_report_of_a_trainer_run_ranks_its_loss_and_its_reward_alike(in_tmp: Path) -> None:
    # Rendering a trainer's report showed its loss as a "reward (higher is better)": the best
    # episode by reward was the worst by loss.
    path = write_config(in_tmp / "exp.yaml", _allowed(trainer_config()))
    assert invoke("train", "--config", str(path), "--episodes", "3").exit_code == 0
    assert invoke("report", "--config", str(path)).exit_code == 0
    html = (in_tmp / "checkpoints/test/report.html").read_text(encoding="utf-8")
    assert "<td>fit</td><td>torch</td><td>committed</td>" in html
    records = _records(in_tmp / "checkpoints")
    by_loss = min(records, key=lambda record: record["metrics"]["loss"])
    by_reward = max(records, key=lambda record: record["reward"])
    assert by_loss["episode"] == by_reward["episode"]
