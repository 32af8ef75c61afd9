"""Fixtures shared by the integration tests: the C++ examples, configured once per session."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

CPP_EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "cpp"


def _run(command: list[str]) -> None:
    completed = subprocess.run(command, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]


@pytest.fixture(scope="session")
def cpp_program(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``build(target) -> executable``: examples/cpp configured with CMake against the installed
    torch wheel (torch.utils.cmake_prefix_path) in one temporary folder, each program compiled
    on first use, so a session that needs one program does not pay for the other (a compile
    takes tens of seconds on 2 cores). Skips with the reason where CMake or a compiler is missing.
    """
    cmake = shutil.which("cmake", path="/usr/bin") or shutil.which("cmake")
    compiler = shutil.which("c++") or shutil.which("g++")
    if cmake is None or compiler is None:
        pytest.skip(f"building examples/cpp needs CMake and a C++ compiler (cmake: {cmake}, c++: {compiler})")
    build = tmp_path_factory.mktemp("cpp-build")
    prefix = f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}"
    _run([cmake, "-S", str(CPP_EXAMPLES), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release", prefix])
    built: dict[str, Path] = {}

    def program(target: str) -> Path:
        if target not in built:
            _run([cmake, "--build", str(build), "--target", target])
            built[target] = build / target
        return built[target]

    return program
