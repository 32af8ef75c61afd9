"""``torch.export``: an ExportedProgram (batch dimension dynamic for a policy), saved as ``.pt2``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from atheria_cli.deploy.formats import ModuleExport, Program, as_outputs
from atheria_cli.errors import UsageError


def require() -> None:
    """Nothing beyond torch."""


def export_program(capture: ModuleExport) -> torch.export.ExportedProgram:
    """The program aoti and onnx compile too: the batch size dynamic when the capture says so,
    everything else fixed."""
    batch = torch.export.Dim("batch", min=1)
    dynamic = tuple({0: batch} for _ in capture.examples) if capture.dynamic_batch else None
    # torch.distributions validates its arguments with data-dependent branches (``constraint.check``),
    # which torch.export cannot trace; a deterministic policy's mode never depends on them.
    validating = torch.distributions.Distribution._validate_args
    torch.distributions.Distribution.set_default_validate_args(False)
    try:
        with torch.no_grad():
            return torch.export.export(capture.module, capture.examples, dynamic_shapes=dynamic)
    finally:
        torch.distributions.Distribution.set_default_validate_args(validating)


def build(capture: ModuleExport, path: Path) -> None:
    torch.export.save(export_program(capture), str(path))


def load(path: Path) -> Program:
    try:
        program = torch.export.load(str(path)).module()
    except Exception as exc:  # torch.export.load raises many types (zip, pickle, schema) for a bad file
        raise UsageError(f"{path} is not a torch.export program ({_first_line(exc)})") from None

    def run(*inputs: np.ndarray) -> tuple[np.ndarray, ...]:
        with torch.no_grad():
            return as_outputs(program(*(torch.as_tensor(array) for array in inputs)))

    return run


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
