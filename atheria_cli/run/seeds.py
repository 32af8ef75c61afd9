"""Multi-seed experiments: each seed is a replicate of the whole experiment in its own folder.

A seed's replicate is described by an ordinary single-seed config whose ``experiment`` is
``<experiment>/seed_<S>`` and whose ``seed`` is S, so everything that works on a run (layout,
locks, retention, mirror, verify, the reports) works on it unchanged. Torch-free.
"""

from __future__ import annotations

from atheria_cli.config import ExperimentConfig
from atheria_cli.errors import UsageError
from atheria_cli.run.layout import seed_dir_name, seeds_in


def seed_config(config: ExperimentConfig, seed: int) -> ExperimentConfig:
    """The single-seed config of one replicate (its folder is ``<run_dir>/seed_<S>``)."""
    experiment = f"{config.experiment}/{seed_dir_name(seed)}"
    return config.model_copy(update={"experiment": experiment, "seed": seed, "seeds": None})


def replicates(config: ExperimentConfig) -> list[tuple[int | None, ExperimentConfig]]:
    """Each seed with its config; a config without ``seeds`` is its own single replicate."""
    if config.seeds is None:
        return [(None, config)]
    return [(seed, seed_config(config, seed)) for seed in config.seeds]


def parse_seeds(text: str) -> tuple[int, ...]:
    """``0-4`` or ``0,3`` or ``1,5-7`` (the ``--seeds`` option)."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            low, dash, high = part.strip().partition("-")
            first, last = int(low), int(high) if dash else int(low)
            if first < 0 or last < first:
                raise ValueError
            seeds.extend(range(first, last + 1))
    except ValueError:
        raise UsageError(f"--seeds {text!r}: expected seeds like 0-4 or 0,3 (non-negative, ranges low-high)") from None
    if len(set(seeds)) != len(seeds):
        raise UsageError(f"--seeds {text!r}: a seed appears twice")
    return tuple(seeds)


def run_seeds(config: ExperimentConfig) -> list[int]:
    """The seeds of this experiment: its ``seeds``, and any seed folder found on disk."""
    return sorted(set(config.seeds or ()) | set(seeds_in(config.run_dir)))


def every_replicate(config: ExperimentConfig) -> list[tuple[str, ExperimentConfig]]:
    """For commands over every run (verify, prune): each seed's config with its label prefix
    ``seed_<S>/``, or the config itself and no prefix without seeds."""
    seeds = run_seeds(config)
    if not seeds:
        return [("", config)]
    return [(f"{seed_dir_name(seed)}/", seed_config(config, seed)) for seed in seeds]


def config_for_seed(config: ExperimentConfig, seed: int | None, option: str = "--seed") -> ExperimentConfig:
    """The config a reading command (history, status, eval, export-jit) works on.

    ``--seed S`` picks one replicate; a multi-seed experiment addressed without it is a usage
    error that lists the seeds, since the command would not know which run to read.
    """
    seeds = run_seeds(config)
    if seed is None:
        if seeds:
            listed = ", ".join(str(each) for each in seeds)
            raise UsageError(f"{config.experiment} has several seeds ({listed}): pick one with {option} S")
        return config
    if seed not in seeds:
        known = f"its seeds are {', '.join(str(each) for each in seeds)}" if seeds else f"it has no seeds (omit {option})"
        raise UsageError(f"{option} {seed}: {config.experiment} has no run for seed {seed}; {known}")
    return seed_config(config, seed)
