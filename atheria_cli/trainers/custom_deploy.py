"""A user's trainer evaluated and exported: its optional ``evaluate`` and ``export_module``
(docs/trainers.md), for ``train.eval``, ``atheria eval`` and ``atheria export``::

    def evaluate(self, episodes: int, seed: int) -> dict[str, float]: ...   # metrics of the current state
    def export_module(self) -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]: ...  # module, example inputs

``evaluate`` runs with the global generators (Python, NumPy, torch) seeded from ``seed`` and
restored after: it draws nothing from training's stream, and a checkpoint evaluates alike during
training and in ``atheria eval``. It must leave the trainer's own state as it found it.

``export_module``'s module is exported in eval mode at the example inputs' shapes and verified
against the eager module on input sets sampled around the examples (the examples themselves, then
each float or complex input plus Gaussian noise at its own scale, each integer input drawn
between its example's smallest and largest value, each bool input drawn), with a fixed seed.
"""

from __future__ import annotations

import inspect
import json
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from atheria_cli.agents.rng import capture_global_rng, restore_global_rng
from atheria_cli.config import EvalConfig, ExperimentConfig
from atheria_cli.deploy.episodes import CheckpointEvaluation
from atheria_cli.deploy.formats import MODEL_FORMATS, ModuleExport, as_outputs
from atheria_cli.errors import MetricError, TrainerFailedError, UsageError
from atheria_cli.metrics import REWARD
from atheria_cli.run.formats import EvaluationRecord, Stat
from atheria_cli.trainers.base import ExportSubject, Use
from atheria_cli.trainers.custom import KIND, STEPS, TorchTrainer, build_trainer, seed_globals, trainer_class

if TYPE_CHECKING:
    import numpy as np

    from atheria_cli.trainers.base import Deployable, TrainerEvaluation

# The optional method each use needs, as docs/trainers.md writes it.
METHODS: dict[Use, tuple[str, str, str]] = {
    "evaluate": ("evaluate", "evaluate(episodes, seed)", "evaluate"),
    "export": ("export_module", "export_module()", "export"),
}
SAMPLES = 8  # input sets an export is verified on: the examples, then SAMPLES - 1 drawn around them


def refusal(config: ExperimentConfig, agent: str, use: Use) -> str | None:
    """The ``torch`` kind's ``refuses``: the agent's class lacks the method ``use`` calls
    (imported, never built)."""
    method, signature, verb = METHODS[use]
    if callable(getattr(trainer_class(config, agent), method, None)):
        return None
    return f"{config.agents[agent].trainer} has no {signature} method to {verb} it with (docs/trainers.md)"


def run_evaluate(user: Any, agent: str, episodes: int, seed: int) -> Mapping[str, Any]:
    """``user.evaluate(episodes, seed)`` with the global generators seeded from ``seed``, and as
    they were afterwards."""
    saved = capture_global_rng()
    seed_globals(seed)
    try:
        values = user.evaluate(episodes, seed)
    except Exception as exc:  # the user's code: a run failure (exit 1), what was committed is intact
        raise TrainerFailedError(f"agents.{agent}: evaluate failed: {type(exc).__name__}: {_first_line(exc)}") from exc
    finally:
        restore_global_rng(saved)
    if not isinstance(values, Mapping):
        raise MetricError(f"agents.{agent}: evaluate must return a dict of metrics, got {type(values).__name__}")
    return values


def measured(values: Mapping[str, Any], trainer: TorchTrainer) -> dict[str, float | None]:
    """The reward (the main metric, negated when its goal is min) and each configured metric that
    ``evaluate`` returned; a non-finite value as None. The main metric is required."""
    main = trainer.metrics[0]
    if main.name not in values:
        returned = ", ".join(sorted(map(str, values))) or "nothing"
        raise MetricError(
            f"agents.{trainer.agent}: evaluate returned no {main.name!r}, the main metric ({returned}); "
            "it must return the main metric"
        )
    found = {metric.name: _number(values[metric.name]) for metric in trainer.metrics if metric.name in values}
    value = found[main.name]
    found[REWARD] = None if value is None else (-value if main.goal == "min" else value)
    return found


class TorchEvaluation:
    """``train.eval`` of a user's trainer: its ``evaluate(eval.episodes, eval.seed)`` as an
    evaluation record, each value a mean without a spread."""

    def __init__(self, trainer: TorchTrainer, eval_config: EvalConfig) -> None:
        self.trainer, self.eval_config = trainer, eval_config

    def evaluate(self, episode: int) -> EvaluationRecord:
        started = time.perf_counter()
        planned = self.eval_config
        values = run_evaluate(self.trainer.user, self.trainer.agent, planned.episodes, planned.seed)
        found = measured(values, self.trainer)
        steps = _number(values[STEPS]) if STEPS in values else None
        return EvaluationRecord(
            episode=episode,
            timesteps=self.trainer.timesteps,
            episodes=planned.episodes,
            seeds=[planned.seed],
            deterministic=planned.deterministic,
            seconds=round(time.perf_counter() - started, 3),
            reward=Stat(mean=found.pop(REWARD), std=None),
            length=Stat(mean=steps, std=None),
            metrics={name: Stat(mean=value, std=None) for name, value in found.items()},
        )

    def close(self) -> None:
        pass


class TrainerDeployable:
    """A user's trainer rebuilt from a checkpoint (on the CPU), for ``atheria export`` and ``atheria eval``."""

    algo = KIND

    def __init__(self, trainer: TorchTrainer) -> None:
        self.trainer = trainer

    def check_export(self, config: ExperimentConfig, agent: str, source: str, format_name: str) -> None:
        del config, source
        if format_name in MODEL_FORMATS:
            raise UsageError(
                f"{agent}: --format {format_name} is a format of SB3's models; "
                "a trainer's module exports to torchscript, exported, aoti or onnx"
            )

    def export_subject(self, seed: int) -> ExportSubject:
        """``export_module()``'s module in eval mode, verified against itself run eagerly."""
        module, examples = self._module()
        samples = sample_inputs(examples, seed)
        with torch.no_grad():
            expected = [self._outputs(module(*inputs)) for inputs in samples]
        names = input_names(module, len(examples))
        outputs = ("output",) if len(expected[0]) == 1 else tuple(f"output_{index}" for index in range(len(expected[0])))
        capture = ModuleExport(module, examples, names, outputs, dynamic_batch=False)
        inputs = [_spec(name, _dtype(tensor.dtype), list(tensor.shape)) for name, tensor in zip(names, examples, strict=True)]
        description = {
            "observation_space": None,
            "action_space": None,
            "input": {key: inputs[0][key] for key in ("dtype", "shape")} if inputs else {},
            "observation_normalization": False,
            "inputs": inputs,
            "outputs": [
                _spec(name, str(array.dtype), list(array.shape)) for name, array in zip(outputs, expected[0], strict=True)
            ],
            "trainer": self.trainer.path,
        }
        return ExportSubject(
            capture=capture,
            samples=[tuple(tensor.numpy() for tensor in inputs) for inputs in samples],
            expected=expected,
            exact=False,
            sample_count=len(samples),
            sample_noun="sampled inputs",
            reference="the eager module",
            what="module",
            description=description,
        )

    def _module(self) -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
        agent = self.trainer.agent
        try:
            returned = self.trainer.user.export_module()  # type: ignore[attr-defined]
        except Exception as exc:  # the user's code
            raise TrainerFailedError(f"agents.{agent}: export_module failed: {type(exc).__name__}: {_first_line(exc)}") from exc
        module, examples = returned if isinstance(returned, tuple) and len(returned) == 2 else (None, None)
        examples = (examples,) if isinstance(examples, torch.Tensor) else examples
        if not isinstance(module, torch.nn.Module) or not isinstance(examples, tuple) or not examples:
            raise UsageError(
                f"agents.{agent}: export_module must return (torch.nn.Module, tuple of example tensors), got {_shape_of(returned)}"
            )
        if not all(isinstance(example, torch.Tensor) for example in examples):
            raise UsageError(f"agents.{agent}: export_module's example inputs must be tensors, got {_shape_of(examples)}")
        return module.to("cpu").eval(), tuple(example.detach().to("cpu") for example in examples)

    def _outputs(self, value: Any) -> tuple[np.ndarray, ...]:
        parts = value if isinstance(value, (tuple, list)) else (value,)
        if not parts or not all(isinstance(part, torch.Tensor) for part in parts):
            raise UsageError(
                f"agents.{self.trainer.agent}: the module of export_module must return a tensor or a tuple of tensors, "
                f"got {_shape_of(value)}"
            )
        return as_outputs(parts)

    def write_model_format(self, format_name: str, path: Path, *, with_replay: bool) -> dict[str, Path]:
        raise AssertionError(f"check_export refuses --format {format_name} for a trainer")

    def model_format_policy(self, format_name: str, path: Path) -> Any:
        raise AssertionError(f"check_export refuses --format {format_name} for a trainer")

    def evaluate(self, config: ExperimentConfig, agent: str, source: str, episodes: int, seed: int) -> CheckpointEvaluation:
        """The trainer's ``evaluate(episodes, seed)`` of the checkpoint's state."""
        del config, source
        values = run_evaluate(self.trainer.user, agent, episodes, seed)
        return CheckpointEvaluation(measured=measured(values, self.trainer))


def sample_inputs(examples: tuple[torch.Tensor, ...], seed: int, count: int = SAMPLES) -> list[tuple[torch.Tensor, ...]]:
    """The examples, then ``count - 1`` input sets drawn around them from a generator seeded ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return [examples, *(tuple(_around(example, generator) for example in examples) for _ in range(count - 1))]


def _around(example: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    if not example.numel():
        return example.clone()
    if example.dtype == torch.bool:
        return torch.rand(example.shape, generator=generator) < 0.5
    if example.is_floating_point() or example.is_complex():
        wide = torch.complex128 if example.is_complex() else torch.float64
        scale = float(example.to(wide).abs().std()) if example.numel() > 1 else float(example.to(wide).abs().max())
        scale = scale if math.isfinite(scale) and scale > 0 else 1.0
        noise = torch.randn(example.shape, generator=generator, dtype=wide)
        return (example.to(wide) + scale * noise).to(example.dtype)
    low, high = int(example.min()), int(example.max())
    return torch.randint(low, high + 1, example.shape, generator=generator, dtype=torch.int64).to(example.dtype)


def input_names(module: torch.nn.Module, count: int) -> tuple[str, ...]:
    """The names of ``forward``'s first ``count`` positional parameters (``input_N`` where it has fewer)."""
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    named = [parameter.name for parameter in inspect.signature(module.forward).parameters.values() if parameter.kind in kinds]
    return tuple(named[:count]) if len(named) >= count else tuple(f"input_{index}" for index in range(count))


def deployable(payload: dict[str, Any], path: Path) -> TrainerDeployable:
    """The ``torch`` kind's ``deploy``: the user's class built from the checkpoint's run config on
    the CPU, its state loaded."""
    del path
    config = ExperimentConfig.model_validate(json.loads(payload["run_config"]))
    trainer = build_trainer(config, payload["agent"], "cpu")
    trainer.restore_state(payload, None)
    return TrainerDeployable(trainer)


def _spec(name: str, dtype: str, shape: list[int]) -> dict[str, Any]:
    return {"name": name, "dtype": dtype, "shape": shape}


def _dtype(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _number(value: Any) -> float | None:
    """A metric value as a finite float, else None (a one-element tensor or array as its number)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _shape_of(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return f"{type(value).__name__} of {', '.join(type(item).__name__ for item in value) or 'nothing'}"
    return type(value).__name__


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


if TYPE_CHECKING:  # mypy checks here that the classes meet their protocols

    def _meets_the_protocols(deployed: TrainerDeployable, evaluation: TorchEvaluation) -> tuple[Deployable, TrainerEvaluation]:
        return deployed, evaluation
