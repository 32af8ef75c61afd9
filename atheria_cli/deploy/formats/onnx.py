"""ONNX through torch's dynamo-based exporter (``torch.onnx.export(..., dynamo=True)``), checked
with ``onnx.checker`` and run with ONNX Runtime. Needs the ``onnx`` extra."""

from __future__ import annotations

import importlib.util
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from atheria_cli.deploy.formats import Policy
from atheria_cli.deploy.formats.exported import export_program
from atheria_cli.errors import UsageError

EXTRA_PACKAGES = ("onnx", "onnxscript", "onnxruntime")
INPUT_NAME = "obs"
OUTPUT_NAME = "action"


def require() -> None:
    missing = [name for name in EXTRA_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(f"the onnx format needs {', '.join(missing)}: pip install 'atheria-cli[onnx]'")


def build(module: torch.nn.Module, examples: torch.Tensor, path: Path) -> None:
    import onnx

    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)  # it warns about every torchvision op it cannot register
    try:
        with warnings.catch_warnings():
            # torch's own pytree use inside the exporter announces an internal API change on every export
            warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
            program = torch.onnx.export(
                export_program(module, examples),
                (examples,),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamo=True,
                verbose=False,
                external_data=False,
            )
    finally:
        registration.setLevel(level)
    assert program is not None
    program.save(str(path), external_data=False)
    onnx.checker.check_model(str(path), full_check=True)


def load(path: Path) -> Policy:
    require()
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
        raise UsageError(f"{path} is not an ONNX model ONNX Runtime can run ({_first_line(exc)})") from None

    def act(obs: np.ndarray) -> np.ndarray:
        return session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(obs, dtype=np.float32)})[0]

    return act


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
