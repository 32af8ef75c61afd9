"""Progress bars while training and the closing per-episode table."""

from __future__ import annotations

import contextlib
import warnings
from typing import TYPE_CHECKING, TextIO

from rich.table import Table

from atheria_cli.cli.console import console, err_console
from atheria_cli.metrics import Quantity, improvement, main_quantity, percent_of, value_of, verdict
from atheria_cli.run.formats import CheckpointEntry, EpisodeRecord, EvaluationRecord

if TYPE_CHECKING:
    from tqdm import tqdm

    from atheria_cli.training.planning import TrainPlan
    from atheria_cli.training.session import AgentResult


class ProgressObserver:
    """One tqdm bar per running agent on stderr; plain lines instead when stderr is not a terminal.

    Every line printed while a bar is live goes through tqdm's writer, which clears the bars, prints
    the line and redraws them below it. A bar is never left on screen at its own position: with
    parallel jobs each bar owns a line (``position``), and a bar that tqdm leaves behind there is not
    cleared by the next write, which then prints over a stale copy. So each bar is cleared when its
    agent ends and its final state is printed through the writer as an ordinary line. Use it as a
    context manager: on exit every bar still open is closed, so nothing printed afterwards (the
    closing table) lands on a bar.
    """

    def __init__(self) -> None:
        self._bars: dict[str, tqdm] = {}
        self._slots: dict[str, int] = {}  # a bar's line, so parallel jobs' bars do not overwrite each other
        self._interactive = err_console.is_terminal
        self._restore = contextlib.ExitStack()

    def __enter__(self) -> ProgressObserver:
        # A Python warning raised in this process while bars are live is printed above them too.
        self._restore.enter_context(warnings.catch_warnings())
        warnings.showwarning = self._show_warning
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
        self._restore.close()

    def close(self) -> None:
        """End every bar still open (a job that died sends no ``agent_finished``)."""
        for agent in list(self._bars):
            self.agent_finished(agent)

    def agent_started(self, agent: str, first_episode: int, episodes: int | None, resumed_from: str | None) -> None:
        from tqdm import tqdm

        origin = f"resuming from {resumed_from}" if resumed_from else "new run"
        last = f"–{first_episode + episodes - 1}" if episodes is not None else " until the timestep target"
        self._line(f"{agent}: episodes {first_episode}{last} ({origin})")
        slot = min(set(range(len(self._slots) + 1)) - set(self._slots.values()))
        self._slots[agent] = slot
        self._bars[agent] = tqdm(
            total=episodes,
            desc=agent,
            unit="ep",
            file=err_console.file,
            disable=not self._interactive,
            dynamic_ncols=True,
            position=slot,
            leave=False,  # cleared on close; agent_finished prints the final state as a line
        )

    def episode_finished(self, agent: str, record: EpisodeRecord) -> None:
        values = {"reward": record.reward, **record.metrics}
        bar = self._bars.get(agent)
        if bar is not None and not bar.disable:
            bar.set_postfix({key: _short(value) for key, value in values.items()}, refresh=False)
            bar.update(1)
        else:
            shown = " ".join(f"{key}={_short(value)}" for key, value in values.items())
            self._line(f"{agent} episode {record.episode}: {shown}")

    def checkpoint_committed(self, agent: str, entry: CheckpointEntry) -> None:
        pass

    def evaluation_finished(self, agent: str, record: EvaluationRecord) -> None:
        stats = {"reward": record.reward, **record.metrics}
        # A trainer's evaluate gives one value per metric: no spread to show.
        shown = " ".join(
            f"{key}={_short(stat.mean)}" + ("" if stat.std is None else f"±{_short(stat.std)}") for key, stat in stats.items()
        )
        self._line(f"{agent} evaluation at episode {record.episode} ({record.episodes} episodes): {shown}")

    def resources(self, agent: str, line: str) -> None:
        self._line(f"{agent}: {line}")

    def agent_finished(self, agent: str) -> None:
        bar = self._bars.pop(agent, None)
        self._slots.pop(agent, None)
        if bar is None:
            return
        if bar.disable:
            bar.close()
            return
        final = str(bar)
        bar.close()
        # Clearing a bar below the first line leaves the cursor at the end of the line above it.
        err_console.file.write("\r")
        self._line(final)

    def warn(self, message: str) -> None:
        self._line(f"atheria: warning: {message}")

    def _show_warning(
        self,
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        self._line(warnings.formatwarning(message, category, filename, lineno, line).rstrip("\n"))

    def _line(self, text: str) -> None:
        bar = next(iter(self._bars.values()), None)
        if bar is not None and not bar.disable:
            bar.write(text, file=err_console.file)
        else:
            err_console.print(text, markup=False, highlight=False, soft_wrap=True)


def render_summary(plan: TrainPlan, results: list[AgentResult]) -> None:
    """The seed's per-episode table: one row per episode, one column per agent."""
    quantity = main_quantity(plan.config)
    metric = quantity.name
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
    for result in results:
        where = result.last_checkpoint.file if result.last_checkpoint else "no checkpoint"
        folder = plan.config.run_dir / result.agent
        versus = _versus_baseline(result.episodes, quantity, baseline) if baseline is not None else ""
        console.print(
            f"{result.agent}: {len(result.episodes)} episode(s){versus}, last checkpoint {folder / where}", markup=False
        )


def _versus_baseline(records: list[EpisodeRecord], quantity: Quantity, baseline: float) -> str:
    values = [value for record in records if (value := value_of(record, quantity.name)) is not None]
    if not values:
        return ""
    mean = sum(values) / len(values)
    gain = improvement(mean, baseline, quantity.goal)
    percent = percent_of(gain, baseline)
    shown = f" ({abs(percent):.1f} % {verdict(gain)})" if percent is not None else ""
    return f", mean {quantity.name} {mean:.4g} vs baseline {baseline:.4g}{shown}"


def _cell(record: EpisodeRecord | None, metric: str) -> str:
    return "" if record is None else _short(value_of(record, metric))


def _short(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.4g}" if abs(value) < 1e-3 or abs(value) >= 1e5 else f"{value:.2f}"
