"""The seam between atheria's session and a trainer: what one agent's training must offer.

atheria owns the loop around a trainer (episodes, commits, retention, mirror, budget, signals,
trackers); the trainer owns one step of training and the state that decides its future, in the
manner of TorchTNT's ``TrainUnit`` + ``Stateful``. The session calls only what :class:`Trainer`
declares; when it needs something more, this protocol grows a method.

Torch-free and SB3-free: planning, fork and the kind table import it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

    from atheria_cli.agents.replay import ReplayJournal, SegmentReader
    from atheria_cli.config import EvalConfig, ExperimentConfig
    from atheria_cli.deploy.episodes import CheckpointEvaluation
    from atheria_cli.deploy.formats import ModuleExport
    from atheria_cli.run.formats import EvaluationRecord
    from atheria_cli.trainers.foreign import ForeignCheckpoint
    from atheria_cli.trainers.sb3.adopt import AdoptSource
    from atheria_cli.training.memory import BufferEstimate


# What a trained agent is put to besides training (``TrainerKind.refuses``).
Use = Literal["export", "evaluate"]


@dataclass
class StepResult:
    """What one vectorized environment step returned.

    :param dones: one flag per parallel episode, True where that episode ended at this step
    :param infos: one info dict per parallel episode (``episode`` / metric values at an end)
    """

    dones: np.ndarray
    infos: list[dict[str, Any]]


@dataclass
class RestoreReport:
    """What restoring a checkpoint did to the parallel episodes.

    :param restarted: episodes that were mid-way at the checkpoint and start anew instead
    :param not_reproducible: episodes whose replayed reset gave another observation
    :param generators_not_restored: why some of the checkpoint's global generators were not
        restored (atheria's own note, e.g. a GPU run continued without CUDA), or None
    """

    restarted: list[int] = field(default_factory=list)
    not_reproducible: list[int] = field(default_factory=list)
    generators_not_restored: str | None = None


class ValueSink(Protocol):
    """Where a trainer's own training values go (a tracker's buffer until the next commit).

    :param name: the sink's name; a trainer may keep a value away from one sink by its name
        (SB3's ``exclude="tensorboard"``)
    """

    name: str

    def write(self, step: int, values: Mapping[str, Any]) -> None:
        """Values dumped at ``step`` (the trainer's timesteps)."""

    def close(self) -> None:
        """No more values: flush and release files."""


class TrainerEvaluation(Protocol):
    """Evaluations of one trainer's current state (``train.eval``: an SB3 policy's episodes on an
    env of its own, a user's trainer's ``evaluate``); lives as long as the session and must leave
    the training state untouched (the global generators included)."""

    def evaluate(self, episode: int) -> EvaluationRecord:
        """Run the configured evaluation of the trainer's current state.

        :param episode: the training episode just ended, which the record is filed under
        """

    def close(self) -> None: ...


class Trainer(Protocol):
    """One agent's training, driven one vectorized step at a time by atheria's session.

    A checkpoint must capture everything that decides the future of training at a step
    boundary: after ``restore_state(capture_state())`` the trainer continues bit for bit as it
    would have without the round trip.
    """

    kind: str  # the key of its entry in :data:`atheria_cli.trainers.TRAINER_KINDS`

    @property
    def timesteps(self) -> int:
        """Environment steps taken so far, summed over the parallel episodes: the run's clock
        (checkpoint names, tracker steps, ``--until-timesteps``)."""

    @property
    def parallel_episodes(self) -> int:
        """How many episodes run side by side (the vectorized env's width); every
        :class:`StepResult` holds that many flags."""

    def start_fresh(self) -> None:
        """First reset of a new run (nothing restored)."""

    def step(self) -> StepResult:
        """One step of every parallel episode, training when the trainer's schedule says so."""

    def replay_journal(self) -> ReplayJournal | None:
        """The trainer's replay buffer journal, whose new rows each commit writes as a segment
        beside the checkpoint; None for a trainer without a replay buffer."""

    def capture_state(self) -> dict[str, Any]:
        """The trainer's sections of the checkpoint body (its kind's ``checkpoint_sections``):
        plain tensors, numbers, strings and containers only (loaded with ``weights_only=True``).
        atheria adds the global RNG states after this call."""

    def restore_state(self, payload: dict[str, Any], read_segment: SegmentReader) -> RestoreReport:
        """Load a checkpoint written by :meth:`capture_state` (and its replay segments); atheria
        restores the global RNG states after this call.

        :param payload: the whole checkpoint (header and body)
        :param read_segment: reads one replay segment of the checkpoint's run by its entry
        :raises RuntimeError, ValueError, TypeError, KeyError, IndexError: the checkpoint does
            not fit this trainer's config (the session reports a config drift)
        """

    def state_warnings(self) -> list[str]:
        """Checks of the trainer's declared state, run once at a session's first commit (a user's
        trainer: its state's round trip through a fresh instance, and weights-only loading);
        the session warns with each line. Must draw no random number."""

    def snapshot(self) -> dict[str, Any] | None:
        """What ``train.snapshots`` persists after a due episode: named tensors (and plain values)
        on the CPU, copies that training on cannot change (a simulation's ``psi`` and its step);
        None for a trainer that takes none. Must draw no random number."""

    def describe(self) -> dict[str, Any]:
        """The fields this trainer contributes to ``metadata.json`` (e.g. its resolved
        hyperparameters)."""

    def adopt(self, source: AdoptSource | ForeignCheckpoint) -> None:
        """Start a fresh run from another library's saved model (``--from-sb3``, or a trainer's
        ``--from-checkpoint FILE`` of another program: its kind's ``foreign_checkpoint``)."""

    def evaluation(self, eval_config: EvalConfig) -> TrainerEvaluation:
        """An evaluation runner for this trainer (planning asked its kind's ``refuses`` first)."""

    def add_value_sink(self, sink: ValueSink) -> None:
        """Send the trainer's training values to ``sink`` from now on."""

    def flush_values(self, step: int) -> None:
        """Dump the training values pending since the last dump to the sinks at ``step``."""

    def close(self) -> None:
        """Release the trainer's envs and files."""


@dataclass
class ExportSubject:
    """What ``atheria export`` captures of a checkpoint, and what the capture must reproduce.

    :param capture: the module with its example inputs, as the formats capture it
    :param samples: the input sets the export is verified on (numpy arrays, one per input)
    :param expected: what the capture must return for each input set (a policy's own
        deterministic actions, a trainer module's eager outputs)
    :param exact: outputs are compared for equality (discrete actions), else within the tolerance
    :param sample_count: how many samples the verification reports (a policy's observations in
        its one batch; a module's input sets)
    :param sample_noun: what they are, in messages ("observations", "sampled inputs")
    :param reference: what the export is compared with, in messages ("model.predict")
    :param what: what is exported, in messages ("policy", "module")
    :param description: the sidecar's fields for what goes in and out (spaces, ``input``,
        ``inputs``, ``outputs``, ...; docs/file-layout.md)
    """

    capture: ModuleExport
    samples: list[tuple[np.ndarray, ...]]
    expected: list[tuple[np.ndarray, ...]]
    exact: bool
    sample_count: int
    sample_noun: str
    reference: str
    what: str
    description: dict[str, Any]


class Deployable(Protocol):
    """A checkpoint's trained agent as ``atheria export`` and ``atheria eval`` use it: an SB3
    policy (raw observations in, environment actions out), or a user's trainer with its
    ``export_module`` and ``evaluate``.

    :param algo: the algorithm's name (``torch`` for a user's trainer), recorded in an export's sidecar
    """

    algo: str

    def check_export(self, config: ExperimentConfig, agent: str, source: str, format_name: str) -> None:
        """Refuse (:class:`~atheria_cli.errors.UsageError`) an export to ``format_name`` that this
        checkpoint cannot make for the config's ``agent`` (its algorithm's reason, an env whose
        spaces differ, a format of another library), before anything is exported."""

    def export_subject(self, seed: int) -> ExportSubject:
        """What the module formats (torchscript, exported, aoti, onnx) capture and how the capture
        is checked; ``seed`` fixes the sampled inputs."""

    def write_model_format(self, format_name: str, path: Path, *, with_replay: bool) -> dict[str, Path]:
        """Write a format of the trainer's own library (``sb3``: SB3's zip) to ``path``, with its
        extra files beside it; returns them by role."""

    def model_format_policy(self, format_name: str, path: Path) -> Callable[[np.ndarray], np.ndarray]:
        """A model format written by :meth:`write_model_format`, loaded back to act."""

    def evaluate(self, config: ExperimentConfig, agent: str, source: str, episodes: int, seed: int) -> CheckpointEvaluation:
        """``atheria eval`` of the checkpoint ``source``: ``episodes`` deterministic episodes of an
        SB3 policy from seeds ``seed``, ``seed + 1``, ... on the config's env, or a user's
        trainer's ``evaluate(episodes, seed)``."""


@dataclass(frozen=True)
class TrainerKind:
    """What one kind of trainer contributes, in one place (an entry of ``TRAINER_KINDS``).

    Callables are ``"module:function"`` strings resolved on use (hatch's lazy command table),
    so the table imports neither torch nor the trainer's library.

    :param name: the kind's key, written in checkpoint headers (``trainer``)
    :param plan_check: ``(config, agent, env, device) -> None``: the cheap planning check of one
        agent's settings against its env; raises :class:`~atheria_cli.errors.ConfigError`, writes nothing
    :param build: ``(config, agent, device) -> Trainer``: the agent's trainer on a new env
    :param memory_estimate: ``(config, agent, spaces) -> BufferEstimate | None``: the memory the
        agent's trainer holds (its replay buffer); ``spaces()`` builds a throwaway env for its
        (observation, action) spaces, only when the estimate needs them
    :param versions: ``() -> {library: version}`` of the libraries the kind trains with (metadata, checkpoints)
    :param load: ``(payload, path, device) -> model``: a checkpoint as a ready model (``load_agent``)
    :param deploy: ``(payload, path) -> Deployable``: a checkpoint's agent for ``atheria export``
        and ``atheria eval`` (after ``refuses`` said it can be put to that use)
    :param keeps_replay_buffer: ``(config, agent) -> bool``: whether the agent's trainer keeps a
        replay buffer (``export --with-replay``)
    :param fork_fixed_fields: (label, path under ``agents.X``) of the settings a fork may not change
    :param checkpoint_sections: the top-level keys of a checkpoint that hold the trainer's own
        state (:meth:`Trainer.capture_state`); atheria adds ``rng``
    :param refuses: ``(config, agent, use) -> str | None``: why the agent's trainer cannot be put
        to ``use`` (``"evaluate"``: ``train.eval`` and ``atheria eval``; ``"export"``: ``atheria
        export``), or None when it can; answered without building the trainer (a user's trainer:
        its class lacks the method). Planning and the commands refuse with it before writing anything.
    :param foreign_checkpoint: ``(config, path, agent, *, fresh, notices) -> source``: plans a new run
        of ``agent`` from another program's checkpoint file (``train --from-checkpoint FILE`` where
        FILE is not in an atheria run), the source :meth:`Trainer.adopt` takes; None: the kind
        cannot (the file must be an atheria checkpoint, a fork)
    :param no_replay_buffer: why ``export --with-replay`` finds no replay buffer to write, in the
        kind's words (after the agent's name)
    :param snapshots: whether its trainers can take ``train.snapshots`` (a kind whose trainers
        may or may not, as a user's class, checks the class in its ``plan_check``); planning
        refuses the agent otherwise, before writing anything
    """

    name: str
    plan_check: str
    build: str
    memory_estimate: str
    versions: str
    load: str
    deploy: str
    keeps_replay_buffer: str
    fork_fixed_fields: tuple[tuple[str, str], ...]
    checkpoint_sections: tuple[str, ...]
    refuses: str = "atheria_cli.trainers.base:never_refused"
    foreign_checkpoint: str | None = None
    snapshots: bool = False
    no_replay_buffer: str = "has no replay buffer"

    def check_plan(self, config: ExperimentConfig, agent: str, env: Any, device: str) -> None:
        resolve(self.plan_check)(config, agent, env, device)

    def build_trainer(self, config: ExperimentConfig, agent: str, device: str) -> Trainer:
        trainer: Trainer = resolve(self.build)(config, agent, device)
        return trainer

    def estimate_memory(
        self, config: ExperimentConfig, agent: str, spaces: Callable[[], tuple[Any, Any]]
    ) -> BufferEstimate | None:
        estimate: BufferEstimate | None = resolve(self.memory_estimate)(config, agent, spaces)
        return estimate

    def library_versions(self) -> dict[str, str]:
        found: dict[str, str] = resolve(self.versions)()
        return found

    def load_model(self, payload: dict[str, Any], path: Any, device: str) -> Any:
        return resolve(self.load)(payload, path, device)

    def load_deployable(self, payload: dict[str, Any], path: Path) -> Deployable:
        deployable: Deployable = resolve(self.deploy)(payload, path)
        return deployable

    def has_replay_buffer(self, config: ExperimentConfig, agent: str) -> bool:
        return bool(resolve(self.keeps_replay_buffer)(config, agent))

    def refusal(self, use: Use, config: ExperimentConfig, agent: str) -> str | None:
        """Why ``agent``'s trainer cannot be put to ``use``, or None when it can."""
        reason: str | None = resolve(self.refuses)(config, agent, use)
        return reason


def never_refused(config: ExperimentConfig, agent: str, use: Use) -> None:
    """``refuses`` of a kind whose every trainer can be evaluated and exported."""
    del config, agent, use


def resolve(reference: str) -> Callable[..., Any]:
    import importlib

    module, _, attribute = reference.partition(":")
    function: Callable[..., Any] = getattr(importlib.import_module(module), attribute)
    return function
