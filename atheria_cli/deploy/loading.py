"""``load_agent``: a ready SB3 model from an ``episode_XXXX.pt`` checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

from stable_baselines3.common.base_class import BaseAlgorithm

from atheria_cli.agents.checkpoint import read_checkpoint
from atheria_cli.agents.loops import OffPolicyLoop, make_loop
from atheria_cli.agents.registry import build_model
from atheria_cli.agents.state import restore_model
from atheria_cli.config import ExperimentConfig
from atheria_cli.envs.factory import make_vec_env
from atheria_cli.envs.state import load_normalizer_statistics
from atheria_cli.run.layout import METADATA_FILE, AgentLayout
from atheria_cli.run.store import AgentStore
from atheria_cli.training.devices import resolve_device


def load_agent(path: str | Path, device: str = "cpu") -> BaseAlgorithm:
    """Rebuild the agent's model and env from the config inside the checkpoint and load it.

    Parameters, optimizers, counters and the replay buffer (from the segments beside the
    checkpoint) are restored; the env is a fresh copy of the training env, whose VecNormalize
    statistics, if any, are loaded and frozen.
    When the folder's ``metadata.json`` lists the file, its sha256 is checked too.
    """
    path = Path(path)
    payload = read_checkpoint(path, expected_sha256=_recorded_sha256(path))
    config = ExperimentConfig.model_validate(json.loads(payload["run_config"]))
    agent = payload["agent"]
    env = make_vec_env(config.env_of(agent))
    model = build_model(config, agent, env, resolve_device(device), config.seed_of(agent))
    restore_model(model, payload["model"], with_step_state=False)
    loop = make_loop(model, config.schedule_timesteps_of(agent))
    if isinstance(loop, OffPolicyLoop):
        loop.load_buffer_state(payload["buffer"], AgentStore(AgentLayout(path.parent)).read_segment)
    load_normalizer_statistics(env, payload["env"])
    return model


def _recorded_sha256(path: Path) -> str | None:
    if not (path.parent / METADATA_FILE).exists():
        return None
    metadata = AgentStore(AgentLayout(path.parent)).metadata()
    entry = next((entry for entry in metadata.checkpoints if entry.file == path.name), None)
    return entry.sha256 if entry else None
