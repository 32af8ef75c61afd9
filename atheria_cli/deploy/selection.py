"""Which committed checkpoint ``--checkpoint last | best | N`` names (torch-free)."""

from __future__ import annotations

from atheria_cli.config import ExperimentConfig
from atheria_cli.errors import UsageError
from atheria_cli.metrics import best, main_quantity, value_of
from atheria_cli.reports.evaluations import evaluation_scores
from atheria_cli.reports.runs import AgentRun, require_run
from atheria_cli.run.formats import CheckpointEntry
from atheria_cli.run.store import AgentStore


def select_checkpoint(store: AgentStore, agent: str, spec: str, config: ExperimentConfig) -> CheckpointEntry:
    run = require_run(config, agent)
    committed = store.metadata().checkpoints
    if spec == "last":
        latest = store.metadata().latest
        assert latest is not None  # require_run: committed
        return latest
    if spec == "best":
        return _best(run, store, committed, config)
    if not spec.isdigit():
        raise UsageError(f"--checkpoint must be last, best or an episode number (got {spec!r})")
    wanted = int(spec)
    for entry in committed:
        if entry.episode == wanted and not entry.partial:
            return entry
    episodes = ", ".join(str(entry.episode) for entry in sorted(committed, key=lambda e: e.episode) if not entry.partial)
    raise UsageError(f"{agent} has no checkpoint for episode {wanted} (checkpoints: {episodes})")


def _best(run: AgentRun, store: AgentStore, committed: list[CheckpointEntry], config: ExperimentConfig) -> CheckpointEntry:
    """The checkpoint whose evaluation (``train.eval``) scored best on the main metric, else the
    one taken at the end of the best training episode (ties: see :mod:`atheria_cli.metrics`)."""
    quantity = main_quantity(config)
    assert run.history is not None  # require_run: committed
    evaluated = evaluation_scores(run.history, quantity.name, store.metadata().latest)
    values: dict[int, float | None] = dict(evaluated) or {
        record.episode: value_of(record, quantity.name) for record in run.records
    }
    whole = [entry for entry in committed if not entry.partial]
    chosen = best(whole, lambda entry: values.get(entry.episode), quantity.goal, lambda entry: entry.episode)
    if chosen is None:
        raise UsageError(f"{run.agent}: no checkpoint has a {quantity.name} value to rank by; use --checkpoint last or N")
    return chosen
