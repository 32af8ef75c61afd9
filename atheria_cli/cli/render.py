"""Progress bars while training and the closing per-episode table."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

from atheria_cli.cli.console import console, err_console
from atheria_cli.run.formats import CheckpointEntry, EpisodeRecord, EvaluationRecord

if TYPE_CHECKING:
    from tqdm import tqdm

    from atheria_cli.training.planning import TrainPlan
    from atheria_cli.training.session import AgentResult


class ProgressObserver:
    """One tqdm bar per agent on stderr; plain lines instead when stderr is not a terminal."""

    def __init__(self) -> None:
        self._bar: tqdm | None = None
        self._interactive = err_console.is_terminal

    def agent_started(self, agent: str, first_episode: int, episodes: int, resumed_from: str | None) -> None:
        from tqdm import tqdm

        origin = f"resuming from {resumed_from}" if resumed_from else "new run"
        self._line(f"{agent}: episodes {first_episode}–{first_episode + episodes - 1} ({origin})")
        self._bar = tqdm(total=episodes, desc=agent, unit="ep", file=err_console.file, disable=not self._interactive, dynamic_ncols=True)

    def episode_finished(self, agent: str, record: EpisodeRecord) -> None:
        values = {"reward": record.reward, **record.metrics}
        if self._bar is not None and not self._bar.disable:
            self._bar.set_postfix({key: _short(value) for key, value in values.items()}, refresh=False)
            self._bar.update(1)
        else:
            shown = " ".join(f"{key}={_short(value)}" for key, value in values.items())
            self._line(f"{agent} episode {record.episode}: {shown}")

    def checkpoint_committed(self, agent: str, entry: CheckpointEntry) -> None:
        pass

    def evaluation_finished(self, agent: str, record: EvaluationRecord) -> None:
        stats = {"reward": record.reward, **record.metrics}
        shown = " ".join(f"{key}={_short(stat.mean)}±{_short(stat.std)}" for key, stat in stats.items())
        self._line(f"{agent} evaluation at episode {record.episode} ({record.episodes} episodes): {shown}")

    def resources(self, agent: str, line: str) -> None:
        self._line(f"{agent}: {line}")

    def agent_finished(self, agent: str) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def warn(self, message: str) -> None:
        self._line(f"atheria: warning: {message}")

    def _line(self, text: str) -> None:
        if self._bar is not None and not self._bar.disable:
            self._bar.write(text, file=err_console.file)
        else:
            err_console.print(text, markup=False, highlight=False, soft_wrap=True)


def render_summary(plan: "TrainPlan", results: list["AgentResult"]) -> None:
    """The seed's per-episode table: one row per episode, one column per agent."""
    metric = plan.config.env.metrics[0].name if plan.config.env.metrics else "reward"
    by_agent = {result.agent: {record.episode: record for record in result.episodes} for result in results}
    episodes = sorted({episode for records in by_agent.values() for episode in records})
    table = Table(title=f"{plan.config.experiment}: {metric} per episode")
    table.add_column("Episode", justify="right")
    for result in results:
        table.add_column(result.agent, justify="right")
    for episode in episodes:
        cells = [_cell(by_agent[result.agent].get(episode), metric) for result in results]
        table.add_row(str(episode), *cells)
    console.print(table)
    baseline = plan.config.baseline.get(metric)
    goal = plan.config.env.metrics[0].goal if plan.config.env.metrics else "max"
    for result in results:
        where = result.last_checkpoint.file if result.last_checkpoint else "no checkpoint"
        folder = plan.config.run_dir / result.agent
        versus = _versus_baseline(result.episodes, metric, baseline, goal) if baseline is not None else ""
        console.print(f"{result.agent}: {len(result.episodes)} episode(s){versus}, last checkpoint {folder / where}", markup=False)


def _versus_baseline(records: list[EpisodeRecord], metric: str, baseline: float, goal: str) -> str:
    values = [value for record in records if (value := (record.reward if metric == "reward" else record.metrics.get(metric))) is not None]
    if not values:
        return ""
    mean = sum(values) / len(values)
    better = (baseline - mean) if goal == "min" else (mean - baseline)
    verdict = "better" if better >= 0 else "worse"
    percent = f" ({abs(100 * better / baseline):.1f} % {verdict})" if baseline else ""
    return f", mean {metric} {mean:.4g} vs baseline {baseline:.4g}{percent}"


def _cell(record: EpisodeRecord | None, metric: str) -> str:
    if record is None:
        return ""
    value = record.reward if metric == "reward" else record.metrics.get(metric)
    return _short(value)


def _short(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.4g}" if abs(value) < 1e-3 or abs(value) >= 1e5 else f"{value:.2f}"
