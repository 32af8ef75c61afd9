"""ONNX through torch's dynamo-based exporter (``torch.onnx.export(..., dynamo=True)``), checked
with ``onnx.checker`` and run with ONNX Runtime. Needs the ``onnx`` extra.

The graph's inputs and outputs are named as the capture names them (a policy's ``obs`` and
``action``); loading feeds the arrays to the graph's inputs in order, each as the type the
graph declares. ONNX has no complex tensors: a module taking or returning one cannot be exported."""

from __future__ import annotations

import importlib.util
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from atheria_cli.deploy.formats import ModuleExport, Program
from atheria_cli.deploy.formats.exported import export_program
from atheria_cli.errors import UsageError

EXTRA_PACKAGES = ("onnx", "onnxscript", "onnxruntime")
# ONNX Runtime's names of the element types a graph input may declare.
INPUT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int16)": np.int16,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}


def require() -> None:
    missing = [name for name in EXTRA_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(f"the onnx format needs {', '.join(missing)}: pip install 'atheria-cli[onnx]'")


def build(capture: ModuleExport, path: Path) -> None:
    import onnx

    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)  # it warns about every torchvision op it cannot register
    try:
        with warnings.catch_warnings():
            # torch's own pytree use inside the exporter announces an internal API change on every export
            warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
            program = torch.onnx.export(
                export_program(capture),
                capture.examples,
                input_names=list(capture.input_names),
                output_names=list(capture.output_names),
                dynamo=True,
                verbose=False,
                external_data=False,
            )
    finally:
        registration.setLevel(level)
    assert program is not None
    program.save(str(path), external_data=False)
    onnx.checker.check_model(str(path), full_check=True)


def load(path: Path) -> Program:
    require()
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
        raise UsageError(f"{path} is not an ONNX model ONNX Runtime can run ({_first_line(exc)})") from None

    declared = [(item.name, INPUT_TYPES.get(item.type)) for item in session.get_inputs()]

    def run(*inputs: np.ndarray) -> tuple[np.ndarray, ...]:
        feed = {name: np.ascontiguousarray(array, dtype=dtype) for (name, dtype), array in zip(declared, inputs, strict=True)}
        return tuple(np.asarray(output) for output in session.run(None, feed))

    return run


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
