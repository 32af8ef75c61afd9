"""AOTInductor: the exported program compiled ahead of time into a ``.pt2`` package.

Compiling needs a C++ compiler at export time (the package holds a shared library built for the
export's device, CPU here); loading needs torch only, or libtorch from C++
(``torch::inductor::AOTIModelPackageLoader``, see examples/cpp).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from atheria_cli.deploy.formats import ModuleExport, Program, as_outputs
from atheria_cli.deploy.formats.exported import export_program
from atheria_cli.errors import UsageError


def require() -> None:
    from torch._inductor import config, exc
    from torch._inductor.cpp_builder import cpp_compiler_search

    candidates = config.cpp.cxx if isinstance(config.cpp.cxx, (list, tuple)) else (config.cpp.cxx,)
    try:
        cpp_compiler_search(candidates)
    except exc.InvalidCxxCompiler:
        named = ", ".join(str(name) for name in candidates if name)
        raise UsageError(
            f"--format aoti compiles C++ and needs a C++ compiler ({named} not found): install g++ or set CXX"
        ) from None


def build(capture: ModuleExport, path: Path) -> None:
    program = export_program(capture)
    with warnings.catch_warnings():
        # torch's own pytree use inside the compiler announces an internal API change on every export
        warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
        torch._inductor.aoti_compile_and_package(program, package_path=str(path))


def load(path: Path) -> Program:
    try:
        compiled = torch._inductor.aoti_load_package(str(path))
    except Exception as exc:  # a bad zip, a missing shared library, a package for another device
        raise UsageError(f"{path} is not an AOTInductor package ({_first_line(exc)})") from None

    def run(*inputs: np.ndarray) -> tuple[np.ndarray, ...]:
        with torch.no_grad():
            return as_outputs(compiled(*(torch.as_tensor(array) for array in inputs)))

    return run


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
