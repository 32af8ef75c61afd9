"""Checkpoint schema 2 (the header names the trainer kind) and schema 1 read as SB3's, torch-free."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from atheria_cli.agents.checkpoint import CHECKPOINT_SCHEMA_VERSION, check_checkpoint_header, trainer_kind
from atheria_cli.errors import DamagedFileError
from atheria_cli.trainers import TRAINER_KINDS

SB3_SECTIONS = {"model": {}, "loop": {}, "buffer": None, "env": {}}


def _payload(schema: int, **changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "format": "atheria-checkpoint",
        "schema_version": schema,
        "agent": "PPO",
        "algo": "PPO",
        "episode": 2,
        "num_timesteps": 100,
        "run_config": "{}",
        **SB3_SECTIONS,
        "rng": {},
    }
    if schema >= 2:
        payload["trainer"] = "sb3"
    payload.update(changes)
    return {key: value for key, value in payload.items() if value is not _DROP}


_DROP = object()


def test_the_current_schema_is_2_and_its_header_names_the_trainer_kind() -> None:
    assert CHECKPOINT_SCHEMA_VERSION == 2
    payload = _payload(2)
    check_checkpoint_header(payload, "p")
    assert trainer_kind(payload) == "sb3"


def test_a_schema_1_checkpoint_is_read_as_an_sb3_checkpoint() -> None:
    payload = _payload(1)
    assert "trainer" not in payload
    check_checkpoint_header(payload, "p")
    assert trainer_kind(payload) == "sb3"


def test_a_schema_2_checkpoint_without_a_trainer_kind_is_refused() -> None:
    with pytest.raises(DamagedFileError, match="names no trainer kind"):
        check_checkpoint_header(_payload(2, trainer=_DROP), "p")


def test_an_unknown_trainer_kind_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(DamagedFileError, match=r"trainer kind 'qca', which this atheria does not know \(sb3, torch\)"):
        check_checkpoint_header(_payload(2, trainer="qca"), "p")


@pytest.mark.parametrize("section", [*TRAINER_KINDS["sb3"].checkpoint_sections, "rng"])
@pytest.mark.parametrize("schema", [1, 2])
def test_each_section_of_the_trainer_and_of_atheria_is_required(schema: int, section: str) -> None:
    with pytest.raises(DamagedFileError, match=f"checkpoint lacks {section}$"):
        check_checkpoint_header(_payload(schema, **{section: _DROP}), "p")


def test_a_newer_schema_asks_for_a_newer_atheria() -> None:
    with pytest.raises(DamagedFileError, match="upgrade atheria"):
        check_checkpoint_header(_payload(3), "p")


def test_the_header_check_imports_no_torch() -> None:
    code = (
        "import sys\n"
        "from atheria_cli.agents.checkpoint import check_checkpoint_header\n"
        "payload = {'format': 'atheria-checkpoint', 'schema_version': 2, 'trainer': 'sb3', 'agent': 'A', 'algo': 'PPO',\n"
        "           'episode': 1, 'num_timesteps': 1, 'run_config': '{}', 'model': {}, 'loop': {}, 'buffer': None,\n"
        "           'env': {}, 'rng': {}}\n"
        "check_checkpoint_header(payload, 'p')\n"
        "print(','.join(sorted(m for m in ('torch', 'stable_baselines3', 'numpy') if m in sys.modules)))\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == ""
