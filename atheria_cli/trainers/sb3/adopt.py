"""Adoption: ``atheria train --from-sb3 FILE.zip --agent NAME`` starts a new run of NAME from a
zip that SB3's own ``model.save`` wrote.

SB3's ``ALGO.load`` unpickles the ``:serialized:`` entries of the zip's ``data``, so loading a
stranger's zip runs their code. Adoption never does: the zip is opened with :mod:`zipfile`, its
``.pth`` tensors are read with ``torch.load(weights_only=True)``, and of ``data`` only plain
JSON values are read (counters, the plain fields SB3 writes beside each pickle). Everything
else comes from NAME's config: the model is built from it and the zip's tensors must fit it
name for name and shape for shape.

What the zip lacks (RNG states, the env's state, the replay buffer, the exploration noise) an
adopted run cannot have, so its first session is recorded ``exact: false`` with
``adopted_from``; its later resumes are exact as usual. An SB3 replay buffer (``.pkl``) is a
pickle too: it is imported only with ``--trust-pickle``.
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.save_util import recursive_getattr

from atheria_cli.agents.registry import build_model
from atheria_cli.agents.state import COUNTERS
from atheria_cli.config import ExperimentConfig
from atheria_cli.envs.factory import make_vec_env
from atheria_cli.errors import ConfigDriftError, RunExistsError, UsageError
from atheria_cli.run.formats import AdoptOrigin
from atheria_cli.run.layout import AgentLayout
from atheria_cli.run.store import AgentStore, RunState, file_sha256

VARIABLES_FILE = "pytorch_variables.pth"
# Counters SB3 recomputes at every step from num_timesteps and the schedules: not adopted.
RECOMPUTED = {"_current_progress_remaining", "exploration_rate"}


@dataclass(frozen=True)
class Sb3Zip:
    """What adoption reads from an SB3 zip: the parsed ``data`` JSON and the weights-only tensors."""

    path: Path
    sha256: str
    data: dict[str, Any]
    tensors: dict[str, Any]  # "<name>.pth" -> what torch.load(weights_only=True) returned

    @property
    def num_timesteps(self) -> int:
        value: Any = self.data.get("num_timesteps")
        if not _is_number(value) or value < 0 or value != int(value):
            raise UsageError(f"--from-sb3: {self.path}: data has no plain num_timesteps (got {value!r})")
        return int(value)


@dataclass(frozen=True)
class AdoptSource:
    """An SB3 zip a new run starts from, checked against the agent's config."""

    label: str  # as the user gave it
    archive: Sb3Zip
    replay: ReplayBuffer | None  # imported with --trust-pickle only

    @property
    def origin(self) -> AdoptOrigin:
        return AdoptOrigin(file=self.label, sha256=self.archive.sha256, num_timesteps=self.archive.num_timesteps)


def plan_adopt(
    config: ExperimentConfig,
    zip_path: Path,
    agents: Sequence[str],
    *,
    resume: bool,
    fresh: bool,
    replay: Path | None,
    trust_pickle: bool,
    notices: list[str],
) -> AdoptSource:
    """Check an adoption request against the config and the disk; writes nothing."""
    if resume:
        raise UsageError("--from-sb3 and --resume cannot be combined: adoption starts a new run (use --fresh to replace it)")
    if len(agents) != 1:
        raise UsageError("--from-sb3 needs exactly one --agent: the agent of the config that continues from the zip")
    (name,) = agents
    archive = read_sb3_zip(zip_path)
    model = _configured_model(config, name)
    check_adoptable(name, archive, model)
    target = AgentStore(AgentLayout.of(config.run_dir, name))
    if not fresh and target.state() is not RunState.EMPTY:
        raise RunExistsError(
            f"{name} already has a run in {target.layout.root}; adoption starts a new run: use --fresh to move it aside"
        )
    buffer = _replay(name, model, replay, trust_pickle, notices)
    notices.append(
        f"{name}: adopting {zip_path} at {archive.num_timesteps} timesteps; not exact (an SB3 zip holds no RNG, env "
        "or exploration-noise state)"
    )
    return AdoptSource(label=str(zip_path), archive=archive, replay=buffer)


def read_sb3_zip(path: Path) -> Sb3Zip:
    """Open the zip without unpickling anything: ``data`` as JSON, each ``.pth`` weights-only."""
    if not path.is_file():
        raise UsageError(f"--from-sb3: file not found: {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if "data" not in names:
                # A truncated SB3 zip can read as one of the torch zips inside it: no 'data' either.
                raise UsageError(f"--from-sb3: {path} is not an SB3 zip (no 'data' entry: truncated, or another zip)")
            data = json.loads(archive.read("data").decode("utf-8"))
            tensors = {name: _weights(path, name, archive.read(name)) for name in names if name.endswith(".pth")}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:  # truncated, damaged, not a zip, unreadable
        raise UsageError(f"--from-sb3: {path} is not a readable zip ({_first_line(exc)})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"--from-sb3: {path}: its 'data' is not JSON ({_first_line(exc)})") from None
    if not isinstance(data, dict):
        raise UsageError(f"--from-sb3: {path}: its 'data' is not a JSON object")
    return Sb3Zip(path=path, sha256=file_sha256(path), data=data, tensors=tensors)


def _weights(path: Path, name: str, content: bytes) -> Any:
    try:
        return torch.load(io.BytesIO(content), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, ... for a bad or unsafe file
        raise UsageError(f"--from-sb3: {path}: {name} is not a weights-only tensor file ({_first_line(exc)})") from None


def _configured_model(config: ExperimentConfig, name: str) -> BaseAlgorithm:
    """A throwaway model of ``name``'s config, on the CPU: what the zip must fit."""
    env = make_vec_env(config.env_of(name), gamma=config.gamma_of(name))
    try:
        return build_model(config, name, env, "cpu", config.seed_of(name))
    finally:
        env.close()


def check_adoptable(name: str, archive: Sb3Zip, model: BaseAlgorithm) -> None:
    """Algorithm, spaces and every tensor of the zip against ``model`` (built from the config);
    loads the zip into ``model``, so what passes here also loads in the session."""
    _check_algorithm(name, archive, model)
    _check_spaces(name, archive, model)
    _check_files(name, archive, model)
    _ = archive.num_timesteps
    load_into(name, model, archive, check=True)


def _check_algorithm(name: str, archive: Sb3Zip, model: BaseAlgorithm) -> None:
    recorded = archive.data.get("policy_class")
    module = recorded.get("__module__") if isinstance(recorded, dict) else None
    expected = type(model.policy).__module__
    if isinstance(module, str) and module != expected:
        raise ConfigDriftError(
            f"{name}: the zip's policy_class is from {module}, the config's {type(model).__name__} uses {expected}; "
            "adopt the zip into an agent of its algorithm"
        )


def _check_spaces(name: str, archive: Sb3Zip, model: BaseAlgorithm) -> None:
    for field, space in (("observation_space", model.observation_space), ("action_space", model.action_space)):
        recorded = archive.data.get(field)
        if not isinstance(recorded, dict):
            continue  # older SB3 wrote no plain fields: the tensor shapes below still decide
        ours = {"_shape": list(space.shape or ()), "dtype": str(space.dtype), "n": str(getattr(space, "n", None))}
        for key, value in ours.items():
            theirs = recorded.get(key)
            if theirs is None or (key == "n" and value == "None"):
                continue
            if (list(theirs) if isinstance(theirs, (list, tuple)) else str(theirs)) != value:
                raise ConfigDriftError(
                    f"{name}: the zip's {field}.{key.lstrip('_')} is {theirs!r}, the config's env has {value!r} ({space})"
                )


def _check_files(name: str, archive: Sb3Zip, model: BaseAlgorithm) -> None:
    state_dicts, variables = model._get_torch_save_params()
    expected = {f"{item}.pth" for item in state_dicts} | ({VARIABLES_FILE} if variables else set())
    # SB3 writes pytorch_variables.pth even when it is empty (SAC with a fixed ent_coef).
    missing, extra = sorted(expected - set(archive.tensors)), sorted(set(archive.tensors) - expected - {VARIABLES_FILE})
    if missing or extra:
        named = "; ".join(
            part
            for part in (f"missing {', '.join(missing)}" if missing else "", f"unexpected {', '.join(extra)}" if extra else "")
            if part
        )
        raise ConfigDriftError(
            f"{name}: the zip's tensor files do not fit {type(model).__name__} ({named}); adopt it into an agent of its algorithm"
        )


def load_into(agent: str, model: BaseAlgorithm, archive: Sb3Zip, *, check: bool = False) -> None:
    """The zip's policy, optimizers, variables and plain counters, into ``agent``'s ``model``;
    with ``check``, every tensor name and shape is compared first (errors name the tensor)."""
    state_dicts, variables = model._get_torch_save_params()
    for item in state_dicts:
        target = recursive_getattr(model, item)
        state = archive.tensors[f"{item}.pth"]
        if check and isinstance(target, torch.nn.Module):
            _check_tensors(agent, item, state, target.state_dict())
        try:
            target.load_state_dict(state)
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            raise ConfigDriftError(f"{agent}: {item}.pth does not fit the config ({_first_line(exc)})") from None
        if check and isinstance(target, torch.optim.Optimizer):
            _check_optimizer(agent, item, target)
    if variables:
        saved = archive.tensors[VARIABLES_FILE]
        with torch.no_grad():
            for item in variables:
                tensor = recursive_getattr(model, item)
                value = saved.get(item) if isinstance(saved, dict) else None
                if not isinstance(value, torch.Tensor) or value.shape != tensor.shape:
                    raise ConfigDriftError(f"{agent}: {VARIABLES_FILE}: {item} is missing or of another shape")
                tensor.copy_(value.to(tensor.device))  # in place: the optimizer holds this very tensor
    for counter in COUNTERS:
        value = archive.data.get(counter)
        if counter not in RECOMPUTED and hasattr(model, counter) and _is_number(value):
            setattr(model, counter, type(getattr(model, counter))(value))


def _check_tensors(agent: str, item: str, theirs: Any, ours: dict[str, torch.Tensor]) -> None:
    if not isinstance(theirs, dict):
        raise ConfigDriftError(f"{agent}: {item}.pth is not a state dict")
    for key in [*ours, *(key for key in theirs if key not in ours)]:  # in the network's order
        if key not in theirs:
            raise ConfigDriftError(f"{agent}: {item}.pth has no tensor {key} (the config's network has it)")
        if key not in ours:
            raise ConfigDriftError(f"{agent}: {item}.pth has tensor {key}, which the config's network lacks")
        shape = tuple(getattr(theirs[key], "shape", ()))
        if shape != tuple(ours[key].shape):
            raise ConfigDriftError(
                f"{agent}: tensor {key} of {item}.pth has shape {list(shape)}, the config's network has {list(ours[key].shape)}"
            )


def _check_optimizer(agent: str, item: str, optimizer: torch.optim.Optimizer) -> None:
    """``load_state_dict`` checks only parameter counts: each moment must have its parameter's shape."""
    params = [param for group in optimizer.param_groups for param in group["params"]]
    for param in params:
        for key, value in optimizer.state.get(param, {}).items():
            if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != param.shape:
                raise ConfigDriftError(
                    f"{agent}: {item}.pth holds {key} of shape {list(value.shape)} for a parameter of shape {list(param.shape)}"
                )


def _replay(name: str, model: BaseAlgorithm, replay: Path | None, trust_pickle: bool, notices: list[str]) -> ReplayBuffer | None:
    """The SB3 replay buffer to import (``--trust-pickle`` only), or None with a notice."""
    buffer = getattr(model, "replay_buffer", None)
    if replay is not None and buffer is None:
        raise UsageError(f"--from-sb3-replay: {name} ({type(model).__name__}) is on-policy and has no replay buffer")
    if buffer is None:
        return None
    if replay is None:
        notices.append(f"{name}: the run starts with an empty replay buffer (an SB3 zip holds none; see --from-sb3-replay)")
        return None
    if not trust_pickle:
        notices.append(
            f"{name}: {replay} not imported: an SB3 replay buffer is a pickle, which runs any code it names; "
            "pass --trust-pickle to import it. The run starts with an empty replay buffer"
        )
        return None
    return read_trusted_replay(replay, buffer)


def read_trusted_replay(path: Path, ours: ReplayBuffer) -> ReplayBuffer:
    """Unpickle SB3's ``save_replay_buffer`` file (the user vouched for it) and check it fits ``ours``."""
    from stable_baselines3.common.save_util import load_from_pkl

    if not path.is_file():
        raise UsageError(f"--from-sb3-replay: file not found: {path}")
    try:
        loaded = load_from_pkl(path)
    except Exception as exc:  # a pickle may raise anything
        raise UsageError(f"--from-sb3-replay: {path} is not an SB3 replay buffer ({_first_line(exc)})") from None
    if type(loaded) is not type(ours):
        raise UsageError(f"--from-sb3-replay: {path} holds a {type(loaded).__name__}, the agent uses a {type(ours).__name__}")
    for field in ("buffer_size", "n_envs", "obs_shape", "action_dim"):
        if getattr(loaded, field) != getattr(ours, field):
            raise UsageError(
                f"--from-sb3-replay: {path}: {field} {getattr(loaded, field)!r} differs from the agent's {getattr(ours, field)!r}"
            )
    return loaded


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and bool(np.isfinite(value))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
