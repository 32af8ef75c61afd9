"""One line of resources every few episodes: time, throughput, memory, CPU and GPU."""

from __future__ import annotations

import os
from dataclasses import dataclass

import psutil

from atheria_cli.run.formats import ResourceSummary


@dataclass(frozen=True)
class Readout:
    elapsed_seconds: float
    remaining_seconds: float | None
    episodes_per_hour: float
    rss_bytes: int
    cpu_percent: float
    gpu_utilization: float | None = None
    gpu_memory_used: int | None = None
    gpu_memory_total: int | None = None

    def line(self) -> str:
        parts = [f"elapsed {_duration(self.elapsed_seconds)}"]
        if self.remaining_seconds is not None:
            parts.append(f"budget left {_duration(max(0.0, self.remaining_seconds))}")
        parts += [
            f"{self.episodes_per_hour:.1f} episodes/h",
            f"RAM {self.rss_bytes / 2**30:.2f} GiB",
            f"CPU {self.cpu_percent:.0f}%",
        ]
        if self.gpu_utilization is not None:
            parts.append(f"GPU {self.gpu_utilization:.0f}%")
        if self.gpu_memory_used is not None and self.gpu_memory_total:
            parts.append(f"GPU memory {self.gpu_memory_used / 2**30:.2f}/{self.gpu_memory_total / 2**30:.2f} GiB")
        return ", ".join(parts)


class ResourceMonitor:
    def __init__(self, device: str) -> None:
        self.process = psutil.Process(os.getpid())
        self.process.cpu_percent(None)  # the first call only starts the measurement
        self.gpu_index = _gpu_index(device)

    def read(self, elapsed: float, remaining: float | None, episodes: int) -> Readout:
        utilization = used = total = None
        if self.gpu_index is not None:
            utilization, used, total = _nvml(self.gpu_index)
        return Readout(
            elapsed_seconds=elapsed,
            remaining_seconds=remaining,
            episodes_per_hour=episodes / elapsed * 3600.0 if elapsed > 0 else 0.0,
            rss_bytes=self.process.memory_info().rss,
            cpu_percent=self.process.cpu_percent(None),
            gpu_utilization=utilization,
            gpu_memory_used=used,
            gpu_memory_total=total,
        )


def fold_readout(summary: ResourceSummary | None, readout: Readout) -> ResourceSummary:
    """``summary`` with one more reading: running means, peaks, and the readout's line as ``last``.

    A session's history record carries this, so what the monitor saw outlives the terminal
    (``atheria report`` shows it)."""
    count = 1 if summary is None else summary.readings + 1

    def mean(previous: float | None, value: float | None) -> float | None:
        if value is None:
            return previous
        return value if previous is None else previous + (value - previous) / count

    def peak(previous: int | None, value: int | None) -> int | None:
        return previous if value is None else value if previous is None else max(previous, value)

    return ResourceSummary(
        readings=count,
        peak_rss_bytes=max(readout.rss_bytes, summary.peak_rss_bytes if summary else 0),
        mean_cpu_percent=round(mean(summary.mean_cpu_percent if summary else None, readout.cpu_percent) or 0.0, 3),
        mean_gpu_utilization=mean(summary.mean_gpu_utilization if summary else None, readout.gpu_utilization),
        peak_gpu_memory_used=peak(summary.peak_gpu_memory_used if summary else None, readout.gpu_memory_used),
        gpu_memory_total=readout.gpu_memory_total or (summary.gpu_memory_total if summary else None),
        last=readout.line(),
    )


def _gpu_index(device: str) -> int | None:
    if not device.startswith("cuda"):
        return None
    return int(device.partition(":")[2] or 0)


def _nvml(index: int) -> tuple[float | None, int | None, int | None]:
    """GPU utilization and memory through NVML; (None, None, None) when NVML is unavailable."""
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        rates = pynvml.nvmlDeviceGetUtilizationRates(handle)
        memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
        return float(rates.gpu), int(memory.used), int(memory.total)
    except Exception:  # no driver, no permission: the readout simply omits the GPU
        return None, None, None


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
