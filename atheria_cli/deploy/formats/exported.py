"""``torch.export``: an ExportedProgram with a dynamic batch dimension, saved as ``.pt2``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from atheria_cli.deploy.formats import Policy
from atheria_cli.errors import UsageError


def require() -> None:
    """Nothing beyond torch."""


def export_program(module: torch.nn.Module, examples: torch.Tensor) -> torch.export.ExportedProgram:
    """The program aoti and onnx compile too: batch size dynamic, everything else fixed."""
    batch = torch.export.Dim("batch", min=1)
    # torch.distributions validates its arguments with data-dependent branches (``constraint.check``),
    # which torch.export cannot trace; a deterministic policy's mode never depends on them.
    validating = torch.distributions.Distribution._validate_args
    torch.distributions.Distribution.set_default_validate_args(False)
    try:
        with torch.no_grad():
            return torch.export.export(module, (examples,), dynamic_shapes={"obs": {0: batch}})
    finally:
        torch.distributions.Distribution.set_default_validate_args(validating)


def build(module: torch.nn.Module, examples: torch.Tensor, path: Path) -> None:
    torch.export.save(export_program(module, examples), str(path))


def load(path: Path) -> Policy:
    try:
        program = torch.export.load(str(path)).module()
    except Exception as exc:  # torch.export.load raises many types (zip, pickle, schema) for a bad file
        raise UsageError(f"{path} is not a torch.export program ({_first_line(exc)})") from None

    def act(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return program(torch.as_tensor(obs)).numpy()

    return act


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
