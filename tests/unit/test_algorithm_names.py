"""The torch-free algorithm table: names the config accepts and the extra each one needs."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
from pathlib import Path

import pytest

from atheria_cli.agents.names import (
    ALGORITHMS,
    CONTRIB_ALGORITHMS,
    CORE_ALGORITHMS,
    DEFAULT_POLICIES,
    installed_extra_versions,
    missing_extra,
)
from atheria_cli.config import load_config
from atheria_cli.errors import ConfigError
from tests.conftest import tiny_config, write_config


@pytest.fixture
def without_contrib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sb3_contrib", None)  # what Python sees when it is not installed


@pytest.mark.parametrize("algo", CONTRIB_ALGORITHMS)
def test_contrib_algorithm_without_the_extra_names_it(algo: str, without_contrib: None, tmp_path: Path) -> None:
    assert missing_extra(algo) == "contrib"
    path = write_config(tmp_path / "exp.yaml", tiny_config({"X": {"algo": algo}}))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: agents.X.algo: {algo} needs the 'contrib' extra: pip install 'atheria-cli[contrib]'"


def test_an_agent_named_after_a_contrib_algorithm_needs_the_extra_too(without_contrib: None, tmp_path: Path) -> None:
    path = write_config(tmp_path / "exp.yaml", tiny_config({"RecurrentPPO": {}}))
    with pytest.raises(ConfigError, match=r"agents\.RecurrentPPO\.algo: RecurrentPPO needs the 'contrib' extra"):
        load_config(path)


@pytest.mark.parametrize("algo", CORE_ALGORITHMS)
def test_core_algorithms_need_no_extra(algo: str, without_contrib: None, tmp_path: Path) -> None:
    assert missing_extra(algo) is None
    assert load_config(write_config(tmp_path / "exp.yaml", tiny_config({"X": {"algo": algo}}))).algo_of("X") == algo


def test_every_algorithm_is_core_or_contrib() -> None:
    assert ALGORITHMS == CORE_ALGORITHMS + CONTRIB_ALGORITHMS


def test_an_absent_extra_has_no_recorded_version(without_contrib: None) -> None:
    assert "sb3_contrib" not in installed_extra_versions()


def test_an_installed_extra_records_its_version() -> None:
    if importlib.util.find_spec("sb3_contrib") is None:
        pytest.skip("the contrib extra is not installed")
    assert installed_extra_versions()["sb3_contrib"] == importlib.metadata.version("sb3-contrib")


@pytest.mark.parametrize("algo", ALGORITHMS)
def test_every_algorithms_default_policy_is_one_of_its_own(algo: str) -> None:
    from atheria_cli.agents.registry import algorithm_class  # torch: only this test needs the classes

    if algo in CONTRIB_ALGORITHMS:
        pytest.importorskip("sb3_contrib")
    assert DEFAULT_POLICIES[algo] in algorithm_class(algo).policy_aliases


def test_an_agent_without_a_policy_gets_its_algorithms_default(tmp_path: Path) -> None:
    agents = {"RecurrentPPO": {}, "lstm": {"algo": "RecurrentPPO"}, "A2C": {}, "mask": {"algo": "MaskablePPO"}}
    agents["explicit"] = {"algo": "RecurrentPPO", "policy": "MlpPolicy"}  # kept as given, and refused at planning
    config = load_config(write_config(tmp_path / "exp.yaml", tiny_config(agents)))
    assert {name: agent.policy for name, agent in config.agents.items()} == {
        "RecurrentPPO": "MlpLstmPolicy",
        "lstm": "MlpLstmPolicy",
        "A2C": "MlpPolicy",  # what every run's config.json already records: no drift on resume
        "mask": "MlpPolicy",
        "explicit": "MlpPolicy",
    }
