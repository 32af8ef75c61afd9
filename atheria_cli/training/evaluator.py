"""When ``train.eval`` evaluates: the session's half of evaluation (the trainer's
:meth:`~atheria_cli.trainers.base.Trainer.evaluation` runs the episodes)."""

from __future__ import annotations


def evaluation_due(every: int, last_evaluated: int, episode: int) -> bool:
    """Whether a multiple of ``every`` lies in (last_evaluated, episode]."""
    return episode // every > last_evaluated // every
