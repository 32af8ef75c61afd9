"""Steps per second of the QCA update step: the C++ engine (examples/cpp/qca_engine.cpp) against
Python eager, TorchScript loaded in Python, and ``torch.compile``, on seed 002's grid sizes.

The step is the trainer's (``atheria_cli.trainers.qca.model.build_step``, seeded random weights:
cost does not depend on their values), batch 1, on CPU, every runtime with the same torch thread
count. Each variant is warmed up (the JIT's profiling runs, torch.compile's compile), then each
repeat times a whole loop of ``--steps`` steps; the repeats of all variants are interleaved so a
change of the shared machine's load hits them alike; the table gives the median and the best.
The C++ engine runs as a subprocess (``bench`` mode, its own warm-up each time) and times its
loop itself, so process start and model loading are outside the figure. The 1-minute load
average is read before and after each grid.

Usage: python scripts/bench_qca_engine.py [--grids 32,64,128] [--steps 100] [--repeats 7] [--threads T]
       [--architecture unet --d-state 4 --hidden-channels 16] [--engine build/atheria_qca_engine] [--aoti]
Without --engine it builds examples/cpp with CMake in a temporary folder. --aoti adds the engine
running an AOTInductor package (one C++ compile per grid). Prints a Markdown table
(docs/benchmarks.md holds the measured one).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import torch
from torch import nn

from atheria_cli.deploy.formats import ModuleExport, aoti, torchscript
from atheria_cli.trainers.qca.model import build_step, export_step

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "cpp"
Repeat = Callable[[], float]  # runs one timed loop, returns its wall time in seconds


def build_engine(folder: Path) -> Path:
    cmake = shutil.which("cmake")
    if cmake is None:
        raise SystemExit("building examples/cpp needs CMake (or pass --engine)")
    prefix = f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}"
    for command in (
        [cmake, "-S", str(EXAMPLE), "-B", str(folder), "-DCMAKE_BUILD_TYPE=Release", prefix],
        [cmake, "--build", str(folder), "--target", "atheria_qca_engine"],
    ):
        subprocess.run(command, check=True, capture_output=True)
    return folder / "atheria_qca_engine"


def step_module(architecture: str, d_state: int, hidden: int, grid: int) -> tuple[nn.Module, torch.Tensor]:
    step = build_step(architecture, d_state, hidden)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in step.parameters():
            parameter.copy_(0.2 * torch.randn(parameter.shape, generator=generator))
    parts = 0.5 * torch.randn(2, d_state, grid, grid, generator=generator)
    module, (example,) = export_step(step, torch.complex(parts[0], parts[1]))
    return module, example


def python_loop(step: Callable[[torch.Tensor], torch.Tensor], state: torch.Tensor, steps: int, warmup: int) -> Repeat:
    def loop(count: int) -> float:
        x = state
        start = time.perf_counter()
        with torch.inference_mode():
            for _ in range(count):
                x = step(x)
        return time.perf_counter() - start

    loop(warmup)
    return lambda: loop(steps)


def engine_loop(engine: Path, model: Path, state: Path, steps: int, warmup: int) -> Repeat:
    command = [str(engine), "bench", str(model), str(state), str(steps)]
    options = ["--repeats", "1", "--warmup", str(warmup), "--threads", str(torch.get_num_threads())]

    def loop() -> float:
        completed = subprocess.run([*command, *options], capture_output=True, text=True, check=True)
        return float(json.loads(completed.stdout)["seconds"][0])

    return loop


def variants(args: argparse.Namespace, engine: Path, folder: Path, grid: int) -> tuple[dict[str, Repeat], dict[str, float]]:
    """Each runtime's timed loop for this grid, warmed up, and how long each took to build."""
    module, state = step_module(args.architecture, args.d_state, args.hidden_channels, grid)
    # As `atheria export` captures a trainer's export_module(): every shape fixed.
    capture = ModuleExport(module, (state,), ("x",), ("output",), dynamic_batch=False)
    jit_file, state_file = folder / f"step_{grid}.pt", folder / f"psi_{grid}.pt"
    torch.save(state, state_file)
    torchscript.build(capture, jit_file)
    loops: dict[str, Repeat] = {"Python eager": python_loop(module, state, args.steps, args.warmup)}
    loops["TorchScript in Python"] = python_loop(torch.jit.load(str(jit_file)), state, args.steps, args.warmup)
    torch._dynamo.reset()  # a fresh compile per grid, static shapes: what a user of one grid gets
    started = time.perf_counter()
    loops["torch.compile"] = python_loop(torch.compile(module, dynamic=False), state, args.steps, args.warmup)
    build_s = {"torch.compile": time.perf_counter() - started}
    loops["C++ engine, TorchScript"] = engine_loop(engine, jit_file, state_file, args.steps, args.warmup)
    if args.aoti:
        package = folder / f"step_{grid}.pt2"
        started = time.perf_counter()
        aoti.build(capture, package)
        build_s["C++ engine, AOTInductor"] = time.perf_counter() - started
        loops["C++ engine, AOTInductor"] = engine_loop(engine, package, state_file, args.steps, args.warmup)
    return loops, build_s


def measure(loops: dict[str, Repeat], repeats: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in loops}
    for _ in range(repeats):
        for name, loop in loops.items():
            times[name].append(loop())
    return times


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), platform.processor())
    threads = torch.get_num_threads()
    return (
        f"{model}, {os.cpu_count()} CPUs, {threads} torch threads, torch {torch.__version__}, Python {platform.python_version()}"
    )


def table_row(grid: int, times: dict[str, list[float]], steps: int, load: tuple[float, float]) -> str:
    """Each variant's steps/s, median (best) of its repeats; the best is the loop least disturbed
    by the machine's other work."""
    median = {name: steps / statistics.median(seconds) for name, seconds in times.items()}
    best = {name: steps / min(seconds) for name, seconds in times.items()}
    cells = " | ".join(f"{median[name]:,.0f} ({best[name]:,.0f})" for name in times)
    native, eager = "C++ engine, TorchScript", "Python eager"
    ratio = f"{median[native] / median[eager]:.2f}x ({best[native] / best[eager]:.2f}x)"
    return f"| {grid} | {cells} | {ratio} | {load[0]:.1f}, {load[1]:.1f} |"


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", default="32,64,128")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--warmup", type=int, default=10)
    # The trainer's defaults (atheria/qca).
    parser.add_argument("--architecture", default="unet")
    parser.add_argument("--d-state", type=int, default=4)
    parser.add_argument("--hidden-channels", type=int, default=16)
    parser.add_argument("--engine", type=Path)
    parser.add_argument("--aoti", action="store_true")
    return parser.parse_args()


def main() -> None:
    args = parse_arguments()
    torch.set_num_threads(args.threads)  # the engine gets the same count (engine_loop)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        engine = args.engine or build_engine(folder / "build")
        print(machine())
        model = f"{args.architecture}, d_state {args.d_state}, hidden_channels {args.hidden_channels}, batch 1"
        print(f"{model}, {args.steps} steps a loop, median of {args.repeats}")
        for index, grid in enumerate(int(size) for size in args.grids.split(",")):
            load_before = psutil.getloadavg()[0]
            loops, build_s = variants(args, engine, folder, grid)
            times = measure(loops, args.repeats)
            if index == 0:
                names = " | ".join(f"{name} steps/s, median (best)" for name in times)
                print(f"| grid | {names} | C++ engine / eager | load avg (1 min) before, after |")
                print("|---:|" + "---:|" * (len(times) + 2))
            print(table_row(grid, times, args.steps, (load_before, psutil.getloadavg()[0])))
            for name, seconds in times.items():
                print(f"  {name}: {', '.join(f'{s:.3f}' for s in seconds)} s")
            print("  build s: " + ", ".join(f"{name} {seconds:.1f}" for name, seconds in build_s.items()), flush=True)


if __name__ == "__main__":
    main()
