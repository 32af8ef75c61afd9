"""The ``torch`` trainer kind: a user's own PyTorch training loop behind :class:`Trainer`.

The user's class (``agents.X.trainer: "package.module:Class"``, docs/trainers.md) owns one
episode of training and the state that decides its future; atheria owns the loop, the episode
counter and every file. Its side of the contract::

    class MyTrainer:
        def __init__(self, context, **kwargs): ...   # context.device, context.seed, context.agent
        def train_episode(self, episode: int) -> dict[str, float]: ...  # one episode; its metrics
        def state_dict(self) -> dict: ...             # everything that decides the future
        def load_state_dict(self, state: dict) -> None: ...
        # optional: evaluate(episodes, seed) -> metrics and export_module() -> (module,
        # example_inputs) (atheria_cli.trainers.custom_deploy); snapshot() -> {name: tensor}
        # (train.snapshots); load_foreign_checkpoint(checkpoint) -> loaded names
        # (--from-checkpoint FILE.pth, atheria_cli.trainers.foreign)

One :meth:`TorchTrainer.step` is one ``train_episode``; ``timesteps`` counts episodes trained (a
``steps`` value the episode returns is its record's ``length``). The global generators (Python,
NumPy, torch) are seeded from the agent's seed before ``__init__``; capturing the state draws no
random number, and at the first commit :meth:`TorchTrainer.state_warnings` checks that the state
survives a round trip through a fresh instance and loads weights-only.
"""

from __future__ import annotations

import inspect
import io
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from atheria_cli.agents.rng import capture_global_rng, restore_global_rng
from atheria_cli.config import EvalConfig, ExperimentConfig, MetricSpec
from atheria_cli.errors import ConfigError, MetricError, TrainerFailedError, not_accepted
from atheria_cli.trainers.base import RestoreReport, StepResult, ValueSink
from atheria_cli.trainers.builtin import builtin_class_path, is_builtin
from atheria_cli.training.exactness import first_difference

if TYPE_CHECKING:
    from atheria_cli.trainers.base import Trainer, TrainerEvaluation

KIND = "torch"
REQUIRED_METHODS = ("train_episode", "state_dict", "load_state_dict")
SECTION = "state"  # the checkpoint's section holding the user's state_dict() (the header's "trainer" names the kind)
STEPS = "steps"  # a value train_episode may return: the episode's length in the record
REWARD = "reward"  # a value train_episode may return: the episode's reward in the record


@dataclass(frozen=True)
class TrainerContext:
    """What atheria tells a user's trainer when it builds it.

    :param device: the resolved device (``cpu``, ``cuda``, ``cuda:N``, ``mps``)
    :param seed: the agent's seed; atheria has seeded Python, NumPy and torch with it already
    :param agent: the agent's name in the config
    """

    device: str
    seed: int
    agent: str


class UserTrainer(Protocol):
    """The user's class, as atheria calls it (docs/trainers.md)."""

    def train_episode(self, episode: int) -> Mapping[str, Any]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def trainer_class(config: ExperimentConfig, agent: str) -> type:
    """The agent's trainer class, imported when ``train.allow_import`` allows it (a built-in
    ``atheria/<name>`` always: atheria's own code), with the methods a trainer needs; raises
    :class:`ConfigError` naming ``agents.X.trainer``."""
    path = config.agents[agent].trainer
    where = f"agents.{agent}.trainer"
    assert path is not None  # kind_of chose this kind for an agent with a trainer
    if is_builtin(path):
        class_path = builtin_class_path(path)  # the config accepted only a known name
    elif config.train.allow_import:
        class_path = path
    else:
        raise ConfigError(f"{where}: importing {path!r} runs its code; allow it with train.allow_import: true or --allow-import")
    module_name, _, attribute = class_path.partition(":")
    try:
        module = __import__(module_name, fromlist=[attribute])
    except Exception as exc:  # the user's module may fail in any way while it is imported
        raise ConfigError(f"{where}: cannot import module {module_name!r} of {path!r}: {exc}") from None
    found = getattr(module, attribute, None)
    if not isinstance(found, type):
        raise ConfigError(f"{where}: module {module_name!r} has no class {attribute!r}")
    missing = [name for name in REQUIRED_METHODS if not callable(getattr(found, name, None))]
    if missing:
        raise ConfigError(f"{where}: {path} has no {missing[0]}() (a trainer needs {', '.join(REQUIRED_METHODS)})")
    return found


def check_kwargs(agent: str, path: str, cls: type, kwargs: Mapping[str, Any]) -> None:
    """``kwargs`` against ``cls.__init__(self, context, ...)``: no unknown name, none missing."""
    parameters = list(inspect.signature(cls).parameters.values())[1:]  # after context
    where = f"agents.{agent}.kwargs"
    named = [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if not any(p.kind is p.VAR_KEYWORD for p in parameters):
        for key in kwargs:
            if key not in named:
                raise not_accepted(where, path, key, named)
    required = [p.name for p in parameters if p.name in named and p.default is p.empty and p.name not in kwargs]
    if required:
        raise ConfigError(f"{where}: {path} needs {required[0]!r}")


def check_plan(config: ExperimentConfig, agent: str, env: Any, device: str) -> None:
    """Import the trainer (allowed, with its methods, snapshot() too under train.snapshots) and check its kwargs; builds nothing."""
    del env, device  # a trainer has no env; its device is its own business until it is built
    cls = trainer_class(config, agent)
    check_kwargs(agent, str(config.agents[agent].trainer), cls, config.agents[agent].kwargs or {})
    if config.train.snapshots is not None and not callable(getattr(cls, "snapshot", None)):
        raise ConfigError(
            f"train.snapshots: agents.{agent}: {config.agents[agent].trainer} has no snapshot() "
            "(it returns the tensors to persist, docs/trainers.md); define it or remove train.snapshots"
        )


def seed_globals(seed: int) -> None:
    """Seed the generators a trainer draws from unless it keeps its own: Python, NumPy, torch (CUDA too)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class TorchTrainer:
    """A user's trainer class, one ``train_episode`` per step (see the module docstring)."""

    kind = KIND

    def __init__(self, config: ExperimentConfig, agent: str, cls: type, device: str) -> None:
        self.path, self.agent, self.config = str(config.agents[agent].trainer), agent, config
        self.cls, self.kwargs = cls, dict(config.agents[agent].kwargs or {})
        self.metrics: tuple[MetricSpec, ...] = config.metrics_of(agent)
        self.context = TrainerContext(device=device, seed=config.seed_of(agent), agent=agent)
        self.user = self._new_user()
        self.episodes = 0

    def _new_user(self) -> UserTrainer:
        seed_globals(self.context.seed)
        user: UserTrainer = self.cls(self.context, **self.kwargs)
        return user

    @property
    def timesteps(self) -> int:
        """Episodes trained: a trainer's clock is its episode count."""
        return self.episodes

    @property
    def parallel_episodes(self) -> int:
        return 1

    def start_fresh(self) -> None:
        pass  # __init__ built the fresh state

    def step(self) -> StepResult:
        """One ``train_episode``: one finished episode whose info carries its metrics."""
        episode = self.episodes + 1
        try:
            values = self.user.train_episode(episode)
        except Exception as exc:  # the user's code: a run failure (exit 1), what was committed is intact
            raise TrainerFailedError(
                f"agents.{self.agent}: train_episode failed in episode {episode}: {type(exc).__name__}: {_first_line(exc)}; "
                "the committed checkpoints are intact (--resume continues from the last)"
            ) from exc
        self.episodes = episode
        return StepResult(dones=np.array([True]), infos=[self._episode_info(episode, values)])

    def _episode_info(self, episode: int, values: Any) -> dict[str, Any]:
        """The info :func:`~atheria_cli.training.episodes.episode_record` reads: each metric, and
        ``episode`` with the main metric as reward (negated when its goal is min) and ``steps``
        (else 1) as length."""
        if not isinstance(values, Mapping):
            raise MetricError(f"agents.{self.agent}: train_episode must return a dict of metrics, got {type(values).__name__}")
        missing = [metric.name for metric in self.metrics if metric.name not in values]
        if missing:
            returned = ", ".join(sorted(map(str, values))) or "nothing"
            raise MetricError(
                f"agents.{self.agent}.metrics: {missing[0]!r} is not among the values train_episode returned "
                f"in episode {episode} ({returned}); fix agents.{self.agent}.metrics or the trainer"
            )
        info = {metric.name: _plain(values[metric.name]) for metric in self.metrics}
        info["episode"] = {"r": self._reward(info, values), "l": int(_plain(values.get(STEPS, 1)))}
        return info

    def _reward(self, info: Mapping[str, Any], values: Mapping[str, Any]) -> Any:
        """The episode's ``reward`` when it returns one (a trainer that acts in an env, beside SB3
        agents), else its main metric made "higher is better" as rewards are everywhere (compare,
        retention, trackers): as it is when its goal is max, negated when it is min (a loss of 0.2
        is -0.2)."""
        if REWARD in values:
            reward = _plain(values[REWARD])
            if isinstance(reward, bool) or not isinstance(reward, (int, float)):
                raise MetricError(f"agents.{self.agent}: train_episode returned reward {reward!r}; a reward is a number")
            return reward
        main, goal = info[self.metrics[0].name], self.metrics[0].goal
        return (-main if goal == "min" else main) if isinstance(main, (int, float)) else None

    def replay_journal(self) -> None:
        return None

    def capture_state(self) -> dict[str, Any]:
        """The user's ``state_dict()`` cloned to the CPU; the global generators as they were."""
        return {SECTION: cpu_copy(self._user_state(self.user))}

    @staticmethod
    def _user_state(user: UserTrainer) -> dict[str, Any]:
        rng = capture_global_rng()
        try:
            return user.state_dict()
        finally:
            restore_global_rng(rng)  # capturing must not change what training draws next

    def restore_state(self, payload: dict[str, Any], read_segment: Any) -> RestoreReport:
        del read_segment  # no replay segments
        self.user.load_state_dict(payload[SECTION])
        self.episodes = int(payload["num_timesteps"])
        return RestoreReport()

    def snapshot(self) -> dict[str, Any] | None:
        """The user's ``snapshot()`` copied to the CPU, or None when the class defines none;
        the global generators as they were (taking a snapshot must not change training)."""
        take = getattr(self.user, "snapshot", None)
        if not callable(take):
            return None
        rng = capture_global_rng()
        try:
            taken: dict[str, Any] | None = cpu_copy(take())
        except Exception as exc:  # the user's code, as in train_episode: a run failure
            raise TrainerFailedError(
                f"agents.{self.agent}: snapshot() failed after episode {self.episodes}: {type(exc).__name__}: {_first_line(exc)}; "
                "the committed checkpoints are intact (--resume continues from the last)"
            ) from exc
        finally:
            restore_global_rng(rng)
        return taken

    def state_warnings(self) -> list[str]:
        """The first commit's checks: the state survives ``state_dict`` -> fresh instance ->
        ``load_state_dict`` -> ``state_dict`` bit for bit, the trainer's own tensors and
        generators come back with it, and the state loads with ``weights_only=True``."""
        rng = capture_global_rng()
        try:
            state = cpu_copy(self._user_state(self.user))
            fresh = self._new_user()
            fresh.load_state_dict(cpu_copy(state))
            again = cpu_copy(self._user_state(fresh))
            problems = _round_trip_problems(state, again, self.user, fresh)
        finally:
            restore_global_rng(rng)  # building the fresh instance seeded the generators
        loads = _weights_only_problem(state)
        return [*problems, *([loads] if loads else [])]

    def describe(self) -> dict[str, Any]:
        """metadata.json: ``algo`` "torch", the class path as ``policy`` and ``trainer``, the kwargs as ``hyperparams``."""
        return {"algo": KIND, "policy": self.path, "trainer": self.path, "hyperparams": self.kwargs}

    def adopt(self, source: Any) -> None:
        """Another program's checkpoint (``--from-checkpoint FILE.pth``) loaded into the fresh
        trainer; episodes go on from the file's."""
        from atheria_cli.trainers.foreign import ForeignCheckpoint, load_into

        if not isinstance(source, ForeignCheckpoint):
            raise ConfigError(f"agents.{self.agent}: a trainer cannot start from an SB3 zip")
        load_into(self.config, self.agent, self.user, source.checkpoint, source.label)
        self.episodes = source.episode

    def evaluation(self, eval_config: EvalConfig) -> TrainerEvaluation:
        """The user's ``evaluate`` (planning refused a class without one)."""
        from atheria_cli.trainers.custom_deploy import TorchEvaluation

        return TorchEvaluation(self, eval_config)

    def add_value_sink(self, sink: ValueSink) -> None:
        pass  # the episode's metrics reach the trackers through its record

    def flush_values(self, step: int) -> None:
        pass

    def close(self) -> None:
        pass


def cpu_copy(value: Any) -> Any:
    """``value`` with every tensor detached and copied to the CPU (a committed state must not
    alias a tensor that training updates in place); containers rebuilt, plain values as they are."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, Mapping):
        return {key: cpu_copy(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(cpu_copy(item) for item in value) if type(value) in (list, tuple) else value
    return value


def _round_trip_problems(state: Any, again: Any, user: Any, fresh: Any) -> list[str]:
    problems = []
    found = first_difference(state, again)
    if found is not None:
        problems.append(f"state_dict() -> load_state_dict() into a fresh instance -> state_dict() changes {found}")
    for name, value in vars(user).items():  # the trainer's own tensors, modules and generators
        if _attribute_differs(value, vars(fresh).get(name)):
            problems.append(f"the trainer's {name} differs after a round trip through a fresh instance: is it in state_dict?")
    return problems


def _attribute_differs(value: Any, fresh: Any) -> bool:
    if isinstance(value, torch.Generator):
        return not isinstance(fresh, torch.Generator) or not torch.equal(value.get_state(), fresh.get_state())
    if isinstance(value, (torch.Tensor, torch.nn.Module)):
        mine = value.state_dict() if isinstance(value, torch.nn.Module) else value
        theirs = fresh.state_dict() if isinstance(fresh, torch.nn.Module) else fresh
        return first_difference(cpu_copy(mine), cpu_copy(theirs)) is not None
    return False


def _weights_only_problem(state: Any) -> str | None:
    buffer = io.BytesIO()
    try:
        torch.save(state, buffer)
        buffer.seek(0)
        torch.load(buffer, weights_only=True)
    except Exception as exc:  # pickle's and torch's errors alike: the state is no plain data
        return f"the state does not load with torch.load(weights_only=True): {_first_line(exc)}"
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _plain(value: Any) -> Any:
    """A one-element tensor or array as its Python number; anything else as it is."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, np.generic):
        return value.item()
    return value


def build_trainer(config: ExperimentConfig, agent: str, device: str) -> TorchTrainer:
    return TorchTrainer(config, agent, trainer_class(config, agent), device)


def memory_estimate(config: ExperimentConfig, agent: str, spaces: Callable[[], tuple[Any, Any]]) -> None:
    del config, agent, spaces  # no replay buffer atheria knows of
    return None


def library_versions() -> dict[str, str]:
    return {}  # torch is recorded for every run


def load_model(payload: dict[str, Any], path: Path, device: str) -> Any:
    """The checkpoint's trainer: the user's class built from the run config, its state loaded."""
    import json

    from atheria_cli.training.devices import resolve_device

    config = ExperimentConfig.model_validate(json.loads(payload["run_config"]))
    trainer = build_trainer(config, payload["agent"], resolve_device(device))
    trainer.restore_state(payload, None)
    return trainer.user


def keeps_replay_buffer(config: ExperimentConfig, agent: str) -> bool:
    return False


if TYPE_CHECKING:  # mypy checks here that TorchTrainer meets the Trainer protocol

    def _meets_the_protocol(trainer: TorchTrainer) -> Trainer:
        return trainer
