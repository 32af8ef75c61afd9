"""atheria's built-in trainers (``trainer: atheria/<name>``): one table, validated by the config
without torch and without ``train.allow_import``."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from atheria_cli.config import load_config
from atheria_cli.errors import ConfigError
from atheria_cli.trainers.builtin import BUILTIN_TRAINERS, builtin_class_path, is_builtin
from tests.conftest import write_config


def qca_config(trainer: str = "atheria/qca") -> dict[str, Any]:
    return {"experiment": "qca", "agents": {"qca": {"trainer": trainer, "metrics": [{"name": "combined_metric", "goal": "max"}]}}}


def test_a_built_in_name_is_accepted_without_allow_import(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path / "exp.yaml", qca_config()))
    assert config.agents["qca"].trainer == "atheria/qca" and not config.train.allow_import
    assert builtin_class_path("atheria/qca") == "atheria_cli.trainers.qca.trainer:QCATrainer"
    assert is_builtin("atheria/qca") and not is_builtin("tests.trainers:Shuffler")


def test_an_unknown_built_in_name_is_refused_listing_the_known_ones(tmp_path: Path) -> None:
    path = write_config(tmp_path / "exp.yaml", qca_config("atheria/qcb"))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: agents.qca.trainer: 'atheria/qcb' is not a built-in trainer (built-in: atheria/qca)"


def test_a_trainer_that_is_neither_a_class_path_nor_a_built_in_is_refused(tmp_path: Path) -> None:
    path = write_config(tmp_path / "exp.yaml", qca_config("qca"))
    with pytest.raises(ConfigError, match="'qca' is not a class path: write it as package.module:Class \\(or atheria/<name>"):
        load_config(path)


@pytest.mark.parametrize("name", sorted(BUILTIN_TRAINERS))
def test_every_built_in_names_a_class_with_the_trainer_methods(name: str) -> None:
    """Read from the source, not imported: the table stays torch-free and this test too."""
    module_name, _, class_name = BUILTIN_TRAINERS[name].partition(":")
    spec = importlib.util.find_spec(module_name)
    assert spec is not None and spec.origin is not None, module_name
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    assert class_name in classes, f"{module_name} has no class {class_name}"
    methods = {node.name for node in classes[class_name].body if isinstance(node, ast.FunctionDef)}
    assert {"__init__", "train_episode"} <= methods  # state_dict and load_state_dict: StatefulTrainer's


def test_validating_a_built_in_name_imports_no_torch(tmp_path: Path) -> None:
    path = write_config(tmp_path / "exp.yaml", qca_config())
    code = (
        "import sys, pathlib\nfrom atheria_cli.config import load_config\n"
        f"load_config(pathlib.Path({str(path)!r}))\nprint('torch' in sys.modules)\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "False"
