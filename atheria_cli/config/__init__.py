"""The experiment config: YAML in, a validated and frozen :class:`ExperimentConfig` out.

Torch-free on purpose: commands that only read JSON load the config too. Checks that need
Stable-Baselines3 (which keyword arguments an algorithm accepts) live in
:mod:`atheria_cli.agents.registry`.
"""

from __future__ import annotations

import difflib
import re
import typing
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    PositiveInt,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from atheria_cli.agents.names import ALGORITHMS, DEFAULT_POLICIES, DEFAULT_POLICY, missing_extra, needs_extra_message
from atheria_cli.config.tune import TuneConfig, distinct_seeds, tune_problems
from atheria_cli.errors import ConfigError
from atheria_cli.trainers.builtin import builtin_class_path, is_builtin

DEFAULT_CONFIG_RELATIVE = Path("configs") / "default.yaml"
PACKAGED_DEFAULT = "default.yaml"
# Names that become folder names: no separators, no leading dot.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
# A run's experiment may name a tuning trial's folder below it ("<experiment>/tune/<study>/trial_0003",
# or the study's "final" runs) and a seed's replicate below that (atheria_cli.run.seeds).
_SEED_REPLICATE = re.compile(r"(/tune/[A-Za-z0-9_][A-Za-z0-9_.-]*/(trial_\d{4,}|final))?(/seed_\d+)?$")
_DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:\d+|mps)$")
_INNER_PATH = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*): ")
# An agent's fields that only a trainer agent sets; left out of config.json when unset (an SB3
# agent's config.json is what it was before trainers existed).
TRAINER_FIELDS = ("trainer", "kwargs", "metrics")
TRAINER_ALGO = "torch"  # what a trainer agent records as its algo (metadata.json, checkpoint headers)
RESERVED_RECORD_KEYS = frozenset({"episode", "timesteps", "reward", "length", "seconds"})
# A user's trainer class: "package.module:Class" (docs/trainers.md); atheria's own are "atheria/<name>".
_TRAINER_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")
MAX_THREADS = 4096  # torch.set_num_threads takes a C int; no machine has more cores than this
MAX_FRAME_STACK = 1024  # observations stacked: each is copied into every step's observation
MAX_ENVS = 4096  # copies of the env in one process (SB3's DummyVecEnv builds them all at planning)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class MetricSpec(_Strict):
    """A value read from the final step's ``info`` dict of every episode."""

    name: str
    goal: Literal["min", "max"] = "max"


class EnvConfig(_Strict):
    id: str = Field(min_length=1)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    max_episode_steps: PositiveInt | None = None
    n_envs: int = Field(default=1, gt=0, le=MAX_ENVS)
    normalize: bool = False
    normalize_kwargs: dict[str, Any] = Field(default_factory=dict)
    frame_stack: int | None = Field(default=None, gt=0, le=MAX_FRAME_STACK)  # SB3 VecFrameStack of this many observations
    metrics: tuple[MetricSpec, ...] = ()

    @field_validator("metrics", mode="before")
    @classmethod
    def _metric_names_as_specs(cls, value: Any) -> Any:
        return _metric_names_as_specs(value)

    @field_validator("metrics")
    @classmethod
    def _metrics_unique_and_unreserved(cls, metrics: tuple[MetricSpec, ...]) -> tuple[MetricSpec, ...]:
        return _metrics_unique_and_unreserved(metrics)

    @field_validator("normalize_kwargs")
    @classmethod
    def _known_normalize_kwargs(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _known_normalize_options(value)


def _metric_names_as_specs(value: Any) -> Any:
    """``[name, {name, goal}, ...]``: a bare name is a metric to maximize."""
    if isinstance(value, list):
        return [{"name": item} if isinstance(item, str) else item for item in value]
    return value


def _metrics_unique_and_unreserved(metrics: tuple[MetricSpec, ...]) -> tuple[MetricSpec, ...]:
    names = [metric.name for metric in metrics]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"duplicate metric {duplicates[0]!r}")
    reserved = sorted(set(names) & RESERVED_RECORD_KEYS)
    if reserved:
        raise ValueError(f"{reserved[0]!r} is recorded for every episode already; it cannot be a metric")
    return metrics


def _known_normalize_options(value: dict[str, Any]) -> dict[str, Any]:
    allowed = {"norm_obs", "norm_reward", "clip_obs", "clip_reward", "gamma", "epsilon", "norm_obs_keys"}
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ValueError(f"unknown VecNormalize option {unknown[0]!r} (accepted: {', '.join(sorted(allowed))})")
    return value


class AgentEnvConfig(_Strict):
    """An agent's own vectorization settings; unset fields follow the experiment's ``env``."""

    n_envs: PositiveInt | None = None
    normalize: bool | None = None
    normalize_kwargs: dict[str, Any] | None = None
    frame_stack: int | None = Field(default=None, gt=0, le=MAX_FRAME_STACK)

    @field_validator("normalize_kwargs")
    @classmethod
    def _known_normalize_kwargs(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else _known_normalize_options(value)


class AgentConfig(_Strict):
    algo: Literal[ALGORITHMS] | None = None  # type: ignore[valid-type]
    policy: str = DEFAULT_POLICY  # an agent read from YAML without one gets its algorithm's default
    seed: int | None = Field(default=None, ge=0, lt=2**32)
    hyperparams: dict[str, Any] = Field(default_factory=dict)
    zoo: str | None = None  # an rl-zoo3 entry, "sac/Pendulum-v1" or "path/sac.yml#Pendulum-v1", filled in at load
    env: AgentEnvConfig | None = None
    schedule_timesteps: PositiveInt | None = None  # default: train.schedule_timesteps
    # A user's own training loop instead of an SB3 algorithm (docs/trainers.md): "package.module:Class",
    # built with ``kwargs``; its episodes report ``metrics`` (the first is the main one).
    trainer: str | None = None
    kwargs: dict[str, Any] | None = None
    metrics: tuple[MetricSpec, ...] | None = None

    @field_validator("trainer")
    @classmethod
    def _trainer_is_a_class_path(cls, value: str | None) -> str | None:
        if value is not None and is_builtin(value):
            builtin_class_path(value)  # a known name, else the error lists them
        elif value is not None and not _TRAINER_PATH.match(value):
            raise ValueError(f"{value!r} is not a class path: write it as package.module:Class (or atheria/<name>, a built-in)")
        return value

    @field_validator("metrics", mode="before")
    @classmethod
    def _metric_names_as_specs(cls, value: Any) -> Any:
        return _metric_names_as_specs(value)

    @field_validator("metrics")
    @classmethod
    def _metrics_unique_and_unreserved(cls, metrics: tuple[MetricSpec, ...] | None) -> tuple[MetricSpec, ...] | None:
        return None if metrics is None else _metrics_unique_and_unreserved(metrics)

    @model_validator(mode="after")
    def _trainer_or_algorithm(self) -> AgentConfig:
        """A trainer agent has metrics and none of an SB3 agent's settings; an SB3 agent has no trainer's."""
        if self.trainer is None:
            given = [name for name in TRAINER_FIELDS[1:] if getattr(self, name) is not None]
            if given:
                raise ValueError(
                    f"{given[0]}: only an agent with a trainer takes {given[0]} (SB3 agents: hyperparams, env.metrics)"
                )
            return self
        # By value, not by fields set: a run's config.json, read back, holds every field.
        sb3_only = {"algo": self.algo, "policy": self.policy != DEFAULT_POLICY, "hyperparams": self.hyperparams, "zoo": self.zoo}
        sb3_only |= {"env": self.env, "schedule_timesteps": self.schedule_timesteps}
        given = [name for name, value in sb3_only.items() if value]
        if given:
            raise ValueError(f"{given[0]}: an agent with a trainer has no {given[0]} (its settings are kwargs)")
        if not self.metrics:
            raise ValueError("metrics: an agent with a trainer names the metrics its episodes return (the first is the main one)")
        return self


class KeepPolicy(_Strict):
    """Which checkpoints retention keeps; unset fields keep nothing by that rule."""

    last: PositiveInt | None = None
    best: PositiveInt | None = None
    every: PositiveInt | None = None
    metric: str | None = None  # default: the main metric (first of env.metrics, else reward)
    goal: Literal["min", "max"] | None = None  # default: the metric's own goal


class MirrorConfig(_Strict):
    to: str = Field(min_length=1)  # a local path or an fsspec URL (file://, memory://, s3://, gs://)
    every: PositiveInt = 1  # commits between mirrorings; every session's end is mirrored too


class EvalConfig(_Strict):
    """Evaluation during training: ``episodes`` episodes on a separate env seeded ``seed``,
    ``seed + 1``, ... after every ``every`` training episodes (each forces a commit)."""

    every: PositiveInt
    episodes: PositiveInt = 5
    seed: int = Field(default=10_000, ge=0, lt=2**32)
    deterministic: bool = True


class SnapshotPolicy(_Strict):
    """Snapshots of a trainer's ``snapshot()`` tensors (docs/trainers.md): one after every
    ``every``-th episode (by episode number), the newest ``keep`` kept (every one when unset)."""

    every: PositiveInt
    keep: PositiveInt | None = None


class TrackerWandb(_Strict):
    project: str | None = None  # default: the experiment name
    entity: str | None = None
    group: str | None = None  # default: the experiment name
    mode: Literal["online", "offline", "disabled"] | None = None


class TrackerMlflow(_Strict):
    tracking_uri: str | None = None
    experiment: str | None = None  # default: the experiment name


class TrainConfig(_Strict):
    episodes: PositiveInt = 5
    save_every: PositiveInt = 1
    # SB3 schedules (learning rate, PPO's clip range, DQN's exploration) take the fraction of
    # training left; an episodic run has no fixed end, so the config names the horizon.
    schedule_timesteps: PositiveInt = 100_000
    save_every_steps: PositiveInt | None = None  # also checkpoint mid-episode every N env steps
    max_hours: float | None = Field(default=None, gt=0)  # time budget of one session
    keep: KeepPolicy | None = None  # retention; None keeps every checkpoint
    mirror: MirrorConfig | None = None
    monitor_every: PositiveInt | None = None  # resource readout every N episodes
    tensorboard: bool = False
    until_timesteps: PositiveInt | None = None  # end the session at the first episode end at or after this many timesteps
    allow_import: bool = False  # let zoo entries name code to import (stable_baselines3., sb3_contrib., ...)
    jobs: PositiveInt = 1  # (agent, seed) runs trained at once, each in its own process
    # torch threads per job; default torch's own, or cores // jobs under jobs > 1 (torch takes a C int)
    threads: int | None = Field(default=None, gt=0, le=MAX_THREADS)
    backend: Literal["local", "ray"] = "local"  # where jobs run: this machine, or a Ray cluster (the 'ray' extra)
    address: str | None = None  # Ray cluster address (auto, HOST:PORT, ray://HOST:10001); None starts a local Ray
    shared_storage: bool = False  # checkpoints_dir is on a filesystem every Ray node sees
    # Re-runs (as --resume) of a job whose Ray worker or node died, or (tune) whose job process was killed
    max_retries: int = Field(default=3, ge=0)
    eval: EvalConfig | None = None
    snapshots: SnapshotPolicy | None = None  # the trainer's snapshot() every N episodes; None takes none
    wandb: TrackerWandb | None = None
    mlflow: TrackerMlflow | None = None


def _check_main_metrics(config: ExperimentConfig, trainers: list[str], sb3: str | None) -> None:
    """Every trainer's main (first) metric is the experiment's: the first trainer's, or beside SB3
    agents the first of ``env.metrics``, which SB3 agents are ranked by."""
    mains = {name: metrics[0].name for name in trainers if (metrics := config.agents[name].metrics)}
    if sb3 is not None:
        env_metrics = config.env.metrics if config.env is not None else ()
        if not env_metrics:
            raise ValueError(
                f"env.metrics: {sb3} (SB3) is ranked by its reward and {trainers[0]} (trainer) by {mains[trainers[0]]!r}; "
                f"name {mains[trainers[0]]!r} first in env.metrics to rank them alike"
            )
        for name, main in mains.items():
            if main != env_metrics[0].name:
                raise ValueError(
                    f"agents.{name}.metrics: its main (first) metric is {main!r}, env.metrics' is {env_metrics[0].name!r}; "
                    "the agents of one experiment are ranked by one main metric"
                )
        return
    if len(set(mains.values())) > 1:
        first, *_ = mains
        other = next(name for name in mains if mains[name] != mains[first])
        raise ValueError(
            f"agents.{other}.metrics: its main (first) metric is {mains[other]!r}, {first}'s is {mains[first]!r}; "
            "the agents of one experiment are ranked by one main metric"
        )


def _check_metric_goals(config: ExperimentConfig, trainers: list[str]) -> None:
    """A metric has one goal in an experiment, whichever agent (or ``env.metrics``) names it."""
    goals: dict[str, str] = {metric.name: metric.goal for metric in config.env.metrics} if config.env is not None else {}
    where = dict.fromkeys(goals, "env.metrics")
    for name in trainers:
        for metric in config.agents[name].metrics or ():
            if goals.setdefault(metric.name, metric.goal) != metric.goal:
                raise ValueError(
                    f"agents.{name}.metrics: {metric.name!r} has goal {metric.goal} here, "
                    f"{goals[metric.name]} in {where.get(metric.name, 'another agent')}"
                )
            where.setdefault(metric.name, f"agents.{name}.metrics")


class ExperimentConfig(_Strict):
    experiment: str = "default"
    checkpoints_dir: str = "checkpoints"
    seed: int = Field(default=0, ge=0, lt=2**32)
    # Several seeds: every agent runs once per seed, each run in <run_dir>/seed_<S>/<AGENT>/.
    seeds: tuple[int, ...] | None = Field(default=None, min_length=1)
    device: str = "auto"
    env: EnvConfig | None = None  # required when an agent is an SB3 one; absent for trainer agents
    agents: dict[str, AgentConfig] = Field(min_length=1)
    train: TrainConfig = Field(default_factory=TrainConfig)
    # Reference values to compare agents with (`atheria compare`), e.g. {co2_kg: 550}.
    baseline: dict[str, FiniteFloat] = Field(default_factory=dict)
    tune: TuneConfig | None = None  # `atheria tune`: a hyperparameter search over one agent
    # Where each zoo agent's entry was read ({agent: {entry, source}}), set by load_config.
    _zoo_origins: dict[str, dict[str, str]] = PrivateAttr(default_factory=dict)

    @field_validator("experiment")
    @classmethod
    def _experiment_is_folder_name(cls, value: str) -> str:
        # "<experiment>/seed_<S>" names one seed's replicate (atheria_cli.run.seeds); its
        # config.json is read back through this model.
        name = _SEED_REPLICATE.sub("", value)
        if not _SAFE_NAME.match(name):
            raise ValueError("must be a folder name: letters, digits, '_', '-', '.' (not first)")
        return value

    @field_validator("device")
    @classmethod
    def _device_syntax(cls, value: str) -> str:
        if not _DEVICE.match(value):
            raise ValueError(f"{value!r} is not a device: use auto, cpu, cuda or cuda:N")
        return value

    @field_validator("agents", mode="before")
    @classmethod
    def _empty_agent_is_default(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {name: _with_default_policy(name, {} if agent is None else agent) for name, agent in value.items()}
        return value

    @model_validator(mode="after")
    def _agents_named_and_typed(self) -> ExperimentConfig:
        for name, agent in self.agents.items():
            if not _SAFE_NAME.match(name):
                raise ValueError(f"agent name {name!r} must be a folder name: letters, digits, '_', '-', '.'")
            if agent.trainer is None and agent.algo is None and name not in ALGORITHMS:
                raise ValueError(f"agents.{name}.algo is required: {name!r} is not an algorithm name ({', '.join(ALGORITHMS)})")
        return self

    @model_validator(mode="after")
    def _env_where_needed(self) -> ExperimentConfig:
        """SB3 agents train on ``env``; trainer agents make their own data. An experiment with an
        SB3 agent has an env, one of trainers only has none, and all its agents share one main
        metric (compare, status and retention rank every agent by it)."""
        trainers = [name for name, agent in self.agents.items() if agent.trainer is not None]
        sb3 = [name for name in self.agents if name not in trainers]
        if sb3 and self.env is None:
            raise ValueError("env: Field required")
        if not sb3 and self.env is not None:
            raise ValueError("env: an experiment of trainer agents has no env (each trainer makes its own data); remove it")
        if trainers:
            _check_main_metrics(self, trainers, sb3[0] if sb3 else None)
            _check_metric_goals(self, trainers)
        return self

    @field_validator("seeds")
    @classmethod
    def _seeds_unique_and_in_range(cls, seeds: tuple[int, ...] | None) -> tuple[int, ...] | None:
        return None if seeds is None else distinct_seeds(seeds)

    @model_validator(mode="after")
    def _seeds_not_per_agent(self) -> ExperimentConfig:
        if self.seeds is not None:
            fixed = [name for name, agent in self.agents.items() if agent.seed is not None]
            if fixed:
                raise ValueError(f"agents.{fixed[0]}.seed cannot be combined with seeds: each seed run takes its seed from seeds")
        return self

    @model_validator(mode="after")
    def _baseline_names_known(self) -> ExperimentConfig:
        known = ["reward", *(metric.name for metric in self.metrics)]
        for name in self.baseline:
            if name not in known:
                raise ValueError(
                    f"baseline.{name}: not 'reward' or a metric of {self._metrics_source} (known: {', '.join(known)})"
                )
        return self

    @model_validator(mode="after")
    def _keep_metric_known(self) -> ExperimentConfig:
        # A misspelt name would rank no checkpoint and keep no "best" one, silently.
        keep = self.train.keep
        known = ["reward", *(metric.name for metric in self.metrics)]
        if keep is not None and keep.metric is not None and keep.metric not in known:
            raise ValueError(
                f"train.keep.metric: {keep.metric!r} is not 'reward' or a metric of {self._metrics_source} (known: {', '.join(known)})"
            )
        return self

    @model_validator(mode="after")
    def _tune_fits_the_experiment(self) -> ExperimentConfig:
        if self.tune is not None:
            metrics = [metric.name for metric in self.metrics]
            problem = tune_problems(self.tune, list(self.agents), metrics, self.train.eval)
            if problem is not None:
                raise ValueError(problem)
        return self

    @property
    def metrics(self) -> tuple[MetricSpec, ...]:
        """The experiment's metrics, the main one first: ``env.metrics``, then those of its trainer
        agents in config order (a name two agents share counts once)."""
        seen: dict[str, MetricSpec] = {metric.name: metric for metric in self.env.metrics} if self.env is not None else {}
        for agent in self.agents.values():
            for metric in agent.metrics or ():
                seen.setdefault(metric.name, metric)
        return tuple(seen.values())

    @property
    def _metrics_source(self) -> str:
        trainers = any(agent.trainer is not None for agent in self.agents.values())
        return {(True, False): "env.metrics", (False, True): "the trainers' metrics"}.get(
            (self.env is not None, trainers), "env.metrics or the trainers' metrics"
        )

    def metrics_of(self, agent_name: str) -> tuple[MetricSpec, ...]:
        """The metrics each episode of ``agent_name`` records: its trainer's, else ``env.metrics``."""
        agent = self.agents[agent_name]
        return agent.metrics or () if agent.trainer is not None else self.environment.metrics

    @property
    def environment(self) -> EnvConfig:
        """``env``, for code that runs only for SB3 agents (the config refuses one without it)."""
        if self.env is None:
            raise ConfigError("env: this experiment has no env (its agents are trainers)")
        return self.env

    def env_id_of(self, agent_name: str) -> str | None:
        """The id of the env ``agent_name`` trains on; None for a trainer agent, which has none."""
        return self.env.id if self.env is not None and self.agents[agent_name].trainer is None else None

    def algo_of(self, agent_name: str) -> str:
        """The SB3 algorithm of an agent (its ``algo``, else its name); ``torch`` for a trainer agent."""
        agent = self.agents[agent_name]
        if agent.trainer is not None:
            return TRAINER_ALGO
        return agent.algo or agent_name

    def gamma_of(self, agent_name: str) -> float | None:
        """The agent's discount, which VecNormalize's return normalization must share."""
        gamma = self.agents[agent_name].hyperparams.get("gamma")
        return float(gamma) if isinstance(gamma, (int, float)) else None

    def seed_of(self, agent_name: str) -> int:
        agent = self.agents[agent_name]
        return self.seed if agent.seed is None else agent.seed

    def env_of(self, agent_name: str) -> EnvConfig:
        """The env settings of an agent: the experiment's ``env`` with the agent's ``env`` over it."""
        own = self.agents[agent_name].env
        if own is None:
            return self.environment
        return self.environment.model_copy(update=own.model_dump(exclude_none=True))

    def schedule_timesteps_of(self, agent_name: str) -> int:
        own = self.agents[agent_name].schedule_timesteps
        return self.train.schedule_timesteps if own is None else own

    def zoo_origin(self, agent_name: str) -> dict[str, str] | None:
        """``{entry, source}`` of the rl-zoo3 entry the agent was filled from, or None."""
        return self._zoo_origins.get(agent_name)

    @property
    def run_dir(self) -> Path:
        return Path(self.checkpoints_dir) / self.experiment


def _with_default_policy(name: Any, agent: Any) -> Any:
    """An agent mapping without ``policy`` gets its algorithm's default (``MlpLstmPolicy`` for
    RecurrentPPO). Filled in before validation, so config.json records the policy in force."""
    if not isinstance(agent, dict) or "policy" in agent or "trainer" in agent:
        return agent
    algo = agent.get("algo") or name
    return {**agent, "policy": DEFAULT_POLICIES[algo]} if isinstance(algo, str) and algo in DEFAULT_POLICIES else agent


def resolve_config_path(explicit: Path | None, cwd: Path | None = None) -> Path | None:
    """The config file to read: ``--config``, else ``configs/default.yaml`` here, else None
    (meaning the default shipped inside the package)."""
    if explicit is not None:
        return explicit
    local = (cwd or Path.cwd()) / DEFAULT_CONFIG_RELATIVE
    return local if local.is_file() else None


def load_config(path: Path | None, overrides: dict[str, Any] | None = None, *, check_extras: bool = True) -> ExperimentConfig:
    """Read, merge command-line overrides into, and validate an experiment config.

    ``path`` None reads the packaged default. Raises :class:`ConfigError` with a one-line
    message naming the file and the field path. ``check_extras`` refuses an algorithm whose
    optional extra is not installed; the reading commands (history, status, compare) turn it
    off, since they never build an agent: a TQC run trained where sb3-contrib was installed
    stays readable on a machine without it.
    """
    source = str(path) if path is not None else f"<packaged {PACKAGED_DEFAULT}>"
    raw = _read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the config must be a YAML mapping, got {type(raw).__name__}")
    merged = _merge_overrides(raw, overrides or {})
    _refuse_nul_characters(merged, source)
    origins = _resolve_zoo_entries(merged, path.parent if path is not None else None, source, lenient=not check_extras)
    try:
        config = ExperimentConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {format_validation_error(exc)}") from None
    config._zoo_origins.update(origins)
    if check_extras:
        _check_algorithm_extras(config, source)
    return config


def _refuse_nul_characters(value: Any, source: str, where: str = "") -> None:
    """No string of a config may hold a NUL: it is no character of a path, a name or an id, and
    the system calls that meet one (a mirror's or a run's path) fail with a traceback."""
    if isinstance(value, str) and "\x00" in value:
        raise ConfigError(f"{source}: {where or 'the config'}: must not contain a NUL character")
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        _refuse_nul_characters(key, source, where)  # a key is a string of the config too
        _refuse_nul_characters(item, source, f"{where}.{key}" if where else str(key))


def _check_algorithm_extras(config: ExperimentConfig, source: str) -> None:
    for name, agent in config.agents.items():
        if agent.trainer is not None:
            continue
        algo = config.algo_of(name)
        if (extra := missing_extra(algo)) is not None:
            raise ConfigError(f"{source}: agents.{name}.algo: {needs_extra_message(algo, extra)}")


def _merge_overrides(raw: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``raw`` with each set override in place; a dotted key (``train.allow_import``) sets a nested field."""
    merged = dict(raw)
    for key, value in overrides.items():
        if value is None:
            continue
        section, dot, field = key.partition(".")
        if dot:
            inner = merged.get(section)
            merged[section] = {**(inner if isinstance(inner, dict) else {}), field: value}
        else:
            merged[key] = value
    return merged


def _resolve_zoo_entries(
    merged: dict[str, Any], base_dir: Path | None, source: str, *, lenient: bool
) -> dict[str, dict[str, str]]:
    """Fill each agent that names a ``zoo`` entry in place; return the entries' origins.
    ``lenient`` (the reading commands) takes only the algorithm of an entry by name when
    rl_zoo3 is not installed: they never use its hyperparameters."""
    agents, train = merged.get("agents"), merged.get("train")
    if not isinstance(agents, dict) or not any(
        isinstance(agent, dict) and agent.get("zoo") is not None for agent in agents.values()
    ):
        return {}
    from atheria_cli.config.zoo import algo_without_the_zoo, resolve_agent  # only for a config that names one

    allow_import = isinstance(train, dict) and train.get("allow_import") is True
    origins, merged["agents"] = {}, dict(agents)
    for name, agent in agents.items():
        if isinstance(agent, dict) and agent.get("zoo") is not None:
            if lenient and (algo := algo_without_the_zoo(agent["zoo"])) is not None:
                merged["agents"][name] = {"algo": algo, **agent}
                continue
            try:
                merged["agents"][name], origins[str(name)] = resolve_agent(
                    str(name), agent, base_dir=base_dir, allow_import=allow_import
                )
            except ConfigError as exc:
                raise ConfigError(f"{source}: agents.{name}.{exc}") from None
    return origins


def _read_yaml(path: Path | None) -> Any:
    if path is None:
        text = resources.files("atheria_cli.config").joinpath(PACKAGED_DEFAULT).read_text(encoding="utf-8")
        return _safe_load(text)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    if path.is_dir():
        raise ConfigError(f"config path is a directory, not a file: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from None
    try:
        return _safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: YAML syntax error{where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: YAML error: {exc}") from None


def _safe_load(text: str) -> Any:
    """``yaml.safe_load``, through libyaml's parser where PyYAML was built with it (ten times
    faster on the default config). A document libyaml refuses is parsed again by PyYAML's own
    parser, so a bad config gets the error, and the line and column, it always got."""
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        try:
            return yaml.load(text, Loader=fast)
        except yaml.YAMLError:
            pass
    return yaml.safe_load(text)


def format_validation_error(exc: ValidationError) -> str:
    """One line: the first problem's dotted field path and message, and how many more."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    location = ".".join(str(part) for part in first["loc"])
    message = _unknown_field(first["loc"]) if first["type"] == "extra_forbidden" else first["msg"]
    message = message.removeprefix("Value error, ")
    if location and (inner := _INNER_PATH.match(message)):  # a model's own check names the field below it
        location, message = f"{location}.{inner.group(1)}", message[inner.end() :]
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"{location}: {message}{more}" if location else f"{message}{more}"


def _unknown_field(location: tuple[int | str, ...]) -> str:
    """``unknown field``, with the closest accepted name of the model the field was given in."""
    accepted = _accepted_fields(ExperimentConfig, location[:-1])
    close = difflib.get_close_matches(str(location[-1]), accepted, n=1) if accepted else []
    return f"unknown field (did you mean {close[0]!r}?)" if close else "unknown field"


def _accepted_fields(model: type[BaseModel], location: tuple[int | str, ...]) -> list[str]:
    """The field names (aliases where set) of the model(s) at ``location`` below ``model``;
    a dict's key, a list's index and a tagged union's tag in the location are stepped over."""
    nodes: list[Any] = [model]
    for part in location:
        following: list[Any] = []
        for node in nodes:
            if isinstance(node, tuple):  # ("keyed", inner): ``part`` is a key or an index
                following += _expand(node[1])
                continue
            fields = {field.alias or name: field for name, field in node.model_fields.items()}
            if part in fields:
                following += _expand(fields[str(part)].annotation)
            elif "name" in fields and typing.get_args(fields["name"].annotation) == (part,):
                following.append(node)  # the tag of a tagged union member
        nodes = following
    return sorted(
        {field.alias or name for node in nodes if not isinstance(node, tuple) for name, field in node.model_fields.items()}
    )


def _expand(annotation: Any) -> list[Any]:
    """The models an annotation can hold, and ("keyed", inner) for a dict or a sequence of ``inner``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if origin is typing.Annotated:
        return _expand(args[0])
    if origin is dict:
        return [("keyed", args[1])]
    if origin in (tuple, list):
        return [("keyed", args[0])] if args else []
    if args:  # a union (X | None)
        return [found for arg in args for found in _expand(arg)]
    return []


def config_to_dict(config: ExperimentConfig) -> dict[str, Any]:
    """The resolved config as plain JSON-ready data (an SB3 agent without the trainer fields)."""
    document = config.model_dump(mode="json")
    for agent in document["agents"].values():
        for name in TRAINER_FIELDS:
            if agent.get(name) is None:
                agent.pop(name, None)
    return document


def config_value(document: dict[str, Any], dotted: str) -> Any:
    """The value at ``dotted`` (``agents.SAC.env.n_envs``) in a :func:`config_to_dict` document,
    or None where any part is missing (a run written before the field existed)."""
    value: Any = document
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


# The settings that decide an agent's training ({agent}: its name): a resume refuses a change of
# them (planning's drift check), and a ``verify --resume-exactness`` verdict holds for them only.
DRIFT_KEYS = ("env", "seed", "agents.{agent}", "train.schedule_timesteps")


def training_setting(document: dict[str, Any], dotted: str) -> Any:
    """:func:`config_value` without null fields: a field added since a run was written, left
    unset, is no change."""
    return _unset_dropped(config_value(document, dotted))


def _unset_dropped(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _unset_dropped(item) for key, item in value.items() if item is not None}
    return value


def training_settings_sha256(config: ExperimentConfig, agent: str) -> str:
    """A fingerprint of the settings that decide ``agent``'s training (:data:`DRIFT_KEYS`)."""
    import hashlib
    import json

    document = config_to_dict(config)
    settings = {key: training_setting(document, key.format(agent=agent)) for key in DRIFT_KEYS}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode("utf-8")).hexdigest()
