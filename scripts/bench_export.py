"""Inference cost of each export format against ``model.predict``: single-observation latency and
batch-256 throughput, on CPU.

The policy is SAC's with SB3's defaults (256x256 MLP, squashed Gaussian actor) on Pendulum-v1,
wrapped like ``atheria export`` wraps it (action rescaling folded in), exported in every format
through atheria's own format modules and loaded back with their loaders (the callables
``atheria eval --export`` uses: numpy in, numpy out, conversion included). Latency is the median
over ``--calls`` calls on one observation; throughput is observations per second over calls on a
batch of 256. The weights are untrained: cost does not depend on their values.

Usage: python scripts/bench_export.py [--calls 2000] [--batch-calls 200] [--formats torchscript,exported,aoti,onnx]
Prints a Markdown table (docs/benchmarks.md holds the measured one).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from stable_baselines3 import SAC

from atheria_cli.deploy.formats import DEFAULT_FILES, ModuleExport, export_format
from atheria_cli.trainers.sb3.deploy import policy_module, sample_observations

Policy = Callable[[np.ndarray], np.ndarray]


def timed_calls(policy: Policy, observations: np.ndarray, calls: int) -> list[float]:
    for _ in range(min(50, calls)):  # warm-up: lazy initialisation, allocator, caches
        policy(observations)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        policy(observations)
        times.append(time.perf_counter() - start)
    return times


def measure(
    name: str, policy: Policy, single: np.ndarray, batch: np.ndarray, calls: int, batch_calls: int, build_s: float | None
) -> str:
    latency = timed_calls(policy, single, calls)
    batched = timed_calls(policy, batch, batch_calls)
    throughput = len(batch) * len(batched) / sum(batched)
    p90 = sorted(latency)[int(0.9 * len(latency))]
    build = "–" if build_s is None else f"{build_s:.1f}"
    return f"| {name} | {1e6 * statistics.median(latency):.0f} | {1e6 * p90:.0f} | {throughput:,.0f} | {build} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--batch-calls", type=int, default=200)
    parser.add_argument("--formats", default="torchscript,exported,aoti,onnx")
    args = parser.parse_args()

    model = SAC("MlpPolicy", "Pendulum-v1", device="cpu", seed=0)
    observations = sample_observations(model, seed=0)
    single, batch = observations[:1], observations[:256]
    threads = torch.get_num_threads()
    print(f"{platform.machine()}, {threads} torch threads, Python {platform.python_version()}, torch {torch.__version__}")
    print("| policy | latency median µs (1 obs) | latency p90 µs | throughput obs/s (batch 256) | export s |")
    print("|---|---:|---:|---:|---:|")

    def predict(obs: np.ndarray) -> np.ndarray:
        return model.predict(obs, deterministic=True)[0]

    print(measure("model.predict", predict, single, batch, args.calls, args.batch_calls, None), flush=True)
    module = policy_module(model, None)
    with tempfile.TemporaryDirectory() as folder:
        for name in args.formats.split(","):
            exporter = export_format(name)
            exporter.require()
            path = Path(folder) / DEFAULT_FILES[name]
            start = time.perf_counter()
            capture = ModuleExport(module, (torch.as_tensor(observations[:8]),), ("obs",), ("action",), dynamic_batch=True)
            exporter.build(capture, path)
            build_s = time.perf_counter() - start
            label = {"onnx": "ONNX Runtime"}.get(name, name)
            program = exporter.load(path)

            def policy(obs: np.ndarray, program: Callable[..., tuple[np.ndarray, ...]] = program) -> np.ndarray:
                return program(obs)[0]

            print(measure(label, policy, single, batch, args.calls, args.batch_calls, build_s), flush=True)


if __name__ == "__main__":
    main()
