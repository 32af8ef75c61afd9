"""TorchScript (``torch.jit.trace``): the format ``export-jit`` has always written. Deprecated by
torch 2.13, kept because the README promises it; the only module that calls ``torch.jit``."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from atheria_cli.deploy.formats import ModuleExport, Program, as_outputs
from atheria_cli.errors import UsageError


def require() -> None:
    """Nothing beyond torch."""


def build(capture: ModuleExport, path: Path) -> None:
    with torch.no_grad(), warnings.catch_warnings():
        # torch.distributions' argument checks are data-dependent Python branches; they are
        # constant for a deterministic policy, and the export is verified against predict anyway.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(capture.module, capture.examples, check_trace=False)
    torch.jit.save(traced, str(path))


def load(path: Path) -> Program:
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError) as exc:
        raise UsageError(f"{path} is not a TorchScript file ({str(exc).strip().splitlines()[0]})") from None

    def run(*inputs: np.ndarray) -> tuple[np.ndarray, ...]:
        with torch.no_grad():
            return as_outputs(module(*(torch.as_tensor(array) for array in inputs)))

    return run
