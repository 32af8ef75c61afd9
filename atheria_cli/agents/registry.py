"""The supported algorithms, their hyperparameter checks and model construction.

One table, :data:`ALGORITHM_SPECS`: per name, how to load the class (contrib classes are
imported only when used, from the optional ``contrib`` extra), the action spaces it accepts,
what its ``predict`` needs besides the observation (an action mask, a recurrent state) and why its
policy cannot be exported, if it cannot. The torch-free names live in
:mod:`atheria_cli.agents.names`; the step loops that differ per algorithm in
:mod:`atheria_cli.agents.loops`.

Hyperparameters are SB3 constructor keyword arguments. Each value is validated against the
constructor's type hints (pydantic), so ``learning_rate: fast`` is refused up front with the
field path, and YAML lists become the tuples SB3 expects (``train_freq: [1, episode]``).
Class-valued options are named, never evaluated: ``activation_fn: Tanh``.
"""

from __future__ import annotations

import collections.abc
import importlib
import inspect
import math
import typing
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from pydantic import ConfigDict, TypeAdapter, ValidationError
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.noise import ActionNoise, NormalActionNoise, OrnsteinUhlenbeckActionNoise
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import get_actor_critic_arch
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecEnv

from atheria_cli.agents.names import ACTIVATIONS, EXTRAS, OPTIMIZERS, missing_extra, needs_extra_message
from atheria_cli.config import ExperimentConfig
from atheria_cli.errors import ConfigError
from atheria_cli.errors import not_accepted as _not_accepted

ALL_SPACES: tuple[type[spaces.Space], ...] = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)
MASKABLE_SPACES: tuple[type[spaces.Space], ...] = (spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)


@dataclass(frozen=True)
class AlgorithmSpec:
    """What atheria needs to know about one algorithm beyond its SB3 class."""

    name: str
    module: str  # where the class lives; imported on first use
    action_spaces: tuple[type[spaces.Space], ...]  # as the class passes them to SB3's base class
    export_refusal: str | None = None  # why export-jit cannot export its policy, if it cannot
    needs_action_masks: bool = False  # the env must offer ``action_masks()``; predict takes them
    recurrent: bool = False  # predict carries a state from step to step

    def load(self) -> type[BaseAlgorithm]:
        extra = EXTRAS[self.name]
        if extra is not None and missing_extra(self.name) is not None:
            raise ConfigError(needs_extra_message(self.name, extra))
        cls: type[BaseAlgorithm] = getattr(importlib.import_module(self.module), self.name)
        return cls


_SPECS = (
    AlgorithmSpec("A2C", "stable_baselines3", ALL_SPACES),
    AlgorithmSpec("PPO", "stable_baselines3", ALL_SPACES),
    AlgorithmSpec("SAC", "stable_baselines3", (spaces.Box,)),
    AlgorithmSpec("TD3", "stable_baselines3", (spaces.Box,)),
    AlgorithmSpec("DDPG", "stable_baselines3", (spaces.Box,)),
    AlgorithmSpec("DQN", "stable_baselines3", (spaces.Discrete,)),
    AlgorithmSpec("TQC", "sb3_contrib", (spaces.Box,)),
    AlgorithmSpec("QRDQN", "sb3_contrib", (spaces.Discrete,)),
    AlgorithmSpec("TRPO", "sb3_contrib", ALL_SPACES),
    AlgorithmSpec("CrossQ", "sb3_contrib", (spaces.Box,)),
    AlgorithmSpec(
        "MaskablePPO",
        "sb3_contrib",
        MASKABLE_SPACES,
        export_refusal="MaskablePPO needs the action mask as an input; not supported by export-jit yet",
        needs_action_masks=True,
    ),
    AlgorithmSpec(
        "RecurrentPPO",
        "sb3_contrib",
        ALL_SPACES,
        export_refusal="recurrent policies need explicit state inputs; not supported by export-jit yet",
        recurrent=True,
    ),
)
ALGORITHM_SPECS: dict[str, AlgorithmSpec] = {spec.name: spec for spec in _SPECS}


def algorithm_class(algo: str) -> type[BaseAlgorithm]:
    """The SB3 class of ``algo``; :class:`ConfigError` naming the extra when it is not installed."""
    return ALGORITHM_SPECS[algo].load()


def export_refusal(model: BaseAlgorithm) -> str | None:
    """Why export-jit cannot export ``model``'s policy, or None when it can."""
    spec = ALGORITHM_SPECS.get(type(model).__name__)
    return spec.export_refusal if spec is not None else None


# Set by atheria from the config's own fields, never through hyperparams.
RESERVED = {
    "policy": "the agent's 'policy' field",
    "env": "the 'env' section",
    "device": "the 'device' field or --device",
    "seed": "the 'seed' field or --seed",
    "verbose": "atheria's own output",
    "tensorboard_log": "train.tensorboard",
    "_init_setup_model": "atheria",
    "replay_buffer_class": "atheria (not configurable)",
    "rollout_buffer_class": "atheria (not configurable)",
}


def validate_hyperparams(
    agent: str, algo: str, hyperparams: dict[str, Any], action_dim: int | None, *, policy: type | None = None
) -> dict[str, Any]:
    """Check every hyperparameter against ``algo``'s constructor; return SB3-ready values.

    ``policy``, the policy class the model will build, also checks ``policy_kwargs`` against
    that class's constructor. Raises :class:`ConfigError` naming ``agents.<agent>.hyperparams.<key>``.
    """
    cls = algorithm_class(algo)
    parameters = inspect.signature(cls.__init__).parameters
    hints = _constructor_hints(cls)
    converted: dict[str, Any] = {}
    for key, value in hyperparams.items():
        where = f"agents.{agent}.hyperparams.{key}"
        if key in RESERVED:
            raise ConfigError(f"{where}: set by {RESERVED[key]}, not a hyperparameter")
        if key not in parameters or key == "self":
            raise _not_accepted(where, algo, key, [name for name in parameters if name not in RESERVED and name != "self"])
        if isinstance(value, dict) and "schedule" in value:
            converted[key] = _schedule(where, value, hints.get(key))
        elif key == "policy_kwargs":
            converted[key] = _policy_kwargs(where, value, policy)
        elif key == "action_noise":
            converted[key] = _action_noise(where, value, action_dim)
        else:
            converted[key] = _within_bounds(where, key, _validated(where, hints.get(key), value))
            if key == "ent_coef" and isinstance(converted[key], str):  # SAC's kind: a string is read at setup
                _check_entropy_coefficient(where, converted[key])
    _check_read_at_setup(f"agents.{agent}.hyperparams", converted)
    return converted


def _check_read_at_setup(where: str, hyperparams: dict[str, Any]) -> None:
    """Values SB3 reads only when it builds the model (planning does not), checked as it reads
    them: otherwise the agents before this one train and write their runs before it fails."""
    target = hyperparams.get("target_entropy")
    if isinstance(target, str) and target != "auto":
        try:
            float(target)
        except ValueError:
            raise ConfigError(f"{where}.target_entropy: must be 'auto' or a number (got {target!r})") from None
    frequency = hyperparams.get("train_freq")
    if isinstance(frequency, list | tuple) and len(frequency) == 2 and frequency[1] not in ("step", "episode"):
        raise ConfigError(f"{where}.train_freq: the unit must be 'step' or 'episode' (got {frequency[1]!r})")
    buffer = hyperparams.get("replay_buffer_kwargs") or {}
    if hyperparams.get("optimize_memory_usage") and buffer.get("handle_timeout_termination", True):
        raise ConfigError(
            f"{where}.optimize_memory_usage: SB3's replay buffer cannot both optimize memory and handle "
            "time-limit truncation; set replay_buffer_kwargs: {handle_timeout_termination: false} too"
        )


def _check_entropy_coefficient(where: str, value: str) -> None:
    """A string ``ent_coef`` as SB3's entropy-tuning algorithms read it (``"auto"``, ``"auto_0.1"``
    or a number), checked here: SB3 reads it only when it builds the model, after the agents
    before this one have trained."""
    start = value.partition("_")[2] if value.startswith("auto") else value
    if value == "auto":
        return
    try:
        number = float(start)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number < 0 or (value.startswith("auto") and number <= 0):
        raise ConfigError(f"{where}: must be a number >= 0, 'auto' or 'auto_<initial value > 0>' (got {value!r})")


# Ranges SB3 does not check, where a value outside ends a run with a traceback mid-training
# (gamma: 1e30 turns the actions into NaN; n_epochs: 0 an UnboundLocalError): (lowest, highest).
BOUNDS: dict[str, tuple[float, float | None]] = {
    "gamma": (0, 1),
    "gae_lambda": (0, 1),
    "tau": (0, 1),
    "exploration_fraction": (0, 1),
    "exploration_initial_eps": (0, 1),
    "exploration_final_eps": (0, 1),
    "learning_rate": (0, None),
    "n_steps": (1, None),
    "n_epochs": (1, None),
    "batch_size": (1, None),
    "buffer_size": (1, None),
    "learning_starts": (0, None),
    "target_update_interval": (1, None),
    "stats_window_size": (1, None),
}


def _within_bounds(where: str, key: str, value: Any) -> Any:
    if key not in BOUNDS or isinstance(value, bool) or not isinstance(value, (int, float)):
        return value  # a schedule, "auto", or a hyperparameter without a range
    low, high = BOUNDS[key]
    if high is not None and not low <= value <= high:
        raise ConfigError(f"{where}: must be between {low} and {high} (got {value!r})")
    if value < low:
        raise ConfigError(f"{where}: must be at least {low} (got {value!r})")
    return value


def build_model(
    config: ExperimentConfig, agent: str, env: VecEnv, device: str, seed: int | None, *, setup: bool = True
) -> BaseAlgorithm:
    """Construct the SB3 model of ``agent`` on ``env``; SB3 seeds every generator from ``seed``.

    ``setup=False`` runs only the constructor's own checks (policy name, action space, sizes):
    no network, optimizer or buffer is built and no generator is seeded. Planning validates so.
    """
    algo = config.algo_of(agent)
    cls = algorithm_class(algo)
    _check_env(agent, algo, env, config.environment.id)
    kwargs = checked_hyperparams(config, agent, env.action_space)
    try:
        # Every algorithm of the registry takes _init_setup_model; BaseAlgorithm does not declare it.
        return cls(_policy(config, agent), env, device=device, seed=seed, verbose=0, _init_setup_model=setup, **kwargs)  # type: ignore[call-arg]
    except (TypeError, ValueError, AssertionError, KeyError, RuntimeError) as exc:
        raise ConfigError(f"agents.{agent}: {algo} rejected its settings: {type(exc).__name__}: {exc}") from None


def checked_hyperparams(config: ExperimentConfig, agent: str, action_space: spaces.Space) -> dict[str, Any]:
    """The agent's hyperparameters checked against its algorithm's constructor, and its
    ``policy_kwargs`` against its policy's, as SB3-ready values (no env, no model needed)."""
    algo = config.algo_of(agent)
    cls = algorithm_class(algo)
    _check_policy(agent, algo, cls, config.agents[agent].policy)
    policy = _policy(config, agent)
    policy_class = cls.policy_aliases[policy] if isinstance(policy, str) else policy
    action_dim = int(np.prod(action_space.shape)) if isinstance(action_space, spaces.Box) else None
    return validate_hyperparams(agent, algo, config.agents[agent].hyperparams, action_dim, policy=policy_class)


def resolved_hyperparams(model: BaseAlgorithm, given: dict[str, Any]) -> dict[str, Any]:
    """Every constructor argument with the value in force (given, else SB3's default), as JSON."""
    parameters = inspect.signature(type(model).__init__).parameters
    resolved: dict[str, Any] = {}
    for name, parameter in parameters.items():
        if name in RESERVED or name == "self" or parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
            continue
        value = given[name] if name in given else parameter.default
        resolved[name] = _hyperparameter_as_json(value)
    return resolved


def _policy(config: ExperimentConfig, agent: str) -> str | type:
    """The policy name SB3 resolves (``MlpPolicy``), or the class a dotted name imports (train.allow_import)."""
    from atheria_cli.config.zoo import ALLOWED_IMPORT_PREFIXES

    name = config.agents[agent].policy
    if "." not in name:
        return name
    where = f"agents.{agent}.policy"
    if not config.train.allow_import:
        raise ConfigError(f"{where}: {name!r} names code to import; refused unless --allow-import (train.allow_import: true)")
    if not name.startswith(ALLOWED_IMPORT_PREFIXES):
        raise ConfigError(f"{where}: {name!r} is outside the importable prefixes ({', '.join(ALLOWED_IMPORT_PREFIXES)})")
    module_name, _, attribute = name.rpartition(".")
    try:
        target = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{where}: cannot import {name!r}: {exc}") from None
    if not isinstance(target, type):
        raise ConfigError(f"{where}: {name!r} is not a class")
    return target


def _check_policy(agent: str, algo: str, cls: type[BaseAlgorithm], policy: str) -> None:
    # RecurrentPPO's policies have other names than the default MlpPolicy: say which. A dotted
    # name is a class to import, checked by _policy.
    if "." not in policy and policy not in cls.policy_aliases:
        raise ConfigError(f"agents.{agent}.policy: {algo} has no policy {policy!r} (one of {', '.join(cls.policy_aliases)})")


def _check_env(agent: str, algo: str, env: VecEnv, env_id: str) -> None:
    _check_action_space(agent, algo, env.action_space)
    if ALGORITHM_SPECS[algo].needs_action_masks and not env.has_attr("action_masks"):
        raise ConfigError(f"agents.{agent}: {algo} needs an environment with an action_masks() method; {env_id} has none")


def _check_action_space(agent: str, algo: str, action_space: spaces.Space) -> None:
    supported = ALGORITHM_SPECS[algo].action_spaces
    if not isinstance(action_space, supported):
        names = " or ".join(space.__name__ for space in supported)
        raise ConfigError(f"agents.{agent}: {algo} needs a {names} action space, but the environment has {action_space}")


def _constructor_hints(cls: type[BaseAlgorithm]) -> dict[str, Any]:
    # SB3 imports these two only for type checking; its annotations still name them.
    names = {"VecEnv": VecEnv, "BaseCallback": BaseCallback}
    return typing.get_type_hints(cls.__init__, localns=names)


def _validated(where: str, hint: Any, value: Any) -> Any:
    if hint is None:
        return value
    try:
        adapter = TypeAdapter(hint, config=ConfigDict(arbitrary_types_allowed=True))
    except Exception:
        return value
    if isinstance(value, bool) and not _takes_bool(hint):
        # pydantic's lax mode reads true as 1: a boolean given for a number is a mistake.
        raise ConfigError(f"{where}: Input should be a number, not a boolean (got {value!r})")
    try:
        validated = adapter.validate_python(value)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        return_msg = first["msg"]
        raise ConfigError(f"{where}: {return_msg} (got {value!r})") from None
    if isinstance(validated, float) and not math.isfinite(validated):
        raise ConfigError(f"{where}: Input should be a finite number (got {value!r})")
    if _largest_integer(validated) > MAX_INTEGER:
        raise ConfigError(f"{where}: integers must be at most {MAX_INTEGER} (got {value!r})")
    return validated


# No count, size or width of an algorithm or policy is larger: beyond it SB3 and torch overflow a
# C integer (a traceback) or try to allocate the impossible (stats_window_size, n_steps 1e30).
MAX_INTEGER = 2**31 - 1


def _largest_integer(value: Any) -> int:
    """The largest absolute integer in ``value`` and the lists, tuples and mappings it holds."""
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value)
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list | tuple) else ()
    return max((_largest_integer(item) for item in items), default=0)


def _takes_bool(hint: Any) -> bool:
    if hint is bool or hint is Any:
        return True
    return any(_takes_bool(arg) for arg in typing.get_args(hint))


def _named_class(where: str, name: Any, module: Any, allowed: tuple[str, ...]) -> type:
    if not isinstance(name, str):
        raise ConfigError(f"{where}: give a name, one of {', '.join(allowed)}")
    short = name.rsplit(".", 1)[-1]
    match = {option.lower(): option for option in allowed}.get(short.lower())
    if match is None:
        raise ConfigError(f"{where}: unknown {name!r} (one of {', '.join(allowed)})")
    return getattr(module, match)


def _policy_kwargs(where: str, value: Any, policy: type | None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: must be a mapping (got {value!r})")
    kwargs = dict(value)
    for key in NOT_FROM_YAML:
        if key in kwargs:
            raise ConfigError(f"{where}.{key}: custom feature extractors are not configurable from YAML")
    if policy is not None:
        _check_policy_keys(where, policy, kwargs)
    if "activation_fn" in kwargs:
        kwargs["activation_fn"] = _named_class(f"{where}.activation_fn", kwargs["activation_fn"], torch.nn, ACTIVATIONS)
    if "optimizer_class" in kwargs:
        kwargs["optimizer_class"] = _named_class(f"{where}.optimizer_class", kwargs["optimizer_class"], torch.optim, OPTIMIZERS)
    if policy is None:
        return kwargs
    checked = _validated_policy_values(where, policy, kwargs)
    _check_optimizer_kwargs(f"{where}.optimizer_kwargs", policy, checked)
    return checked


def _check_optimizer_kwargs(where: str, policy: type, kwargs: dict[str, Any]) -> None:
    """``optimizer_kwargs`` as the policy's optimizer takes them. SB3 passes them only when it
    builds the networks, which planning does not: a wrong key there failed the session after
    the agents before this one had trained and written their runs. So the optimizer is built
    here, on one dummy parameter, with SB3's own call (``lr`` from the learning rate)."""
    given = kwargs.get("optimizer_kwargs")
    if not given:
        return
    default = inspect.signature(policy).parameters.get("optimizer_class")
    optimizer = kwargs.get("optimizer_class") or (default.default if default is not None else None)
    if not isinstance(optimizer, type):  # a policy that names no optimizer of its own: SB3 will say
        return
    accepted = [name for name in inspect.signature(optimizer).parameters if name not in ("self", "params")]
    for key in given:
        if key == "lr":
            raise ConfigError(f"{where}.lr: set by the learning_rate hyperparameter, not an optimizer keyword argument")
        if not isinstance(key, str) or key not in accepted:
            raise _not_accepted(f"{where}.{key}", optimizer.__name__, str(key), [name for name in accepted if name != "lr"])
    try:
        optimizer([torch.zeros(1, requires_grad=True)], lr=1e-3, **given)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"{where}: {optimizer.__name__} rejected them: {type(exc).__name__}: {exc}") from None


POLICY_COUNTS = ("n_critics", "n_quantiles", "lstm_hidden_size", "n_lstm_layers")
NAMED_CLASSES = ("activation_fn", "optimizer_class")  # resolved from names by _named_class
NOT_FROM_YAML = ("features_extractor_class", "features_extractor_kwargs")
# Policy constructor arguments the algorithm passes itself.
POLICY_RESERVED = {
    "observation_space": "the environment",
    "action_space": "the environment",
    "lr_schedule": "the learning_rate hyperparameter",
    "use_sde": "the use_sde hyperparameter",
}


def _check_policy_keys(where: str, policy: type, kwargs: dict[str, Any]) -> None:
    """Every key of ``policy_kwargs`` must be a keyword argument of ``policy``'s constructor,
    found without building it (planning builds no network)."""
    accepted = policy_parameters(policy)
    for key in kwargs:
        if key in POLICY_RESERVED:
            raise ConfigError(f"{where}.{key}: set by {POLICY_RESERVED[key]}, not a policy keyword argument")
        if not isinstance(key, str) or key not in accepted:
            offered = [name for name in accepted if name not in POLICY_RESERVED and name not in NOT_FROM_YAML]
            raise _not_accepted(f"{where}.{key}", policy.__name__, str(key), offered)


def _validated_policy_values(where: str, policy: type, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` validated against the policy constructor's type hints, as the algorithm's are."""
    hints = policy_parameters(policy)
    for key in POLICY_COUNTS:
        if isinstance(value := kwargs.get(key), int) and value < 1:  # SAC with n_critics 0 builds no critic at all
            raise ConfigError(f"{where}.{key}: must be at least 1 (got {value!r})")
    checked = {
        key: value if key in NAMED_CLASSES else _validated(f"{where}.{key}", hints.get(key), value)
        for key, value in kwargs.items()
    }
    widths = checked.get("net_arch")
    layers = [width for part in widths.values() for width in part] if isinstance(widths, dict) else widths or []
    if any(width < 1 for width in layers):
        raise ConfigError(f"{where}.net_arch: layer widths must be at least 1 (got {kwargs['net_arch']!r})")
    if isinstance(widths, dict) and not issubclass(policy, ActorCriticPolicy):
        try:  # an actor and critics (SAC, TD3, TQC, ...): SB3 asserts "pi" and "qf" when it builds them
            get_actor_critic_arch(widths)
        except AssertionError as exc:
            raise ConfigError(f"{where}.net_arch: {str(exc).removeprefix('Error: ')} (got {kwargs['net_arch']!r})") from None
    return checked


def policy_parameters(policy: type) -> dict[str, Any]:
    """The keyword arguments ``policy(...)`` takes, with their type hints (None where unknown):
    its ``__init__``'s, and while a constructor passes ``**kwargs`` on, those of the next one up
    the MRO (as a subclass hands them to ``super``)."""
    names: dict[str, Any] = {}
    for klass in policy.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            hints = typing.get_type_hints(init)
        except Exception:  # an annotation naming what only type checkers import
            hints = {}
        parameters = inspect.signature(init).parameters.values()
        for parameter in parameters:
            if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD) and parameter.name != "self":
                names.setdefault(parameter.name, hints.get(parameter.name))
        if not any(parameter.kind is parameter.VAR_KEYWORD for parameter in parameters):
            break
    return names


def _schedule(where: str, value: dict[str, Any], hint: Any) -> LinearSchedule:
    """``{schedule: linear, start: 3e-4, end: 0.0, end_fraction: 1.0}`` over train.schedule_timesteps."""
    # A bare Callable counts too: sb3-contrib's TQC annotates learning_rate as Union[float, Callable].
    if not any(collections.abc.Callable in (arg, typing.get_origin(arg)) for arg in typing.get_args(hint)):
        raise ConfigError(f"{where}: this hyperparameter takes no schedule")
    if value.get("schedule") != "linear" or set(value) - {"schedule", "start", "end", "end_fraction"}:
        raise ConfigError(
            f"{where}: expected {{schedule: linear, start: FLOAT, end: FLOAT, end_fraction: FLOAT}} (got {value!r})"
        )
    start = _validated(f"{where}.start", float, value.get("start"))
    end = _validated(f"{where}.end", float, value.get("end"))
    end_fraction = _validated(f"{where}.end_fraction", float, value.get("end_fraction", 1.0))
    if not 0.0 < end_fraction <= 1.0:
        raise ConfigError(f"{where}.end_fraction: must be in (0, 1] (got {end_fraction})")
    return LinearSchedule(start, end, end_fraction)


def _action_noise(where: str, value: Any, action_dim: int | None) -> ActionNoise | None:
    """``action_noise: {type: normal | ornstein_uhlenbeck, sigma: 0.1}`` for Box actions."""
    if value is None:
        return None
    if action_dim is None:
        raise ConfigError(f"{where}: action noise needs a Box action space")
    if not isinstance(value, dict) or set(value) - {"type", "sigma", "theta"} or "type" not in value:
        raise ConfigError(f"{where}: expected {{type: normal|ornstein_uhlenbeck, sigma: FLOAT}} (got {value!r})")
    sigma = _validated(f"{where}.sigma", float, value.get("sigma", 0.1))
    mean, scale = np.zeros(action_dim), sigma * np.ones(action_dim)
    if value["type"] == "normal":
        return NormalActionNoise(mean=mean, sigma=scale)
    if value["type"] == "ornstein_uhlenbeck":
        theta = _validated(f"{where}.theta", float, value.get("theta", 0.15))
        return OrnsteinUhlenbeckActionNoise(mean=mean, sigma=scale, theta=theta)
    raise ConfigError(f"{where}.type: unknown noise {value['type']!r} (normal or ornstein_uhlenbeck)")


def _hyperparameter_as_json(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_hyperparameter_as_json(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _hyperparameter_as_json(item) for key, item in value.items()}
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    if isinstance(value, LinearSchedule):
        return {"schedule": "linear", "start": value.start, "end": value.end, "end_fraction": value.end_fraction}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return repr(value)
