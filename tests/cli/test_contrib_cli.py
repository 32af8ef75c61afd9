"""The sb3-contrib algorithms: refused with the extra's name when it is missing, checked when present."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from atheria_cli.agents.names import ALGORITHMS
from atheria_cli.agents.registry import ALGORITHM_SPECS
from atheria_cli.cli import app
from atheria_cli.config import load_config
from tests.conftest import listing, tiny_config, write_config
from tests.unit.test_reports import commit_sessions, record

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
# sys.modules[name] = None makes Python treat the package as not installed. Importing the
# training modules first proves that none imports sb3-contrib at module level.
WITHOUT_CONTRIB = (
    "import sys; sys.modules['sb3_contrib'] = None; "
    "import atheria_cli.agents.registry, atheria_cli.agents.loops, atheria_cli.agents.checkpoint, atheria_cli.deploy.export; "
    "from atheria_cli.cli import main; main()"
)


def test_the_registry_and_the_names_table_list_the_same_algorithms() -> None:
    assert tuple(ALGORITHM_SPECS) == ALGORITHMS


def test_contrib_algorithm_without_the_extra_exits_2_naming_it(in_tmp: Path) -> None:
    path = write_config(in_tmp / "exp.yaml", tiny_config({"X": {"algo": "TQC"}}))
    completed = subprocess.run(
        [sys.executable, "-c", WITHOUT_CONTRIB, "train", "--config", str(path)],
        capture_output=True,
        text=True,
        cwd=in_tmp,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
    )
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr == (
        f"atheria: error: {path}: agents.X.algo: TQC needs the 'contrib' extra: pip install 'atheria-cli[contrib]'\n"
    )
    assert listing(in_tmp) == ["exp.yaml"]


def test_a_contrib_run_stays_readable_without_the_extra(in_tmp: Path) -> None:
    # Trained where sb3-contrib was installed, read where it is not: the reading commands never
    # build an agent, so they must not refuse the config.
    path = write_config(in_tmp / "exp.yaml", tiny_config({"X": {"algo": "TQC"}}))
    commit_sessions(load_config(path, check_extras=False), "X", [[record(1, -5.0, 3.0), record(2, -4.0, 2.0)]])
    for command in (["history", "X"], ["status"], ["compare"]):
        completed = subprocess.run(
            [sys.executable, "-c", WITHOUT_CONTRIB, *command, "--config", str(path), "--json"],
            capture_output=True,
            text=True,
            cwd=in_tmp,
            env={"PYTHONPATH": str(ROOT), "PATH": ""},
        )
        assert completed.returncode == 0, (command, completed.stderr)
        assert completed.stderr == ""
    assert json.loads(completed.stdout)["agents"][0]["agent"] == "X"


def test_maskable_ppo_on_an_env_without_action_masks_exits_2(in_tmp: Path) -> None:
    pytest.importorskip("sb3_contrib")
    path = write_config(in_tmp / "exp.yaml", tiny_config({"MaskablePPO": {}}, env={"id": "CartPole-v1"}))
    result = runner.invoke(app, ["train", "--config", str(path)])
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        "atheria: error: agents.MaskablePPO: MaskablePPO needs an environment with an action_masks() method; "
        "CartPole-v1 has none\n"
    )
    assert listing(in_tmp) == ["exp.yaml"]


def test_recurrent_ppo_with_a_non_recurrent_policy_exits_2_naming_its_policies(in_tmp: Path) -> None:
    pytest.importorskip("sb3_contrib")
    # Named explicitly: an unset policy is RecurrentPPO's own default, MlpLstmPolicy.
    path = write_config(in_tmp / "exp.yaml", tiny_config({"RecurrentPPO": {"policy": "MlpPolicy"}}))
    result = runner.invoke(app, ["train", "--config", str(path)])
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        "atheria: error: agents.RecurrentPPO.policy: RecurrentPPO has no policy 'MlpPolicy' "
        "(one of MlpLstmPolicy, CnnLstmPolicy, MultiInputLstmPolicy)\n"
    )
    assert listing(in_tmp) == ["exp.yaml"]
