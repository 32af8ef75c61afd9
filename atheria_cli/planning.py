"""Plan a training session: check everything against the config and the disk, write nothing.

Every problem a user can fix (bad config, unknown agent, missing GPU, a run that would be
overwritten, a config that drifted from the run's) is found here, before any agent trains.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from atheria_cli.agents.registry import build_model
from atheria_cli.config import ExperimentConfig, config_to_dict
from atheria_cli.devices import resolve_device
from atheria_cli.envs.factory import make_vec_env
from atheria_cli.errors import ConfigDriftError, DamagedFileError, RunExistsError, UsageError
from atheria_cli.formats import CheckpointEntry
from atheria_cli.layout import AgentLayout
from atheria_cli.mirror import Mirror
from atheria_cli.store import AgentStore, RunState, file_sha256

# Config sections whose change makes a resumed run a different experiment ({agent}: its own).
DRIFT_KEYS = ("env", "seed", "agents.{agent}", "train.schedule_timesteps")


@dataclass(frozen=True)
class AgentPlan:
    name: str
    store: AgentStore
    resume_from: CheckpointEntry | None
    move_aside: bool
    pull_mirror: bool = False  # --resume: the mirror holds a newer commit than the local folder


@dataclass(frozen=True)
class TrainPlan:
    config: ExperimentConfig
    episodes: int
    device: str
    agents: tuple[AgentPlan, ...]
    resume: bool
    allow_config_change: bool
    max_hours: float | None
    notices: tuple[str, ...] = ()


def plan_training(
    config: ExperimentConfig,
    *,
    agents: Sequence[str] = (),
    episodes: int | None = None,
    resume: bool = False,
    fresh: bool = False,
    allow_config_change: bool = False,
    max_hours: float | None = None,
) -> TrainPlan:
    """Validate a training request against the config and the disk; writes nothing.

    Builds each agent's env and model once, so a bad env id or hyperparameter is reported
    before any agent trains.
    """
    if resume and fresh:
        raise UsageError("--resume and --fresh cannot be combined: --resume continues a run, --fresh moves it aside")
    count = config.train.episodes if episodes is None else episodes
    if count < 1:
        raise UsageError(f"--episodes must be at least 1 (got {count})")
    hours = config.train.max_hours if max_hours is None else max_hours
    if hours is not None and hours <= 0:
        raise UsageError(f"--max-hours must be positive (got {hours})")
    selected = select_agents(config, agents)
    device = resolve_device(config.device)
    notices: list[str] = []
    plans = []
    for name in selected:
        plan = plan_agent(config, name, resume=resume, fresh=fresh, allow_config_change=allow_config_change, notices=notices)
        plans.append(plan)
    for name in selected:
        _check_buildable(config, name, device)
    return TrainPlan(
        config=config,
        episodes=count,
        device=device,
        agents=tuple(plans),
        resume=resume,
        allow_config_change=allow_config_change,
        max_hours=hours,
        notices=tuple(notices),
    )


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
    state, root = store.state(), store.layout.root
    mirror_ahead = resume and _mirror_ahead(config, name, store, state)
    if mirror_ahead:
        notices.append(f"{name}: the mirror {config.train.mirror.to} holds a newer commit; restoring from it first")
        return AgentPlan(name, store, resume_from=None, move_aside=False, pull_mirror=True)
    if state is RunState.EMPTY:
        if resume:
            notices.append(f"{name}: no checkpoint in {root}, starting fresh")
        return AgentPlan(name, store, resume_from=None, move_aside=False)
    if fresh:
        return AgentPlan(name, store, resume_from=None, move_aside=True)
    if state is RunState.UNCOMMITTED:
        raise RunExistsError(f"{name}: {root} holds files but no committed checkpoint; use --fresh to move it aside and start over")
    latest = store.metadata().latest
    assert latest is not None
    if not resume:
        raise RunExistsError(
            f"{name} already has {latest.episode} episode(s) in {root} (last checkpoint {latest.file}); "
            "use --resume to continue or --fresh to move it aside and start over"
        )
    entry = newest_valid_checkpoint(store, name, notices)
    store.history()  # a damaged history is reported now, before anything trains
    check_drift(config, name, store, allow_config_change, notices)
    return AgentPlan(name, store, resume_from=entry, move_aside=False)


def newest_valid_checkpoint(store: AgentStore, name: str, notices: list[str]) -> CheckpointEntry:
    """The newest committed checkpoint whose file is intact; damaged newer ones are reported."""
    entries = sorted(store.metadata().checkpoints, key=lambda entry: (entry.timesteps, entry.episode), reverse=True)
    for entry in entries:
        problem = checkpoint_problem(store, entry)
        if problem is None:
            return entry
        notices.append(f"{name}: {entry.file} is unusable ({problem}); falling back to an earlier checkpoint")
    newest = entries[0]
    raise DamagedFileError(
        store.layout.root / newest.file,
        f"{checkpoint_problem(store, newest)}, and no earlier checkpoint is intact; use --fresh to start over",
    )


def checkpoint_problem(store: AgentStore, entry: CheckpointEntry) -> str | None:
    path = store.layout.root / entry.file
    if not path.is_file():
        return "file is missing"
    size = path.stat().st_size
    if size != entry.size:
        return f"{size} bytes, metadata.json records {entry.size}"
    if file_sha256(path) != entry.sha256:
        return "sha256 differs from metadata.json"
    return None


def check_drift(config: ExperimentConfig, name: str, store: AgentStore, allowed: bool, notices: list[str]) -> None:
    stored = store.run_config()
    if stored is None:
        return
    current = config_to_dict(config)
    keys = [key.format(agent=name) for key in DRIFT_KEYS]
    changed = [key for key in keys if _lookup(stored.config, key) != _lookup(current, key)]
    if not changed:
        return
    details = "; ".join(f"{key}: {_lookup(stored.config, key)!r} -> {_lookup(current, key)!r}" for key in changed)
    if not allowed:
        raise ConfigDriftError(
            f"{name}: the config differs from the run's config.json ({details}); "
            "use --allow-config-change to resume with the new one"
        )
    notices.append(f"{name}: resuming with a changed config ({details})")


def _mirror_ahead(config: ExperimentConfig, name: str, store: AgentStore, state: RunState) -> bool:
    if config.train.mirror is None:
        return False
    remote = Mirror(config.train.mirror.to, config.experiment, name).last_episode()
    if remote is None:
        return False
    if state is not RunState.COMMITTED:
        return True
    local = store.metadata().latest
    return local is None or (remote[1], remote[0]) > (local.timesteps, local.episode)


def _lookup(document: dict[str, Any], dotted: str) -> Any:
    value: Any = document
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _check_buildable(config: ExperimentConfig, agent: str, device: str) -> None:
    env = make_vec_env(config.env, gamma=agent_gamma(config, agent))
    try:
        build_model(config, agent, env, device, config.seed_of(agent))
    finally:
        env.close()


def agent_gamma(config: ExperimentConfig, agent: str) -> float | None:
    gamma = config.agents[agent].hyperparams.get("gamma")
    return float(gamma) if isinstance(gamma, (int, float)) else None
