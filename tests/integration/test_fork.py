"""Forks: `train --from-checkpoint RUN/AGENT/episode_XXXX.pt --agent NEW`."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from atheria_cli.cli import app
from atheria_cli.run.formats import read_history, read_metadata
from tests.conftest import TINY_AGENTS, tiny_config, write_config
from tests.integration.helpers import (
    agent_dir,
    assert_same_tree,
    last_payload,
    rewards,
    train,
)
from tests.integration.test_exact_resume import _without_wall_time

pytestmark = pytest.mark.integration

runner = CliRunner()
SAC = TINY_AGENTS["SAC"]
AGENTS: dict[str, dict[str, Any]] = {
    "SAC": SAC,
    "Same": {"algo": "SAC", **SAC},
    "LowLR": {"algo": "SAC", "hyperparams": {**SAC["hyperparams"], "learning_rate": 0.0001}},
    "Wider": {"algo": "SAC", "hyperparams": {**SAC["hyperparams"], "policy_kwargs": {"net_arch": [32]}}},
    "Bigger": {"algo": "SAC", "hyperparams": {**SAC["hyperparams"], "buffer_size": 2000}},
    "Other": {"algo": "TD3", "hyperparams": TINY_AGENTS["TD3"]["hyperparams"]},
    "TwoEnvs": {"algo": "SAC", **SAC, "env": {"n_envs": 2}},  # the agent's own env settings count too
    "Stacked": {"algo": "SAC", **SAC, "env": {"frame_stack": 2}},
}
SOURCE = Path("test/SAC/episode_0002.pt")


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def source_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SAC trained 4 episodes, one checkpoint each (the source every test copies)."""
    root = tmp_path_factory.mktemp("fork")
    train(tiny_config(AGENTS), root / "checkpoints", episodes=4, agents=["SAC"])
    return root


@pytest.fixture
def root(source_root: Path, tmp_path: Path) -> Path:
    shutil.copytree(source_root, tmp_path, dirs_exist_ok=True)
    write_config(tmp_path / "exp.yaml", tiny_config(AGENTS))
    return tmp_path


def invoke(root: Path, *args: str) -> Any:
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        return runner.invoke(app, [*args, "--config", "exp.yaml"])


def test_fork_continues_exactly_as_the_source_would_and_leaves_it_untouched(root: Path) -> None:
    checkpoints = root / "checkpoints"
    before = _hashes(checkpoints / "test" / "SAC")
    observer = train(tiny_config(AGENTS), checkpoints, episodes=2, agents=["Same"], from_checkpoint=checkpoints / SOURCE)
    assert observer.warnings == []
    assert _hashes(checkpoints / "test" / "SAC") == before
    # Same config as the source: episodes 3-4 of the fork are episodes 3-4 of the source, bit for bit.
    assert rewards(checkpoints, "Same") == rewards(checkpoints, "SAC")
    fork, source = last_payload(checkpoints, "Same"), last_payload(checkpoints, "SAC")
    assert fork["agent"] == "Same" and fork["episode"] == source["episode"] == 4
    assert_same_tree(_without_wall_time(fork["model"]), _without_wall_time(source["model"]), "model")
    for section in ("loop", "buffer", "env", "rng"):
        assert_same_tree(fork[section], source[section], section)
    history = read_history(agent_dir(checkpoints, "Same") / "history.json")
    (session,) = history.trainings
    origin = session.forked_from
    assert origin is not None and (origin.file, origin.episode, session.start_episode) == (str(checkpoints / SOURCE), 2, 3)
    assert origin.run_id == read_metadata(checkpoints / "test" / "SAC" / "metadata.json").run_id
    assert read_metadata(agent_dir(checkpoints, "Same") / "metadata.json").run_id != origin.run_id


def test_fork_with_a_lower_learning_rate_names_its_origin_and_resumes(root: Path) -> None:
    before = _hashes(root / "checkpoints" / "test" / "SAC")
    result = invoke(root, "train", "--from-checkpoint", str(SOURCE), "--agent", "LowLR", "--episodes", "1")
    assert result.exit_code == 0, result.output
    payload = last_payload(root / "checkpoints", "LowLR")
    learning_rates = {group["lr"] for group in payload["model"]["state_dicts"]["actor.optimizer"]["param_groups"]}
    assert learning_rates == {0.0001}
    assert last_payload(root / "checkpoints", "SAC")["model"]["state_dicts"]["actor.optimizer"]["param_groups"][0]["lr"] == 0.0003
    history = invoke(root, "history", "LowLR")
    assert history.exit_code == 0, history.output
    assert f"session 1 forked from {SOURCE} (run " in history.stdout
    resumed = invoke(root, "train", "--resume", "--agent", "LowLR", "--episodes", "1")
    assert resumed.exit_code == 0, resumed.output
    assert len(rewards(root / "checkpoints", "LowLR")) == 4
    assert _hashes(root / "checkpoints" / "test" / "SAC") == before


@pytest.mark.parametrize(
    ("agent", "message"),
    [
        ("Wider", "Wider: policy_kwargs {'net_arch': [32]} differs from the checkpoint's {'net_arch': [16]}"),
        ("Bigger", "Bigger: buffer_size 2000 differs from the checkpoint's 1000"),
        ("Other", "Other: algo TD3 differs from the checkpoint's SAC; a fork keeps the algorithm"),
        ("TwoEnvs", "TwoEnvs: env.n_envs 2 differs from the checkpoint's 1"),
        ("Stacked", "Stacked: env.frame_stack 2 differs from the checkpoint's None"),
        ("SAC", "--from-checkpoint: test/SAC/episode_0002.pt is SAC's own run"),
    ],
)
def test_fork_refuses_what_the_state_cannot_follow(root: Path, agent: str, message: str) -> None:
    result = invoke(root, "train", "--from-checkpoint", str(SOURCE), "--agent", agent, "--episodes", "1")
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert sorted(path.name for path in (root / "checkpoints" / "test").iterdir()) == ["SAC"]


def test_fork_refuses_an_existing_run_and_an_uncommitted_file(root: Path) -> None:
    assert invoke(root, "train", "--from-checkpoint", str(SOURCE), "--agent", "Same", "--episodes", "1").exit_code == 0
    again = invoke(root, "train", "--from-checkpoint", str(SOURCE), "--agent", "Same", "--episodes", "1")
    assert again.exit_code == 2 and "Same already has a run" in again.stderr and "--fresh" in again.stderr
    missing = invoke(root, "train", "--from-checkpoint", "test/SAC/episode_0009.pt", "--agent", "LowLR")
    assert missing.exit_code == 2 and "no such checkpoint file: test/SAC/episode_0009.pt" in missing.stderr
    two = invoke(root, "train", "--from-checkpoint", str(SOURCE), "--agent", "LowLR", "--agent", "Same")
    assert two.exit_code == 2 and "needs exactly one --agent" in two.stderr
