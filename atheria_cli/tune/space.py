"""The search space: what a trial samples, how it lands in the base agent entry, and the
up-front check that every path fits the base agent's algorithm.

A path is dotted below the agent's ``hyperparams``: ``learning_rate``, or
``policy_kwargs.net_arch`` (merged into the entry's own ``policy_kwargs``); for an agent with a
``trainer`` (a user's class, docs/trainers.md) it starts with ``kwargs.``: ``kwargs.lr`` lands in
the entry's ``kwargs``, checked against the class's ``__init__``. For SB3 agents the check applies
sample values of every range to the base entry and validates the result with
:func:`atheria_cli.agents.registry.validate_hyperparams`, the check ``atheria train`` runs, so a
space that cannot train exits 2 naming ``tune.space.<path>`` before anything is written.
Torch-free at import (``atheria tune --report`` reads a study through it); the check imports
the registry.
"""

from __future__ import annotations

import copy
import inspect
import itertools
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from atheria_cli.config import AgentConfig, ExperimentConfig, format_validation_error
from atheria_cli.config.tune import SpaceEntry
from atheria_cli.errors import ConfigError

POLICY_KWARGS = "policy_kwargs"
TRAINER_KWARGS = "kwargs"  # a trainer agent's settings: its paths are kwargs.NAME


def suggest(trial: Any, space: dict[str, SpaceEntry], paths: Iterable[str] | None = None) -> dict[str, Any]:
    """Sample ``paths`` (every path of the space by default, in config order) on an Optuna
    trial; returns what Optuna recorded, keyed by path. An enqueued trial's fixed values come
    back unchanged: Optuna hands them out instead of sampling."""
    chosen = list(space) if paths is None else [path for path in space if path in set(paths)]
    sampled: dict[str, Any] = {}
    for path in chosen:
        entry = space[path]
        if entry.kind == "float":
            low, high = entry.bounds
            sampled[path] = trial.suggest_float(path, low, high, log=entry.log)
        elif entry.kind == "int":
            low, high = entry.bounds
            sampled[path] = trial.suggest_int(path, int(low), int(high), log=entry.log)
        elif entry.kind == "one_minus":
            low, high = entry.bounds
            sampled[path] = trial.suggest_float(path, low, high, log=True)
        else:
            sampled[path] = trial.suggest_categorical(path, entry.labels())
    return sampled


def applied_values(space: dict[str, SpaceEntry], sampled: dict[str, Any]) -> dict[str, Any]:
    """The hyperparameter values of a trial's sampled parameters (``1 - x``, a label's value)."""
    return {path: space[path].applied(value) for path, value in sampled.items() if path in space}


def with_values(entry: AgentConfig, values: dict[str, Any]) -> AgentConfig:
    """The agent entry with each dotted path of ``values`` set in its hyperparams, or for a
    trainer agent (``kwargs.NAME`` paths) in its kwargs (validated)."""
    section = TRAINER_KWARGS if entry.trainer is not None else "hyperparams"
    settings = copy.deepcopy(entry.kwargs or {}) if entry.trainer is not None else copy.deepcopy(entry.hyperparams)
    for path, value in values.items():
        *parents, leaf = path.removeprefix(f"{TRAINER_KWARGS}.").split(".") if entry.trainer is not None else path.split(".")
        node = settings
        for depth, part in enumerate(parents):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                where = ".".join(parents[: depth + 1])
                raise ConfigError(f"tune.space.{path}: the base entry's {where} is {child!r}, not a mapping")
            node = child
        node[leaf] = copy.deepcopy(value)
    document = entry.model_dump(mode="json")
    document[section] = settings
    try:
        return AgentConfig.model_validate(document)
    except ValidationError as exc:
        raise ConfigError(f"tune.space: {format_validation_error(exc)}") from None


def grid_points(space: dict[str, SpaceEntry]) -> list[dict[str, Any]]:
    """Every combination of the choices (the grid sampler), in config order: the first path
    varies slowest."""
    paths = list(space)
    return [dict(zip(paths, labels, strict=True)) for labels in itertools.product(*(space[path].labels() for path in paths))]


def check_space(config: ExperimentConfig) -> None:
    """Refuse (exit 2, naming ``tune.space.<path>``) a path the base agent's algorithm does not
    accept, or a range whose values it would reject."""
    from atheria_cli.agents.registry import validate_hyperparams  # torch: only when a study starts

    tune = config.tune
    assert tune is not None
    base = config.agents[tune.agent]
    if base.trainer is not None:
        _check_trainer_space(config)
        return
    algo = config.algo_of(tune.agent)
    for path, entry in tune.space.items():
        if path.startswith(f"{POLICY_KWARGS}."):
            _check_policy_kwarg(path, algo, base.policy)
        for value in _samples(entry):
            trial_entry = with_values(base, {path: value})
            try:
                validate_hyperparams(tune.agent, algo, trial_entry.hyperparams, action_dim=None)
            except ConfigError as exc:
                detail = exc.message.split(": ", 1)[-1]
                raise ConfigError(f"tune.space.{path}: {detail} (sampled {value!r} for {algo})") from None
    for index, params in enumerate(tune.enqueue):
        values = {path: tune.space[path].applied(tune.space[path].sampled(value)) for path, value in params.items()}
        try:
            validate_hyperparams(tune.agent, algo, with_values(base, values).hyperparams, action_dim=None)
        except ConfigError as exc:
            raise ConfigError(f"tune.enqueue.{index}: {exc.message.split(': ', 1)[-1]}") from None


def _check_trainer_space(config: ExperimentConfig) -> None:
    """A trainer agent's space: ``kwargs.NAME`` paths whose NAME its class's ``__init__``
    accepts. Their values are the class's business (its first episode shows a bad one)."""
    from atheria_cli.trainers.custom import check_kwargs, trainer_class  # imports the user's class

    tune = config.tune
    assert tune is not None
    base = config.agents[tune.agent]
    for path in tune.space:
        parts = path.split(".")
        if parts[0] != TRAINER_KWARGS or len(parts) < 2:
            raise ConfigError(
                f"tune.space.{path}: agents.{tune.agent} is a trainer ({base.trainer}): its settings are kwargs; "
                f"name the path kwargs.{path}"
            )
    cls = trainer_class(config, tune.agent)
    for path in tune.space:
        kwargs = {**(base.kwargs or {}), path.split(".")[1]: None}
        try:
            check_kwargs(tune.agent, str(base.trainer), cls, kwargs)
        except ConfigError as exc:
            raise ConfigError(f"tune.space.{path}: {exc.message.split(': ', 1)[-1]}") from None


def _samples(entry: SpaceEntry) -> list[Any]:
    """Values a range can produce: its ends and an inner point that is not a round number
    (a float range on an integer hyperparameter fails there), or every choice."""
    if entry.kind == "choice":
        return [entry.applied(label) for label in entry.labels()]
    low, high = entry.bounds
    inner = low + (high - low) * 0.371
    return [entry.applied(value) for value in (low, inner, high)] if entry.kind != "int" else [int(low), int(high)]


def _check_policy_kwarg(path: str, algo: str, policy: str) -> None:
    """``policy_kwargs.<key>``: ``key`` must be a keyword of the agent's policy class."""
    from atheria_cli.agents.registry import algorithm_class

    key = path.split(".")[1]
    policy_class = algorithm_class(algo).policy_aliases.get(policy)
    if policy_class is None:
        return  # a dotted policy class: imported at training time (train.allow_import)
    accepted = sorted(name for name in inspect.signature(policy_class.__init__).parameters if name != "self")
    if key not in accepted:
        import difflib

        close = difflib.get_close_matches(key, accepted, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"tune.space.{path}: {policy} of {algo} takes no {key!r} ({hint}accepted: {', '.join(accepted)})")
