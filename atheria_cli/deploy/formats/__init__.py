"""The export formats: one module each, behind one small interface (imported only when used).

Each format module provides::

    require() -> None                     # raise UsageError when its extra or tools are missing
    build(capture, path) -> None          # write the captured module (a :class:`ModuleExport`) to ``path``
    load(path) -> Program                 # a callable: input arrays (numpy) -> a tuple of output arrays

What is captured is any module with example inputs (``Deployable.export_subject``): an SB3
policy (``forward(obs) -> action``, batch dimension dynamic) or the module a user's trainer
returns from ``export_module`` (any inputs and outputs, at the example inputs' shapes).

A *model format* (``sb3``: SB3's own zip) is written by the checkpoint's trainer kind from its
model (``Deployable.write_model_format``) rather than from the exported module, so instead of
``build`` it provides::

    extra_files(path) -> dict[str, Path]  # every extra file it may write beside ``path``, by role

``torchscript`` is the only one that touches ``torch.jit`` (deprecated since torch 2.13).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from atheria_cli.deploy.sidecar import FORMAT_NAMES
from atheria_cli.errors import UsageError

if TYPE_CHECKING:
    import numpy as np
    import torch

    Policy = Callable[[np.ndarray], np.ndarray]
    Program = Callable[..., tuple[np.ndarray, ...]]
else:
    Policy = Callable[[Any], Any]
    Program = Callable[..., Any]

# The file each format writes in the agent's folder when no --output is given.
DEFAULT_FILES = {
    "torchscript": "model_jit.pt",
    "exported": "model_exported.pt2",
    "aoti": "model_aoti.pt2",
    "onnx": "model_onnx.onnx",
    "sb3": "model_sb3.zip",
}
# Formats written from the trainer's model itself (ModelFormat), not from the exported module.
MODEL_FORMATS = frozenset({"sb3"})


@dataclass(frozen=True)
class ModuleExport:
    """A module as the formats capture it.

    :param module: in eval mode
    :param examples: one example tensor per input of ``forward``, what the formats trace or export with
    :param input_names: the inputs' names, where a format names them (ONNX)
    :param output_names: the outputs' names (one per output tensor), where a format names them
    :param dynamic_batch: dimension 0 of every input is a batch of any size (else every shape is
        the example's)
    """

    module: torch.nn.Module
    examples: tuple[torch.Tensor, ...]
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    dynamic_batch: bool


class LoadableFormat(Protocol):
    """What every format offers: its requirements, and loading an exported file to run it."""

    def require(self) -> None: ...

    def load(self, path: Path) -> Program: ...


class ExportFormat(LoadableFormat, Protocol):
    def build(self, capture: ModuleExport, path: Path) -> None: ...


class ModelFormat(LoadableFormat, Protocol):
    def extra_files(self, path: Path) -> dict[str, Path]: ...


def loadable_format(name: str) -> LoadableFormat:
    if name not in FORMAT_NAMES:
        raise UsageError(f"--format must be one of {', '.join(FORMAT_NAMES)} (got {name!r})")
    module: Any = importlib.import_module(f"atheria_cli.deploy.formats.{name}")
    return module


def export_format(name: str) -> ExportFormat:
    """A format that exports the policy module (every format but the MODEL_FORMATS)."""
    module: Any = loadable_format(name)
    assert name not in MODEL_FORMATS, f"{name} is written from the model: use model_format"
    return module


def model_format(name: str) -> ModelFormat:
    module: Any = loadable_format(name)
    assert name in MODEL_FORMATS, f"{name} is exported from the policy module: use export_format"
    return module


def as_outputs(value: Any) -> tuple[np.ndarray, ...]:
    """A module's return value (a tensor, or a tuple or list of them) as a tuple of numpy arrays."""
    import numpy as np
    import torch

    if isinstance(value, (tuple, list)):
        return tuple(part for item in value for part in as_outputs(item))
    if isinstance(value, torch.Tensor):
        return (value.detach().cpu().numpy(),)
    return (np.asarray(value),)
