"""Trainers: what trains an agent, behind one interface (:class:`~atheria_cli.trainers.base.Trainer`).

``TRAINER_KINDS`` holds one entry per kind of trainer: ``"torch"``, a user's own training loop
(:mod:`atheria_cli.trainers.custom`, an agent with ``trainer:``), and ``"sb3"``: the
Stable-Baselines3 algorithms, whose adapter is :mod:`atheria_cli.trainers.sb3` and whose
implementation (step loops, state capture, algorithm registry) is :mod:`atheria_cli.agents`.
A new SB3 algorithm is a row of :mod:`atheria_cli.agents.names` and the registry, not a new kind.

Torch-free: the table names its callables as ``"module:function"`` strings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from atheria_cli.trainers.base import (
    Deployable,
    ExportSubject,
    RestoreReport,
    StepResult,
    Trainer,
    TrainerEvaluation,
    TrainerKind,
    ValueSink,
)

if TYPE_CHECKING:  # the config validates built-in trainer names with atheria_cli.trainers.builtin
    from atheria_cli.config import ExperimentConfig

SB3 = "sb3"
TORCH = "torch"

TRAINER_KINDS: dict[str, TrainerKind] = {
    SB3: TrainerKind(
        name=SB3,
        plan_check="atheria_cli.trainers.sb3:check_plan",
        build="atheria_cli.trainers.sb3:build_trainer",
        memory_estimate="atheria_cli.trainers.sb3:memory_estimate",
        versions="atheria_cli.trainers.sb3:library_versions",
        load="atheria_cli.trainers.sb3:load_model",
        deploy="atheria_cli.trainers.sb3.deploy:deployable",
        keeps_replay_buffer="atheria_cli.trainers.sb3.deploy:keeps_replay_buffer",
        no_replay_buffer="is on-policy and has no replay buffer",
        # SB3's state cannot follow a change of these (network shapes, buffer sizes, noise kind).
        fork_fixed_fields=(
            ("policy", "policy"),
            ("policy_kwargs", "hyperparams.policy_kwargs"),
            ("buffer_size", "hyperparams.buffer_size"),
            ("n_steps", "hyperparams.n_steps"),
            ("use_sde", "hyperparams.use_sde"),
        ),
        checkpoint_sections=("model", "loop", "buffer", "env"),
    ),
    # A user's own PyTorch training loop (agents.X.trainer: "package.module:Class"), docs/trainers.md,
    # and atheria's built-in ones ("atheria/qca", atheria_cli.trainers.builtin).
    TORCH: TrainerKind(
        name=TORCH,
        plan_check="atheria_cli.trainers.custom:check_plan",
        build="atheria_cli.trainers.custom:build_trainer",
        memory_estimate="atheria_cli.trainers.custom:memory_estimate",
        versions="atheria_cli.trainers.custom:library_versions",
        load="atheria_cli.trainers.custom:load_model",
        deploy="atheria_cli.trainers.custom_deploy:deployable",
        keeps_replay_buffer="atheria_cli.trainers.custom:keeps_replay_buffer",
        no_replay_buffer="is a trainer: its state_dict is its whole state, with no replay buffer of atheria's",
        fork_fixed_fields=(),
        checkpoint_sections=("state",),
        # evaluate() and export_module() are optional: an agent whose class lacks one is refused.
        refuses="atheria_cli.trainers.custom_deploy:refusal",
        foreign_checkpoint="atheria_cli.trainers.foreign:plan_foreign_checkpoint",
        snapshots=True,  # when the user's class defines snapshot() (its plan check says so)
    ),
}

# What a schema-1 checkpoint (written before trainer kinds existed) was trained by.
DEFAULT_KIND = SB3


def kind_of(config: ExperimentConfig, agent: str) -> TrainerKind:
    """The trainer kind that trains ``agent``: ``torch`` for an agent with a ``trainer``, else SB3's."""
    return TRAINER_KINDS[TORCH if config.agents[agent].trainer is not None else SB3]


def kind_named(name: str) -> TrainerKind:
    """The kind a checkpoint header names."""
    return TRAINER_KINDS[name]


__all__ = [
    "DEFAULT_KIND",
    "TRAINER_KINDS",
    "Deployable",
    "ExportSubject",
    "RestoreReport",
    "StepResult",
    "Trainer",
    "TrainerEvaluation",
    "TrainerKind",
    "ValueSink",
    "kind_named",
    "kind_of",
]
