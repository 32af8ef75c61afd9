"""Plan a training session: check everything against the config and the disk, write nothing.

Every problem a user can fix (bad config, unknown agent, missing GPU, a run that would be
overwritten, a config that drifted from the run's) is found here, before any agent trains.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from atheria_cli.config import DRIFT_KEYS, ExperimentConfig, config_to_dict, config_value, training_setting
from atheria_cli.errors import ConfigDriftError, ConfigError, RunExistsError, UsageError
from atheria_cli.extras import check_extras
from atheria_cli.run.formats import CheckpointEntry
from atheria_cli.run.layout import AgentLayout
from atheria_cli.run.mirror import Mirror
from atheria_cli.run.store import AgentStore, RunState
from atheria_cli.trainers import kind_of
from atheria_cli.trainers.base import resolve
from atheria_cli.training.devices import resolve_device

if TYPE_CHECKING:
    from stable_baselines3.common.vec_env import VecEnv

    from atheria_cli.trainers.foreign import ForeignCheckpoint
    from atheria_cli.trainers.sb3.adopt import AdoptSource
    from atheria_cli.training.fork import ForkSource


@dataclass(frozen=True)
class AgentPlan:
    name: str
    store: AgentStore
    resume_from: CheckpointEntry | None
    move_aside: bool
    pull_mirror: bool = False  # --resume: the mirror holds a newer commit than the local folder
    move_mirror_aside: bool = False  # --fresh: the mirror's copy of the old run goes aside too
    seen: str | None = None  # the latest commit on disk when planned ("file sha256"), re-checked under the lock
    fork: ForkSource | None = None  # --from-checkpoint: a new run starting from another run's checkpoint
    # --from-sb3: a new run starting from an SB3 zip's weights; --from-checkpoint of another program's file
    adopt: AdoptSource | ForeignCheckpoint | None = None


@dataclass(frozen=True)
class TrainPlan:
    config: ExperimentConfig
    episodes: int | None  # None: until ``until_timesteps``
    device: str
    agents: tuple[AgentPlan, ...]
    resume: bool
    allow_config_change: bool
    max_hours: float | None
    notices: tuple[str, ...] = ()
    until_timesteps: int | None = None  # end at the first episode end at or after this many timesteps


def plan_training(
    config: ExperimentConfig,
    *,
    agents: Sequence[str] = (),
    episodes: int | None = None,
    resume: bool = False,
    fresh: bool = False,
    allow_config_change: bool = False,
    max_hours: float | None = None,
    until_timesteps: int | None = None,
    from_checkpoint: Path | None = None,
    from_sb3: Path | None = None,
    from_sb3_replay: Path | None = None,
    trust_pickle: bool = False,
) -> TrainPlan:
    """Validate a training request against the config and the disk; writes nothing.

    Checks the env and each agent's model settings once, so a bad env id, hyperparameter or
    metric name is reported before any agent trains.
    """
    if resume and fresh:
        raise UsageError("--resume and --fresh cannot be combined: --resume continues a run, --fresh moves it aside")
    until = config.train.until_timesteps if until_timesteps is None else until_timesteps
    if until is not None and until < 1:
        raise UsageError(f"--until-timesteps must be at least 1 (got {until})")
    # With a timestep target and no --episodes, the target alone ends the session.
    count = episodes if episodes is not None or until is not None else config.train.episodes
    if count is not None and count < 1:
        raise UsageError(f"--episodes must be at least 1 (got {count})")
    hours = config.train.max_hours if max_hours is None else max_hours
    if hours is not None and hours <= 0:
        raise UsageError(f"--max-hours must be positive (got {hours})")
    selected = select_agents(config, agents)
    check_trainer_kinds(config, selected)
    check_extras(config)  # before --fresh moves anything
    check_run_paths(config, selected)
    device = resolve_device(config.device)
    notices: list[str] = [line for name in selected for line in zoo_notices(config, name)]
    plans = []
    # --from-sb3's own checks first: beside --from-checkpoint it is refused, never ignored.
    adopt: AdoptSource | ForeignCheckpoint | None = _plan_adopt(
        config, agents, from_sb3, from_sb3_replay, trust_pickle, resume, fresh, from_checkpoint is not None, notices
    )
    fork = None
    if from_checkpoint is not None:
        fork, adopt = _plan_from_checkpoint(config, from_checkpoint, agents, resume, fresh, notices)
    for name in selected:
        plan = plan_agent(config, name, resume=resume, fresh=fresh, allow_config_change=allow_config_change, notices=notices)
        plans.append(replace(plan, fork=fork, adopt=adopt))
    _check_env_and_agents(config, selected, device)
    return TrainPlan(
        config=config,
        episodes=count,
        device=device,
        agents=tuple(plans),
        resume=resume,
        allow_config_change=allow_config_change,
        max_hours=hours,
        notices=tuple(notices),
        until_timesteps=until,
    )


def _plan_from_checkpoint(
    config: ExperimentConfig, checkpoint: Path, agents: Sequence[str], resume: bool, fresh: bool, notices: list[str]
) -> tuple[ForkSource | None, AdoptSource | ForeignCheckpoint | None]:
    """A fork of an atheria run's checkpoint; or, for an agent whose trainer kind can, a new run
    from another program's checkpoint file (one outside any atheria run)."""
    from atheria_cli.training.fork import in_a_run, plan_fork

    kind = kind_of(config, agents[0]) if len(agents) == 1 else None
    if kind is None or kind.foreign_checkpoint is None or in_a_run(config, checkpoint):
        return plan_fork(config, checkpoint, agents, resume=resume, fresh=fresh), None
    if resume:
        raise UsageError("--from-checkpoint and --resume cannot be combined: it starts a new run (use --fresh to replace it)")
    if not checkpoint.is_file():
        raise UsageError(f"--from-checkpoint: no such checkpoint file: {checkpoint}")
    source = resolve(kind.foreign_checkpoint)(config, checkpoint, agents[0], fresh=fresh, notices=notices)
    return None, source


def _plan_adopt(
    config: ExperimentConfig,
    agents: Sequence[str],
    from_sb3: Path | None,
    replay: Path | None,
    trust_pickle: bool,
    resume: bool,
    fresh: bool,
    forking: bool,
    notices: list[str],
) -> AdoptSource | None:
    if from_sb3 is None:
        if replay is not None or trust_pickle:
            raise UsageError("--from-sb3-replay and --trust-pickle go with --from-sb3 FILE.zip")
        return None
    if forking:
        raise UsageError("--from-sb3 and --from-checkpoint both name where a new run starts: give one")
    from atheria_cli.trainers.sb3.adopt import plan_adopt

    return plan_adopt(
        config, from_sb3, agents, resume=resume, fresh=fresh, replay=replay, trust_pickle=trust_pickle, notices=notices
    )


def check_run_paths(config: ExperimentConfig, agents: Sequence[str]) -> None:
    """The run's folders must be paths this machine can create: no file in the way, no name
    longer than the filesystem allows (checkpoints_dir, experiment and agent names make them).
    Names are measured, not probed: below a folder that does not exist yet the system reports
    that folder missing, not the name too long that creating it would meet."""
    for path in (config.run_dir, *(AgentLayout.of(config.run_dir, name).root for name in agents)):
        shown = str(path) if len(str(path)) <= 80 else f"{str(path)[:77]}..."
        try:
            folder = path
            while not folder.exists() and folder != folder.parent:
                folder = folder.parent
        except OSError as exc:
            raise ConfigError(f"cannot create the run folder {shown}: {exc.strerror or exc}") from None
        if not folder.is_dir():
            raise ConfigError(f"cannot create the run folder {shown}: {folder} is a file, not a folder")
        # The lock beside each agent's folder is the longest name atheria creates there.
        names = [*path.relative_to(folder).parts, f".{path.name}.lock"]
        if any(len(os.fsencode(name)) > _name_max(folder) for name in names):
            raise ConfigError(f"cannot create the run folder {shown}: {os.strerror(errno.ENAMETOOLONG)}")


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # no pathconf (Windows) or no answer: the common limit
        return 255


def zoo_notices(config: ExperimentConfig, name: str) -> list[str]:
    """What an agent took from its rl-zoo3 entry (after its own overrides), and a warning when
    the entry was tuned for another env than the one it will train on."""
    from atheria_cli.config.zoo import entry_env_id

    origin = config.zoo_origin(name)
    if origin is None:
        return []
    agent = config.agents[name]
    env = agent.env.model_dump(exclude_none=True) if agent.env is not None else {}
    settings = [f"{key}={value!r}" for key, value in agent.hyperparams.items()]
    settings += [f"env.{key}={value!r}" for key, value in env.items()]
    settings.append(f"schedule_timesteps={config.schedule_timesteps_of(name)}")
    lines = [f"{name}: hyperparameters from rl-zoo3 {origin['entry']} ({origin['source']}): {', '.join(settings)}"]
    tuned_for, trains_on = entry_env_id(origin["entry"]), config.env_of(name).id
    if tuned_for != trains_on:
        lines.append(f"{name}: the rl-zoo3 entry {origin['entry']} is tuned for {tuned_for}; this run trains it on {trains_on}")
    return lines


def still_current(plan: AgentPlan) -> bool:
    """Whether the disk still looks as it did when ``plan`` was made (checked under the lock:
    another process may have committed while this one was building its models)."""
    if plan.move_aside or plan.pull_mirror:
        return True
    if plan.resume_from is None:
        return plan.store.state() is RunState.EMPTY
    return _latest_commit(plan.store) == plan.seen


def _latest_commit(store: AgentStore) -> str | None:
    latest = store.metadata().latest if store.state() is RunState.COMMITTED else None
    return None if latest is None else f"{latest.file} {latest.sha256}"


def select_agents(config: ExperimentConfig, requested: Sequence[str]) -> list[str]:
    known = list(config.agents)
    unknown = [name for name in requested if name not in config.agents]
    if unknown:
        raise UsageError(f"unknown agent {unknown[0]!r}: the experiment has {', '.join(known)}")
    return [name for name in known if name in requested] if requested else known


def plan_agent(
    config: ExperimentConfig, name: str, *, resume: bool, fresh: bool, allow_config_change: bool, notices: list[str]
) -> AgentPlan:
    store = AgentStore(AgentLayout.of(config.run_dir, name))
    root = store.layout.root
    if fresh:
        # Even a damaged run can be moved aside: nothing of it is read.
        occupied = root.exists() and any(root.iterdir())
        return AgentPlan(name, store, resume_from=None, move_aside=occupied, move_mirror_aside=config.train.mirror is not None)
    state = store.state()
    if _mirror_plan(config, name, store, state, resume):
        assert config.train.mirror is not None  # _mirror_plan is False without one
        notices.append(f"{name}: the mirror {config.train.mirror.to} holds a newer commit; restoring from it first")
        return AgentPlan(name, store, resume_from=None, move_aside=state is RunState.UNCOMMITTED, pull_mirror=True)
    if state is RunState.EMPTY:
        if resume:
            notices.append(f"{name}: no checkpoint in {root}, starting fresh")
        return AgentPlan(name, store, resume_from=None, move_aside=False)
    if state is RunState.UNCOMMITTED:
        # A session killed before its first commit: nothing committed is lost, and nothing is
        # deleted either: the leftovers are moved aside.
        notices.append(
            f"{name}: {root} holds no committed checkpoint (a session stopped before its first commit); moving it aside and starting fresh"
        )
        return AgentPlan(name, store, resume_from=None, move_aside=True)
    latest = store.metadata().latest
    assert latest is not None
    if not resume:
        raise RunExistsError(
            f"{name} already has {latest.episode} episode(s) in {root} (last checkpoint {latest.file}); "
            "use --resume to continue or --fresh to move it aside and start over"
        )
    entry, fallbacks = store.newest_intact_checkpoint()
    notices.extend(f"{name}: {fallback}" for fallback in fallbacks)
    store.history()  # a damaged history is reported now, before anything trains
    check_drift(config, name, store, allow_config_change, notices)
    return AgentPlan(name, store, resume_from=entry, move_aside=False, seen=_latest_commit(store))


def check_drift(config: ExperimentConfig, name: str, store: AgentStore, allowed: bool, notices: list[str]) -> None:
    stored = store.run_config()
    if stored is None:
        return
    current = config_to_dict(config)
    keys = [key.format(agent=name) for key in DRIFT_KEYS]
    changed = [key for key in keys if training_setting(stored.config, key) != training_setting(current, key)]
    if not changed:
        return
    details = "; ".join(f"{key}: {config_value(stored.config, key)!r} -> {config_value(current, key)!r}" for key in changed)
    if not allowed:
        raise ConfigDriftError(
            f"{name}: the config differs from the run's config.json ({details}); "
            "use --allow-config-change to resume with the new one"
        )
    notices.append(f"{name}: resuming with a changed config ({details})")


def _mirror_plan(config: ExperimentConfig, name: str, store: AgentStore, state: RunState, resume: bool) -> bool:
    """Whether to restore from the mirror first; refuses when the mirror holds another run."""
    if config.train.mirror is None:
        return False
    mirror = Mirror(config.train.mirror.to, config.experiment, name)
    remote = mirror.manifest()
    if remote is None or remote.latest is None:
        return False
    if state is not RunState.COMMITTED:
        if not resume:
            raise RunExistsError(
                f"{name}: the mirror {mirror.url} holds a run ({remote.latest.episode} episode(s)); "
                "use --resume to continue it or --fresh to move it aside and start over"
            )
        return True
    local = store.metadata()
    if local.run_id != remote.run_id:
        raise RunExistsError(
            f"{name}: the mirror {mirror.url} holds another run (created {remote.created}) than {store.layout.root} "
            f"(created {local.created}); point train.mirror.to elsewhere or use --fresh"
        )
    latest = local.latest
    assert latest is not None
    return resume and (remote.latest.timesteps, remote.latest.episode) > (latest.timesteps, latest.episode)


def check_trainer_kinds(config: ExperimentConfig, agents: Sequence[str]) -> None:
    """Each agent's trainer kind can do what the config asks of it besides training
    (``train.eval``, ``train.snapshots``)."""
    for agent in agents:
        kind = kind_of(config, agent)
        if config.train.eval is not None and (refusal := kind.refusal("evaluate", config, agent)) is not None:
            raise ConfigError(f"train.eval: agents.{agent}: {refusal}")
        if config.train.snapshots is not None and not kind.snapshots:
            raise ConfigError(
                f"train.snapshots: agents.{agent}: the {kind.name} trainer kind takes no snapshots "
                "(only a trainer class that defines snapshot(), docs/trainers.md); remove train.snapshots"
            )


def _check_env_and_agents(config: ExperimentConfig, agents: Sequence[str], device: str) -> None:
    """Each agent's settings (its trainer kind's planning check, which builds no networks: the
    session builds each trainer once), against throwaway envs for SB3 agents, and the
    ``env.metrics`` names, before ``--fresh`` moves anything."""
    for agent in agents:
        if config.agents[agent].trainer is not None:  # a trainer makes its own data: no env
            kind_of(config, agent).check_plan(config, agent, None, device)
    sb3 = [agent for agent in agents if config.agents[agent].trainer is None]
    if sb3:  # trainer agents: the first episode's metrics are checked before the first commit
        _check_env_agents(config, sb3, device)


def _check_env_agents(config: ExperimentConfig, agents: Sequence[str], device: str) -> None:
    """The env settings, each SB3 agent's settings against its env, and ``env.metrics``."""
    # Imported here: gymnasium and SB3, which a run of trainers never needs.
    from atheria_cli.envs.factory import make_vec_env
    from atheria_cli.envs.probe import check_metric_names

    environment = config.environment
    envs: dict[str, VecEnv] = {}  # one per distinct agent env setting (n_envs, normalize, frame_stack)
    try:
        for agent in agents:
            settings = config.env_of(agent)
            env = envs.get(key := settings.model_dump_json())
            if env is None:
                env = envs[key] = make_vec_env(settings, gamma=config.gamma_of(agent))
            kind_of(config, agent).check_plan(config, agent, env, device)
        probe = next(iter(envs.values())) if envs else envs.setdefault("", make_vec_env(environment))
        check_metric_names(probe, [metric.name for metric in environment.metrics], environment.id, config.seed)
    finally:
        for env in envs.values():
            env.close()
