"""`atheria train` with rl-zoo3 entries that must be refused: exit 2, one line, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from atheria_cli.cli import app
from tests.conftest import tiny_config, write_config

runner = CliRunner()

ENTRIES = """
Pendulum-v1:
  policy_kwargs: "dict(net_arch=[8], activation_fn=__import__('os').system('touch pwned'))"
Wrapped-v0:
  env_wrapper: gymnasium.wrappers.ClipAction
Dotted-v0:
  policy: 'stable_baselines3.sac.policies.MlpPolicy'
  learning_starts: 1000
"""


@pytest.mark.parametrize(
    ("entry", "flags", "message"),
    [
        (
            "Pendulum-v1",
            [],
            "agents.SAC.zoo zoo/sac.yml#Pendulum-v1: policy_kwargs, column 34: a call to '__import__' is not allowed",
        ),
        ("Wrapped-v0", [], "env_wrapper: names code to import (gymnasium.wrappers.ClipAction); refused unless --allow-import"),
        ("Wrapped-v0", ["--allow-import"], "atheria cannot capture the state of gymnasium.wrappers.ClipAction in a checkpoint"),
        ("Dotted-v0", [], "policy: names code to import (stable_baselines3.sac.policies.MlpPolicy)"),
    ],
)
def test_refused_zoo_entries_exit_2_and_write_nothing(entry: str, flags: list[str], message: str, in_tmp: Path) -> None:
    (in_tmp / "zoo").mkdir()
    (in_tmp / "zoo" / "sac.yml").write_text(ENTRIES, encoding="utf-8")
    path = write_config(in_tmp / "exp.yaml", tiny_config({"SAC": {"zoo": f"zoo/sac.yml#{entry}"}}))
    result = runner.invoke(app, ["train", "--config", str(path), "--episodes", "1", *flags])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"atheria: error: {path}: agents.SAC.zoo zoo/sac.yml#{entry}: ")
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert sorted(item.name for item in in_tmp.iterdir()) == ["exp.yaml", "zoo"]


def test_a_dotted_policy_outside_the_prefixes_is_refused_by_the_registry(in_tmp: Path) -> None:
    config = tiny_config({"SAC": {"policy": "my_package.policies.Evil"}}, train={"allow_import": True})
    result = runner.invoke(app, ["train", "--config", str(write_config(in_tmp / "exp.yaml", config)), "--episodes", "1"])
    assert result.exit_code == 2
    assert "agents.SAC.policy: 'my_package.policies.Evil' is outside the importable prefixes" in result.stderr
    assert not (in_tmp / "checkpoints").exists()


def test_off_policy_frame_stack_with_normalize_is_refused_before_training(in_tmp: Path) -> None:
    config = tiny_config({"SAC": {"env": {"frame_stack": 2, "normalize": True}}})
    result = runner.invoke(app, ["train", "--config", str(write_config(in_tmp / "exp.yaml", config)), "--episodes", "1"])
    assert result.exit_code == 2
    assert result.stderr == (
        "atheria: error: agents.SAC: SAC cannot combine frame_stack with normalize (SB3 stores unstacked observations)\n"
    )
    assert not (in_tmp / "checkpoints").exists()
