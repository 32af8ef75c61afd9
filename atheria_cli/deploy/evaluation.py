"""``atheria eval``: deterministic episodes of a checkpoint or of an exported policy (any format),
or a user's trainer's ``evaluate`` of its checkpoint.

A checkpoint is evaluated as its trainer kind (named in its header) says
(:meth:`~atheria_cli.trainers.base.Deployable.evaluate`); an exported policy and a reference
policy act in the config's env here."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from atheria_cli.config import ExperimentConfig
from atheria_cli.deploy.episodes import Actor, EvalEpisode, play_episode
from atheria_cli.deploy.export import space_description
from atheria_cli.deploy.formats import loadable_format
from atheria_cli.deploy.loading import load_deployable
from atheria_cli.deploy.selection import select_checkpoint
from atheria_cli.deploy.sidecar import read_sidecar
from atheria_cli.envs.protocol import reference_policies
from atheria_cli.errors import UsageError
from atheria_cli.run.atomic import atomic_write_json
from atheria_cli.run.layout import REFERENCES_DIR, AgentLayout
from atheria_cli.run.store import AgentStore

Policy = Callable[[np.ndarray], np.ndarray]


class _Stateless:
    """A policy that carries nothing from one step to the next (an export, a reference policy)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def start_episode(self) -> None:
        pass

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return self.policy(obs)


@dataclass
class EvalResult:
    """What ``atheria eval`` measured: a policy's ``episodes``, or (``measured``) the one value of
    each quantity a trainer's ``evaluate`` returned."""

    agent: str
    source: str
    episodes: list[EvalEpisode]
    recorded: Path | None = None  # where a reference policy's result was kept
    measured: dict[str, float | None] | None = None

    def values(self, name: str) -> list[float]:
        if self.measured is not None:
            value = self.measured.get(name)
            return [] if value is None else [value]
        if name == "reward":
            return [episode.reward for episode in self.episodes]
        return [value for episode in self.episodes if (value := episode.metrics.get(name)) is not None]

    def summary(self, name: str) -> dict[str, float | None]:
        """Mean and std of ``name`` over the episodes; a trainer's one value has no std."""
        if self.measured is not None:
            return {"mean": self.measured.get(name), "std": None}
        return summarize(self.values(name))


def evaluate(
    config: ExperimentConfig,
    agent: str,
    *,
    checkpoint: str,
    episodes: int,
    seed: int,
    jit: Path | None = None,
    export: Path | None = None,
) -> EvalResult:
    """Evaluate an agent's checkpoint (or its export: ``jit`` for TorchScript only, ``export`` for
    any format), or a reference policy the environment offers under that name."""
    if episodes < 1:
        raise UsageError(f"--episodes must be at least 1 (got {episodes})")
    if jit is not None and export is not None:
        raise UsageError("--jit and --export both name a file to evaluate: give one")
    if agent in config.agents and jit is None and export is None:
        return _evaluate_checkpoint(config, agent, checkpoint, episodes, seed)
    if config.env is None:  # a trainers' experiment: no env for a reference policy or an export to act in
        if agent not in config.agents:
            raise UsageError(f"unknown agent {agent!r}: the experiment has {', '.join(config.agents)}")
        option = "--jit" if jit is not None else "--export"
        raise UsageError(
            f"{option}: the experiment has no env to run an export in; evaluate the checkpoint: atheria eval {agent}"
        )
    from atheria_cli.envs.factory import make_env

    env = make_env(config.environment)
    try:
        actor: Actor
        if agent in config.agents:
            file, option = (jit, "--jit") if jit is not None else (export, "--export")
            assert file is not None
            actor, source = _exported_policy(agent, file, env, option=option)
        else:
            actor, source = _reference_policy(config, agent, env)
        result = EvalResult(agent, source, [play_episode(env, actor, seed + index, config) for index in range(episodes)])
    finally:
        env.close()
    if agent not in config.agents:
        result.recorded = _record_reference(config, result, seed)
    return result


def _reference_policy(config: ExperimentConfig, name: str, env) -> tuple[_Stateless, str]:
    references = reference_policies(env)
    if name not in references:
        offered = f"; {config.environment.id} offers the reference policies {', '.join(references)}" if references else ""
        raise UsageError(f"unknown agent {name!r}: the experiment has {', '.join(config.agents)}{offered}")
    reference = references[name](env)
    return _Stateless(lambda obs: reference.predict(obs, deterministic=True)[0]), "reference policy"


def _record_reference(config: ExperimentConfig, result: EvalResult, seed: int) -> Path:
    """Keep a reference policy's score beside the run, where ``atheria compare`` finds it."""
    names = ["reward", *(metric.name for metric in config.environment.metrics)]
    document = {
        "schema_version": 1,
        "name": result.agent,
        "env_id": config.environment.id,
        "seeds": [episode.seed for episode in result.episodes],
        "summary": {name: summarize(result.values(name)) for name in names},
        "episodes": [vars(episode) for episode in result.episodes],
    }
    path = config.run_dir / REFERENCES_DIR / f"{result.agent}.json"
    atomic_write_json(path, document)
    return path


def summarize(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "std": None}
    return {"mean": statistics.fmean(values), "std": statistics.pstdev(values)}


def _evaluate_checkpoint(config: ExperimentConfig, agent: str, spec: str, episodes: int, seed: int) -> EvalResult:
    """The selected checkpoint, evaluated as its trainer kind (named in its header) evaluates it."""
    store = AgentStore(AgentLayout.of(config.run_dir, agent))
    entry = select_checkpoint(store, agent, spec, config)
    deployed = load_deployable(store.layout.root / entry.file, agent, "evaluate")
    evaluated = deployed.evaluate(config, agent, entry.file, episodes, seed)
    return EvalResult(agent, entry.file, evaluated.episodes, measured=evaluated.measured)


def _exported_policy(agent: str, path: Path, env: Any, *, option: str) -> tuple[_Stateless, str]:
    """Load an export after checking its sidecar, its sha256 and its spaces; ``--jit`` takes TorchScript only."""
    if not path.is_file():
        raise UsageError(f"{option}: file not found: {path}")
    described = read_sidecar(path)
    if option == "--jit" and described.format != "torchscript":
        raise UsageError(
            f"--jit: {path} is not TorchScript (its sidecar says format {described.format!r}); evaluate it with --export"
        )
    if described.observation_space is None:
        raise UsageError(
            f"{option}: {path} holds a trainer's module ({described.trainer}), not a policy that acts in an env; "
            "evaluate its checkpoint instead"
        )
    for kind, space in (("observation", env.observation_space), ("action", env.action_space)):
        recorded = getattr(described, f"{kind}_space")
        if recorded != space_description(space):
            raise UsageError(
                f"{agent}: {path.name} was exported for another {kind} space ({recorded}), the config's env has {space}"
            )
    exporter = loadable_format(described.format)
    try:
        run = exporter.load(path)
    except UsageError as exc:
        raise UsageError(f"{option}: {exc.message}") from None
    dtype = env.observation_space.dtype

    def act(obs: np.ndarray) -> np.ndarray:
        return run(np.asarray(obs, dtype=dtype))[0]

    return _Stateless(act), str(path)
