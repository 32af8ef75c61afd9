"""The ``tune:`` section of the experiment config: a hyperparameter search (``atheria tune``).

Torch-free like the rest of :mod:`atheria_cli.config`: the shapes and ranges are checked here;
whether a hyperparameter path fits the base agent's algorithm needs Stable-Baselines3 and is
checked by :mod:`atheria_cli.tune.space` when the study starts.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator, model_validator

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
Scalar = (type(None), bool, int, float, str)  # what Optuna stores as a categorical choice


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class SpaceEntry(_Strict):
    """One searched hyperparameter: exactly one of ``float``, ``int``, ``one_minus`` (``1 - x``
    sampled log-uniformly, for discounts) or ``choice`` (a list of values, or ``{label: value}``
    for values that are not scalars, such as ``net_arch`` lists)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, serialize_by_alias=True, validate_by_name=True)

    float_range: tuple[float, float] | None = Field(default=None, alias="float")
    int_range: tuple[int, int] | None = Field(default=None, alias="int")
    one_minus: tuple[float, float] | None = None
    choice: list[Any] | dict[str, Any] | None = None
    log: bool = False

    @model_validator(mode="after")
    def _one_kind_and_a_real_range(self) -> SpaceEntry:
        kinds = [name for name in ("float", "int", "one_minus", "choice") if self._given(name)]
        if len(kinds) != 1:
            raise ValueError("give exactly one of float: [lo, hi], int: [lo, hi], one_minus: [lo, hi] or choice: [...]")
        kind = kinds[0]
        if kind == "choice":
            _check_choice(self.choice)
        else:
            low, high = self.bounds
            if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
                raise ValueError(f"empty range [{low}, {high}]: lo must be below hi")
            if self.log and low <= 0:
                raise ValueError(f"log: true needs a positive range (got lo {low})")
            if kind == "one_minus" and not (0 < low and high < 1):
                raise ValueError(f"one_minus samples 1 - x log-uniformly: 0 < lo < hi < 1 (got [{low}, {high}])")
        if self.log and kind not in ("float", "int"):
            raise ValueError(f"log applies to float and int ranges, not to {kind}")
        return self

    def _given(self, kind: str) -> bool:
        return {"float": self.float_range, "int": self.int_range, "one_minus": self.one_minus, "choice": self.choice}[
            kind
        ] is not None

    @property
    def kind(self) -> Literal["float", "int", "one_minus", "choice"]:
        for kind in ("float", "int", "one_minus", "choice"):
            if self._given(kind):
                return kind
        raise AssertionError("validated: one kind is given")

    @property
    def bounds(self) -> tuple[float, float]:
        bounds = self.float_range or self.int_range or self.one_minus
        assert bounds is not None, "only ranges have bounds"
        return float(bounds[0]), float(bounds[1])

    def labels(self) -> list[Any]:
        """The categorical choices Optuna samples: the labels of a mapping, else the values."""
        assert self.choice is not None
        return list(self.choice) if isinstance(self.choice, dict) else list(self.choice)

    def applied(self, sampled: Any) -> Any:
        """The hyperparameter value of what Optuna sampled (``1 - x``, a label's value)."""
        if self.kind == "one_minus":
            return 1.0 - float(sampled)
        if self.kind == "choice":
            return self.choice[sampled] if isinstance(self.choice, dict) else sampled
        return int(sampled) if self.kind == "int" else float(sampled)

    def sampled(self, value: Any) -> Any:
        """What Optuna records for the hyperparameter value ``value`` (an enqueued trial's):
        the inverse of :meth:`applied`. ValueError when the space cannot hold it."""
        if self.kind == "choice":
            assert self.choice is not None
            if isinstance(self.choice, dict):
                if isinstance(value, str) and value in self.choice:
                    return value
                for label, option in self.choice.items():
                    if option == value:
                        return label
            elif value in self.choice:
                return value
            raise ValueError(f"{value!r} is not one of the choices {self.labels()}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{value!r} is not a number")
        if self.kind == "int" and not float(value).is_integer():
            raise ValueError(f"{value!r} is not an integer")
        inner = 1.0 - float(value) if self.kind == "one_minus" else value
        low, high = self.bounds
        if not low <= inner <= high:
            raise ValueError(
                f"{value!r} lies outside the range [{low}, {high}]" + (" (of 1 - x)" if self.kind == "one_minus" else "")
            )
        return int(inner) if self.kind == "int" else float(inner)


def _check_choice(choice: list[Any] | dict[str, Any] | None) -> None:
    if not choice:
        raise ValueError("choice needs at least one value")
    if isinstance(choice, list):
        odd = [value for value in choice if not isinstance(value, Scalar)]
        if odd:
            raise ValueError(f"choice {odd[0]!r} is not a number, string, bool or null: name such values, {{label: value}}")
        if len({repr(value) for value in choice}) != len(choice):
            raise ValueError("choice values must be distinct")


class SamplerConfig(_Strict):
    name: Literal["random", "tpe", "grid"] = "tpe"
    seed: int = Field(default=0, ge=0, lt=2**31)  # trial i's sampler is seeded seed + i
    startup: int = Field(default=10, ge=0)  # tpe: random trials before the model takes over


class MedianPrunerConfig(_Strict):
    name: Literal["median"]
    startup: int = Field(default=5, ge=0)  # completed trials before any pruning
    warmup: int = Field(default=0, ge=0)  # episodes of a trial before it can be pruned


class HalvingPrunerConfig(_Strict):
    name: Literal["halving"]
    min_episodes: PositiveInt  # the first rung
    eta: int = Field(default=3, ge=2)  # the reduction factor


class NoPrunerConfig(_Strict):
    name: Literal["none"]


PrunerConfig = Annotated[MedianPrunerConfig | HalvingPrunerConfig | NoPrunerConfig, Field(discriminator="name")]


class ObjectiveConfig(_Strict):
    """The mean of ``metric`` over the last ``window`` evaluations (train.eval) of each seed,
    then over the seeds; the metric's goal is the study's direction."""

    metric: str | None = None  # default: the main metric (first of env.metrics, else reward)
    window: PositiveInt = 1


class FinalConfig(_Strict):
    seeds: tuple[int, ...] = Field(min_length=1)
    # The final runs' budget, at most one of the two; default: the study's (tune.episodes or tune.until_timesteps).
    episodes: PositiveInt | None = None
    until_timesteps: PositiveInt | None = None

    @model_validator(mode="after")
    def _at_most_one_budget(self) -> FinalConfig:
        if self.episodes is not None and self.until_timesteps is not None:
            raise ValueError("until_timesteps: give tune.final.episodes or tune.final.until_timesteps, not both")
        return self


class TuneConfig(_Strict):
    study: str
    agent: str
    trials: PositiveInt = 20
    # Each trial's budget per seed, exactly one of the two: episodes, or timesteps (the seed ends at
    # its first evaluation at or after them).
    episodes: PositiveInt | None = None
    until_timesteps: PositiveInt | None = None
    seeds: tuple[int, ...] = Field(default=(0,), min_length=1)
    objective: ObjectiveConfig = Field(default_factory=ObjectiveConfig)
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    pruner: PrunerConfig = Field(default_factory=lambda: MedianPrunerConfig(name="median"))
    storage: str = "journal"  # journal (a file in the study folder), a .db/.sqlite path, or a database URL
    space: dict[str, SpaceEntry] = Field(min_length=1)
    enqueue: tuple[dict[str, Any], ...] = ()  # trials to run first, in order; {} is the base entry unchanged
    final: FinalConfig | None = None

    @field_validator("study")
    @classmethod
    def _study_is_folder_name(cls, value: str) -> str:
        if not _SAFE_NAME.match(value):
            raise ValueError("must be a folder name: letters, digits, '_', '-', '.' (not first)")
        return value

    @field_validator("seeds")
    @classmethod
    def _seeds_distinct(cls, seeds: tuple[int, ...]) -> tuple[int, ...]:
        return distinct_seeds(seeds)

    @field_validator("space")
    @classmethod
    def _paths_dotted_names(cls, space: dict[str, SpaceEntry]) -> dict[str, SpaceEntry]:
        bad = [path for path in space if not _PATH.match(path)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a dotted hyperparameter path (like learning_rate or policy_kwargs.net_arch)")
        return space

    @model_validator(mode="after")
    def _one_budget(self) -> TuneConfig:
        if self.episodes is None and self.until_timesteps is None:
            raise ValueError("episodes: give tune.episodes or tune.until_timesteps (each trial's budget per seed)")
        if self.episodes is not None and self.until_timesteps is not None:
            raise ValueError("until_timesteps: give tune.episodes or tune.until_timesteps, not both")
        return self

    @model_validator(mode="after")
    def _final_seeds_apart_and_enqueued_paths_known(self) -> TuneConfig:
        if self.final is not None:
            distinct_seeds(self.final.seeds)
            shared = sorted(set(self.final.seeds) & set(self.seeds))
            if shared:
                raise ValueError(f"final.seeds: seed {shared[0]} is also a tuning seed; test seeds must differ from tuning seeds")
        for index, params in enumerate(self.enqueue):
            for path, value in params.items():
                if path not in self.space:
                    raise ValueError(f"enqueue.{index}.{path}: not a path of tune.space ({', '.join(self.space)})")
                try:
                    self.space[path].sampled(value)
                except ValueError as exc:
                    raise ValueError(f"enqueue.{index}.{path}: {exc}") from None
        if self.sampler.name == "grid":
            ranges = [path for path, entry in self.space.items() if entry.kind != "choice"]
            if ranges:
                raise ValueError(f"space.{ranges[0]}: the grid sampler needs choice: [...] for every path")
        return self

    def final_budget(self) -> tuple[int | None, int | None]:
        """The final runs' ``(episodes, until_timesteps)``, one of them None: ``final``'s when
        it gives one, else the study's own."""
        final = self.final
        if final is not None and (final.episodes is not None or final.until_timesteps is not None):
            return final.episodes, final.until_timesteps
        return self.episodes, self.until_timesteps


def distinct_seeds(seeds: tuple[int, ...]) -> tuple[int, ...]:
    """Seeds as a sorted tuple; a seed outside 0 to 2**32 - 1 or a repeated one is a ValueError."""
    bad = [seed for seed in seeds if not 0 <= seed < 2**32]
    if bad:
        raise ValueError(f"seed {bad[0]} is out of range (0 to 2**32 - 1)")
    if len(set(seeds)) != len(seeds):
        raise ValueError("seeds must be distinct")
    return tuple(sorted(seeds))


def tune_problems(tune: TuneConfig, agents: list[str], metrics: list[str], evaluation: Any) -> str | None:
    """What in the rest of the config contradicts the ``tune`` section, or None: the base agent
    must exist, the objective reads evaluations (train.eval) of a recorded metric, and the
    evaluation seeds must differ from the training seeds."""
    import difflib

    if tune.agent not in agents:
        close = difflib.get_close_matches(tune.agent, agents, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"tune.agent: no agent {tune.agent!r} ({hint}agents: {', '.join(agents)})"
    known = ["reward", *metrics]
    if tune.objective.metric is not None and tune.objective.metric not in known:
        close = difflib.get_close_matches(tune.objective.metric, known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"tune.objective.metric: {tune.objective.metric!r} is not recorded ({hint}known: {', '.join(known)})"
    if evaluation is None:
        return "tune: tuning reads evaluations; set train.eval (e.g. {every: 5, episodes: 5})"
    # An until_timesteps budget gives at least one evaluation per seed (each ends at one); a seed
    # that ends before `window` of them is scored on those it has, as early in a trial.
    if tune.episodes is not None and tune.episodes < evaluation.every * tune.objective.window:
        return (
            f"tune.episodes: {tune.episodes} episode(s) give {tune.episodes // evaluation.every} evaluation(s) "
            f"(train.eval.every {evaluation.every}), fewer than tune.objective.window {tune.objective.window}"
        )
    evaluation_seeds = set(range(evaluation.seed, evaluation.seed + evaluation.episodes))
    training = set(tune.seeds) | set(tune.final.seeds if tune.final is not None else ())
    shared = sorted(evaluation_seeds & training)
    if shared:
        return (
            f"train.eval.seed: evaluation seeds {evaluation.seed}..{evaluation.seed + evaluation.episodes - 1} include "
            f"training seed {shared[0]}; evaluate on seeds no run trains on"
        )
    return None
