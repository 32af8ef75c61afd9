"""Wall time of the README's first command: ``atheria train --episodes 5`` on the default config.

Runs the installed ``atheria`` in a fresh temporary directory (so the packaged default config is
used, as after ``pip install``), ``--repeats`` times, and prints a Markdown table.

Usage: python scripts/bench_default_train.py [--repeats 3] [--episodes 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=5)
    args = parser.parse_args()
    command = [sys.executable, "-m", "atheria_cli", "train", "--episodes", str(args.episodes)]
    times = []
    for _ in range(args.repeats):
        folder = tempfile.mkdtemp(prefix="atheria-bench-")
        try:
            started = time.perf_counter()
            subprocess.run(command, cwd=folder, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times.append(time.perf_counter() - started)
        finally:
            shutil.rmtree(folder)
    print(
        f"`atheria train --episodes {args.episodes}`, default config (A2C, SAC, PPO on atheria/BuildingCO2-v0, "
        f"168-step episodes), CPU; {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print()
    print("| repeats | median wall time | all runs | target |")
    print("|---|---|---|---|")
    print(f"| {args.repeats} | {statistics.median(times):.1f} s | {', '.join(f'{t:.1f}' for t in times)} s | < 120 s |")


if __name__ == "__main__":
    main()
