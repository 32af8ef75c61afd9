"""The experiment config: YAML in, a validated and frozen :class:`ExperimentConfig` out.

Torch-free on purpose: commands that only read JSON load the config too. Checks that need
Stable-Baselines3 (which keyword arguments an algorithm accepts) live in
:mod:`atheria_cli.agents.registry`.
"""

from __future__ import annotations

import re
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
    ValidationError,
    field_validator,
    model_validator,
)

from atheria_cli.agents.names import ALGORITHMS, missing_extra, needs_extra_message
from atheria_cli.errors import ConfigError

DEFAULT_CONFIG_RELATIVE = Path("configs") / "default.yaml"
PACKAGED_DEFAULT = "default.yaml"
# Names that become folder names: no separators, no leading dot.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:\d+|mps)$")
RESERVED_RECORD_KEYS = frozenset({"episode", "timesteps", "reward", "length", "seconds"})


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
    n_envs: PositiveInt = 1
    normalize: bool = False
    normalize_kwargs: dict[str, Any] = Field(default_factory=dict)
    metrics: tuple[MetricSpec, ...] = ()

    @field_validator("metrics", mode="before")
    @classmethod
    def _metric_names_as_specs(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator("metrics")
    @classmethod
    def _metrics_unique_and_unreserved(cls, metrics: tuple[MetricSpec, ...]) -> tuple[MetricSpec, ...]:
        names = [metric.name for metric in metrics]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate metric {duplicates[0]!r}")
        reserved = sorted(set(names) & RESERVED_RECORD_KEYS)
        if reserved:
            raise ValueError(f"{reserved[0]!r} is recorded for every episode already; it cannot be a metric")
        return metrics

    @field_validator("normalize_kwargs")
    @classmethod
    def _known_normalize_kwargs(cls, value: dict[str, Any]) -> dict[str, Any]:
        allowed = {"norm_obs", "norm_reward", "clip_obs", "clip_reward", "gamma", "epsilon", "norm_obs_keys"}
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise ValueError(f"unknown VecNormalize option {unknown[0]!r} (accepted: {', '.join(sorted(allowed))})")
        return value


class AgentConfig(_Strict):
    algo: Literal[ALGORITHMS] | None = None  # type: ignore[valid-type]
    policy: str = "MlpPolicy"
    seed: int | None = Field(default=None, ge=0, lt=2**32)
    hyperparams: dict[str, Any] = Field(default_factory=dict)


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


class ExperimentConfig(_Strict):
    experiment: str = "default"
    checkpoints_dir: str = "checkpoints"
    seed: int = Field(default=0, ge=0, lt=2**32)
    device: str = "auto"
    env: EnvConfig
    agents: dict[str, AgentConfig] = Field(min_length=1)
    train: TrainConfig = Field(default_factory=TrainConfig)
    # Reference values to compare agents with (`atheria compare`), e.g. {co2_kg: 550}.
    baseline: dict[str, FiniteFloat] = Field(default_factory=dict)

    @field_validator("experiment")
    @classmethod
    def _experiment_is_folder_name(cls, value: str) -> str:
        if not _SAFE_NAME.match(value):
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
            return {name: ({} if agent is None else agent) for name, agent in value.items()}
        return value

    @model_validator(mode="after")
    def _agents_named_and_typed(self) -> ExperimentConfig:
        for name, agent in self.agents.items():
            if not _SAFE_NAME.match(name):
                raise ValueError(f"agent name {name!r} must be a folder name: letters, digits, '_', '-', '.'")
            if agent.algo is None and name not in ALGORITHMS:
                raise ValueError(
                    f"agents.{name}.algo is required: {name!r} is not an algorithm name "
                    f"({', '.join(ALGORITHMS)})"
                )
            algo = agent.algo or name
            extra = missing_extra(algo)
            if extra is not None:
                raise ValueError(f"agents.{name}.algo: {needs_extra_message(algo, extra)}")
        return self

    @model_validator(mode="after")
    def _baseline_names_known(self) -> ExperimentConfig:
        known = ["reward", *(metric.name for metric in self.env.metrics)]
        for name in self.baseline:
            if name not in known:
                raise ValueError(f"baseline.{name}: not 'reward' or a metric of env.metrics (known: {', '.join(known)})")
        return self

    def algo_of(self, agent_name: str) -> str:
        """The SB3 algorithm of an agent (its ``algo``, else its name)."""
        agent = self.agents[agent_name]
        return agent.algo or agent_name

    def seed_of(self, agent_name: str) -> int:
        agent = self.agents[agent_name]
        return self.seed if agent.seed is None else agent.seed

    @property
    def run_dir(self) -> Path:
        return Path(self.checkpoints_dir) / self.experiment


def resolve_config_path(explicit: Path | None, cwd: Path | None = None) -> Path | None:
    """The config file to read: ``--config``, else ``configs/default.yaml`` here, else None
    (meaning the default shipped inside the package)."""
    if explicit is not None:
        return explicit
    local = (cwd or Path.cwd()) / DEFAULT_CONFIG_RELATIVE
    return local if local.is_file() else None


def load_config(path: Path | None, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Read, merge command-line overrides into, and validate an experiment config.

    ``path`` None reads the packaged default. Raises :class:`ConfigError` with a one-line
    message naming the file and the field path.
    """
    source = str(path) if path is not None else f"<packaged {PACKAGED_DEFAULT}>"
    raw = _read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the config must be a YAML mapping, got {type(raw).__name__}")
    merged = {**raw, **{key: value for key, value in (overrides or {}).items() if value is not None}}
    try:
        return ExperimentConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {format_validation_error(exc)}") from None


def _read_yaml(path: Path | None) -> Any:
    if path is None:
        text = resources.files("atheria_cli.config").joinpath(PACKAGED_DEFAULT).read_text(encoding="utf-8")
        return yaml.safe_load(text)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    if path.is_dir():
        raise ConfigError(f"config path is a directory, not a file: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: YAML syntax error{where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: YAML error: {exc}") from None


def format_validation_error(exc: ValidationError) -> str:
    """One line: the first problem's dotted field path and message, and how many more."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    location = ".".join(str(part) for part in first["loc"])
    message = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
    message = message.removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"{location}: {message}{more}" if location else f"{message}{more}"


def config_to_dict(config: ExperimentConfig) -> dict[str, Any]:
    """The resolved config as plain JSON-ready data."""
    return config.model_dump(mode="json")
