"""The Stable-Baselines3 trainer: one SB3 model and its step loop behind :class:`Trainer`.

The implementation lives in :mod:`atheria_cli.agents` (the algorithm registry, the step loops
per algorithm family, state capture and restore); this package adapts it to the seam. With
that one and :mod:`atheria_cli.envs` (the envs are SB3 VecEnvs), it is the only place that
imports SB3 at module level (a test asserts it for ``training/``, ``deploy/`` and ``tracking/``).
Besides the adapter it holds what only an SB3 model can do: :mod:`.evaluation` (``train.eval``
on an SB3 model), :mod:`.deploy` (an SB3 checkpoint's policy for export and ``atheria eval``)
and :mod:`.adopt` (``train --from-sb3``: an SB3 zip's weights as a new run's start).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.logger import KVWriter
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from atheria_cli.agents.checkpoint import capture_training_state, restore_training_state
from atheria_cli.agents.loops import OffPolicyLoop, TrainingLoop, loop_class, make_loop
from atheria_cli.agents.names import installed_extra_versions
from atheria_cli.agents.registry import algorithm_class, build_model, resolved_hyperparams, validate_hyperparams
from atheria_cli.agents.replay import ReplayJournal, SegmentReader
from atheria_cli.config import EnvConfig, EvalConfig, ExperimentConfig
from atheria_cli.envs.factory import make_vec_env
from atheria_cli.errors import ConfigError
from atheria_cli.run.formats import EvaluationRecord
from atheria_cli.trainers.base import RestoreReport, StepResult, Trainer, ValueSink
from atheria_cli.training.memory import BufferEstimate, buffer_estimate

KIND = "sb3"


class SB3Trainer:
    """An SB3 model trained one vectorized step at a time by its family's loop."""

    kind = KIND

    def __init__(self, config: ExperimentConfig, agent: str, loop: TrainingLoop, env: VecEnv) -> None:
        self.config, self.agent, self.loop, self.env = config, agent, loop, env

    @property
    def model(self) -> BaseAlgorithm:
        """The SB3 model (for SB3-only code: adoption checks, tests); the session never reads it."""
        return self.loop.model

    @property
    def timesteps(self) -> int:
        return int(self.loop.model.num_timesteps)

    @property
    def parallel_episodes(self) -> int:
        return int(self.loop.model.n_envs)

    def start_fresh(self) -> None:
        self.loop.start_fresh()

    def step(self) -> StepResult:
        return self.loop.step()

    def replay_journal(self) -> ReplayJournal | None:
        return self.loop.journal if isinstance(self.loop, OffPolicyLoop) else None

    def capture_state(self) -> dict[str, Any]:
        return capture_training_state(self.loop)

    def restore_state(self, payload: dict[str, Any], read_segment: SegmentReader) -> RestoreReport:
        report = restore_training_state(self.loop, payload, read_segment)
        return RestoreReport(restarted=list(report.restarted), not_reproducible=list(report.not_reproducible))

    def state_warnings(self) -> list[str]:
        return []  # atheria captures an SB3 model's state itself

    def snapshot(self) -> None:
        return None  # an SB3 agent has no simulation state of its own (planning refuses train.snapshots)

    def describe(self) -> dict[str, Any]:
        config, agent, model = self.config, self.agent, self.loop.model
        action_space = model.action_space
        action_dim = int(np.prod(action_space.shape)) if action_space.shape else None
        given = validate_hyperparams(agent, config.algo_of(agent), config.agents[agent].hyperparams, action_dim)
        return {"hyperparams": resolved_hyperparams(model, given)}

    def adopt(self, source: Any) -> None:
        """The zip's weights and counters over the fresh model; its replay buffer when trusted."""
        from atheria_cli.trainers.sb3.adopt import load_into

        load_into(self.agent, self.loop.model, source.archive)
        if source.replay is not None:
            journal = self.replay_journal()
            assert journal is not None  # planning refuses a replay buffer for on-policy agents
            journal.import_rows(source.replay)

    def evaluation(self, eval_config: EvalConfig) -> SB3Evaluation:
        return SB3Evaluation(self.loop.model, self.config.env_of(self.agent), eval_config)

    def add_value_sink(self, sink: ValueSink) -> None:
        self.loop.model.logger.output_formats.append(_SinkWriter(sink))

    def flush_values(self, step: int) -> None:
        self.loop.model.logger.dump(step=step)

    def close(self) -> None:
        self.env.close()


class SB3Evaluation:
    """:class:`~atheria_cli.trainers.sb3.evaluation.Evaluator` bound to one SB3 model."""

    def __init__(self, model: BaseAlgorithm, env_config: EnvConfig, eval_config: EvalConfig) -> None:
        from atheria_cli.trainers.sb3.evaluation import Evaluator

        self.model, self.evaluator = model, Evaluator(env_config, eval_config)

    def evaluate(self, episode: int) -> EvaluationRecord:
        return self.evaluator.evaluate(self.model, episode)

    def close(self) -> None:
        self.evaluator.close()


class _SinkWriter(KVWriter):
    """A :class:`ValueSink` as an output of SB3's logger; keys excluded for the sink's name
    (SB3's ``exclude="tensorboard"``) stay away from it."""

    def __init__(self, sink: ValueSink) -> None:
        self.sink = sink

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0) -> None:
        shown = {key: value for key, value in sorted(key_values.items()) if self.sink.name not in (key_excluded.get(key) or ())}
        self.sink.write(int(step), shown)

    def close(self) -> None:
        pass  # the session closes its sinks


def build_trainer(config: ExperimentConfig, agent: str, device: str) -> SB3Trainer:
    """The agent's model on a new env (seeded by the config) and its family's loop."""
    env = make_vec_env(config.env_of(agent), gamma=config.gamma_of(agent))
    try:
        model = build_model(config, agent, env, device, config.seed_of(agent))
        loop = make_loop(model, config.schedule_timesteps_of(agent))
    except BaseException:
        env.close()
        raise
    return SB3Trainer(config, agent, loop, env)


def check_plan(config: ExperimentConfig, agent: str, env: VecEnv, device: str) -> None:
    """The constructor's checks of the agent's settings against ``env``, without building
    networks, and the loop family the algorithm must fit."""
    model = build_model(config, agent, env, device, seed=None, setup=False)
    try:
        loop_class(model)
    except TypeError:
        raise ConfigError(
            f"agents.{agent}: {config.algo_of(agent)} fits neither of atheria's SB3 step loops (on-policy, off-policy)"
        ) from None
    settings = config.env_of(agent)
    if settings.frame_stack is not None and settings.normalize and isinstance(model, OffPolicyAlgorithm):
        # SB3's off-policy algorithms store VecNormalize's unstacked original observations.
        raise ConfigError(
            f"agents.{agent}: {config.algo_of(agent)} cannot combine frame_stack with normalize "
            "(SB3 stores unstacked observations)"
        )


def memory_estimate(config: ExperimentConfig, agent: str, spaces: Callable[[], tuple[Any, Any]]) -> BufferEstimate | None:
    """The agent's replay buffer; None for an on-policy algorithm (no ``buffer_size``), which
    never asks for the env's spaces."""
    default_size = default_buffer_size(config.algo_of(agent))
    if default_size is None:
        return None
    return buffer_estimate(config, agent, *spaces(), default_size)


def default_buffer_size(algo: str) -> int | None:
    parameter = inspect.signature(algorithm_class(algo)).parameters.get("buffer_size")
    return None if parameter is None else int(parameter.default)


def library_versions() -> dict[str, str]:
    import gymnasium
    import stable_baselines3

    return {"gymnasium": gymnasium.__version__, "stable_baselines3": stable_baselines3.__version__, **installed_extra_versions()}


def load_model(payload: dict[str, Any], path: Path, device: str) -> BaseAlgorithm:
    """The checkpoint's model, rebuilt from its run config, with its replay buffer (from the
    segments beside the checkpoint) and its frozen VecNormalize statistics."""
    import json

    from atheria_cli.agents.state import restore_model
    from atheria_cli.envs.state import load_normalizer_statistics
    from atheria_cli.run.layout import AgentLayout
    from atheria_cli.run.store import AgentStore
    from atheria_cli.training.devices import resolve_device

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


if TYPE_CHECKING:  # mypy checks here that SB3Trainer meets the Trainer protocol

    def _meets_the_protocol(trainer: SB3Trainer) -> Trainer:
        return trainer
