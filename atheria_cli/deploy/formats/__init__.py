"""The export formats: one module each, behind one small interface (imported only when used).

Each format module provides::

    require() -> None                     # raise UsageError when its extra or tools are missing
    build(module, examples, path) -> None # write the exported ``module`` (an ExportedPolicy) to ``path``
    load(path) -> Policy                  # a callable: raw observations (numpy) -> actions (numpy)

``torchscript`` is the only one that touches ``torch.jit`` (deprecated since torch 2.13).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from atheria_cli.deploy.sidecar import FORMAT_NAMES
from atheria_cli.errors import UsageError

if TYPE_CHECKING:
    import numpy as np
    import torch

    Policy = Callable[[np.ndarray], np.ndarray]
else:
    Policy = Callable[[Any], Any]

# The file each format writes in the agent's folder when no --output is given.
DEFAULT_FILES = {
    "torchscript": "model_jit.pt",
    "exported": "model_exported.pt2",
    "aoti": "model_aoti.pt2",
    "onnx": "model_onnx.onnx",
}


class ExportFormat(Protocol):
    def require(self) -> None: ...

    def build(self, module: torch.nn.Module, examples: torch.Tensor, path: Path) -> None: ...

    def load(self, path: Path) -> Policy: ...


def export_format(name: str) -> ExportFormat:
    if name not in FORMAT_NAMES:
        raise UsageError(f"--format must be one of {', '.join(FORMAT_NAMES)} (got {name!r})")
    module: Any = importlib.import_module(f"atheria_cli.deploy.formats.{name}")
    return module
