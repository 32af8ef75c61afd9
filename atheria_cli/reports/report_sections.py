"""``atheria report``: what each section of the document says, as blocks (:mod:`.report_document`).

Each section is a function from the gathered report (:mod:`.report_data`) to blocks, listed in
:data:`SECTIONS` in the order the document shows them. A new section (the tune study's
is one) is one more such function, with what it reads added to
:func:`.report_data.gather_report`; the writers need no change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import yaml

from atheria_cli.config import ExperimentConfig
from atheria_cli.metrics import Quantity
from atheria_cli.reports.compare import CompareReport, CompareRow
from atheria_cli.reports.report_data import CheckpointInfo, ExperimentReport, RunInfo, SessionInfo
from atheria_cli.reports.report_document import Block, Heading, Image, Paragraph, Preformatted, Table
from atheria_cli.reports.seeds import SeedsCompareReport, SeedsRow
from atheria_cli.reports.text import duration, number, size
from atheria_cli.reports.text import episode_span as span
from atheria_cli.run.formats import ResourceSummary
from atheria_cli.run.store import RunState

TUNE_PREFIX = "tune_"  # the study's own plots, copied in: tune_history.png, tune_importance.png
Section = Callable[[ExperimentReport, ExperimentConfig], list[Block]]
OVERVIEW_FIGURE = "all_agents.png"  # the names of the figures (Markdown: files beside the report)
CURVE_PREFIX = "curve_"  # + agent + .png


def is_figure_name(name: str) -> bool:
    """Whether ``name`` is one a report gives a figure (and an earlier report's may be removed)."""
    return name == OVERVIEW_FIGURE or (name.startswith((CURVE_PREFIX, TUNE_PREFIX)) and name.endswith(".png"))


def compose(report: ExperimentReport, config: ExperimentConfig) -> list[Block]:
    """The whole document: the title, then every section in order."""
    blocks: list[Block] = [Heading(f"atheria report: {report.experiment}", level=1)]
    for section in SECTIONS:
        blocks += section(report, config)
    return blocks


def _label(run: RunInfo) -> str:
    return run.agent if run.seed is None else f"{run.agent}, seed {run.seed}"


def _better(quantity: Quantity) -> str:
    return f"{quantity.name} ({'higher' if quantity.goal == 'max' else 'lower'} is better)"


# --- overview -------------------------------------------------------------------------------------


def overview(report: ExperimentReport, config: ExperimentConfig) -> list[Block]:
    blocks: list[Block] = [
        Paragraph(
            f"Run folder {report.run_dir}, reported {report.generated.replace('T', ' ', 1)} by atheria {report.atheria_version}. "
            f"Agents are judged by {_better(report.main)}. Every number is as of each run's last committed checkpoint."
        )
    ]
    holders: dict[str, list[str]] = {}
    for run in report.runs:
        if run.training_now:
            holders.setdefault(run.training_now, []).append(_label(run))
    for holder, labels in holders.items():
        blocks.append(
            Paragraph(
                f"A training session ({holder}) holds the lock of {', '.join(labels)}: episodes it has not committed yet are not here."
            )
        )
    seeded = bool(report.seeds)
    columns = ["Agent", *(["Seed"] if seeded else []), "Algorithm", "State", "Episodes", "Timesteps", "Sessions", "Time"]
    rows = []
    for run in report.runs:
        seed = [str(run.seed)] if seeded else []
        if run.latest is None:
            rows.append([run.agent, *seed, run.algo, run.state.value, "", "", "", ""])
            continue
        seconds = sum(session.row.duration_seconds for session in run.sessions)
        latest = run.latest.entry
        counts = [str(latest.episode), str(latest.timesteps), str(len(run.sessions)), duration(seconds)]
        rows.append([run.agent, *seed, run.algo, run.state.value, *counts])
    return [*blocks, Heading("Runs"), Table(columns, rows, numeric=frozenset(("Episodes", "Timesteps", "Sessions", "Time")))]


# --- comparison -----------------------------------------------------------------------------------


def comparison(report: ExperimentReport, config: ExperimentConfig) -> list[Block]:
    blocks: list[Block] = [Heading("Comparison")]
    for item in report.comparisons:
        blocks.append(Heading(_better(item.metric), level=3))
        blocks += _seeds_table(item) if isinstance(item, SeedsCompareReport) else _compare_table(item)
    return blocks


def _verdict_cells(
    mean: float | None, improvement: float | None, percent: float | None, verdict: str | None, baseline: float
) -> list[str]:
    if mean is None or improvement is None:
        return ["", "", ""]
    moved = mean - baseline
    arrow = "↑" if moved > 0 else "↓" if moved < 0 else "="
    share = f" ({abs(percent):.1f} %)" if percent is not None else ""
    return [f"{number(baseline)} → {number(mean)}", f"{arrow} {number(abs(moved))}{share}", verdict or ""]


def _scored_by(row: CompareRow, window: int) -> str:
    if row.kind == "reference":
        return f"reference policy, {row.episodes} evaluation episodes (atheria eval)"
    if row.source == "evaluation":
        return f"{row.episodes} evaluation episodes at episode {span(row.first_episode, row.last_episode)}"
    if row.mean is None:
        return row.state.value if row.state is not RunState.COMMITTED else "no value"
    return f"training episodes {span(row.first_episode, row.last_episode)} (last {window})"


def _compare_table(item: CompareReport) -> list[Block]:
    columns = ["Agent", "Scored by", "Mean ± std"]
    if item.baseline is not None:
        columns += ["vs baseline", "Change", "Verdict"]
    rows = []
    for row in item.agents:
        name = f"{row.agent} (reference)" if row.kind == "reference" else row.agent
        cells = [name, _scored_by(row, item.window), "" if row.mean is None else f"{number(row.mean)} ± {number(row.std)}"]
        if item.baseline is not None:
            cells += _verdict_cells(row.mean, row.improvement, row.improvement_percent, row.verdict, item.baseline)
        rows.append(cells)
    return [Table(columns, rows, numeric=frozenset(("Mean ± std", "vs baseline", "Change"))), *_compare_notes(item)]


def _compare_notes(item: CompareReport | SeedsCompareReport) -> list[Block]:
    notes = []
    if item.baseline is None:
        notes.append(f"No baseline for {item.metric.name} (the config adds one with baseline: {{{item.metric.name}: VALUE}}).")
    if item.best_agent is not None:
        notes.append(f"Best agent: {item.best_agent}{_better_references(item)}.")
    return [Paragraph(" ".join(notes), note=True)] if notes else []


def _better_references(item: CompareReport | SeedsCompareReport) -> str:
    """``"; the reference heuristic scores better"`` when a reference policy beats the best agent:
    "best" ranks the agents only, and a reader must not take it for the best policy."""
    if not isinstance(item, CompareReport):
        return ""
    best = next(row for row in item.agents if row.agent == item.best_agent and row.kind == "agent")
    sign = -1 if item.metric.goal == "min" else 1
    better = [
        row.agent
        for row in item.agents
        if row.kind == "reference" and row.mean is not None and best.mean is not None and sign * (row.mean - best.mean) > 0
    ]
    if not better:
        return ""
    return f"; the reference{'s' if len(better) > 1 else ''} {', '.join(better)} score{'' if len(better) > 1 else 's'} better"


def _interval(interval: tuple[float, float] | None) -> str:
    return "–" if interval is None else f"[{number(interval[0])}, {number(interval[1])}]"


def _seeds_row(row: SeedsRow, item: SeedsCompareReport) -> list[str]:
    stats = row.statistics
    counted = f"{len(row.scores)}/{len(row.seeds)}"
    per_seed = ", ".join(f"{seed.seed}: {number(seed.score)}" for seed in row.seeds)
    if stats is None:
        cells = [row.agent, counted, *[""] * 6]
    else:
        cells = [
            row.agent,
            counted,
            f"{number(stats.mean)} ± {number(stats.std)}",
            number(stats.iqm),
            _interval(stats.mean_ci),
            _interval(stats.iqm_ci),
            f"{number(stats.minimum)} – {number(stats.maximum)}",
            per_seed,
        ]
    if item.baseline is not None:
        mean = stats.mean if stats else None
        cells += _verdict_cells(mean, row.improvement, row.improvement_percent, row.verdict, item.baseline)
    best = "–" if row.agent == item.best_agent or row.beats_best is None else f"{row.beats_best:.2f}"
    return [*cells, best]


def _seeds_table(item: SeedsCompareReport) -> list[Block]:
    columns = ["Agent", "Seeds", "Mean ± std", "IQM", "95 % CI mean", "95 % CI IQM", "Min – max", "Per seed"]
    if item.baseline is not None:
        columns += ["vs baseline", "Change", "Verdict"]
    columns.append("P(beats best)")
    rows = [_seeds_row(row, item) for row in item.agents]
    for reference in item.references:
        spread = f"{number(reference.mean)} ± {number(reference.std)}"
        rows.append([f"{reference.agent} (reference)", f"{reference.episodes} eval", spread, *[""] * (len(columns) - 3)])
    numeric = frozenset(columns) - {"Agent", "Per seed", "Verdict"}
    seeds = ", ".join(str(seed) for seed in item.seeds)
    note = (
        f"Each seed scores the mean of its last {item.window} training episodes; seeds {seeds}. "
        f"IQM: the interquartile mean. CIs: 95 % percentile bootstrap over seeds ({item.resamples} resamples). "
        "P(beats best): the chance that a seed of the agent beats a seed of the best agent (ties ½)."
    )
    if item.few_seeds:
        note += f" Only {len(item.seeds)} seed(s): the intervals are wide; 5 or more make them useful."
    return [Table(columns, rows, numeric=numeric), Paragraph(note, note=True), *_compare_notes(item)]


# --- learning curves ------------------------------------------------------------------------------


def learning_curves(report: ExperimentReport, config: ExperimentConfig) -> list[Block]:
    from atheria_cli.reports.report_figures import agent_png, overview_png  # matplotlib loads here

    blocks: list[Block] = [Heading("Learning curves")]
    together = overview_png(config)
    if together is not None:
        blocks.append(Image(OVERVIEW_FIGURE, together, f"every agent's {report.main.name}, rolling mean"))
    for agent in config.agents:
        blocks.append(Heading(agent, level=3))
        png = agent_png(report.runs_of(agent))
        if png is None:
            blocks.append(Paragraph(f"{agent} has no committed run.", note=True))
        else:
            blocks.append(Image(f"{CURVE_PREFIX}{agent}.png", png, f"learning curve of {agent}"))
    return blocks


# --- checkpoints and exports ----------------------------------------------------------------------


def checkpoints(report: ExperimentReport, config: ExperimentConfig) -> list[Block]:
    columns = ["Run", "Checkpoint", "File", "Episode", "Timesteps", report.main.name, "Size", "Created", "sha256"]
    rows = []
    for run in report.committed:
        picked: list[tuple[str, CheckpointInfo]] = []
        if run.latest is not None:
            same = run.best is not None and run.best.entry.file == run.latest.entry.file
            picked.append(("latest and best" if same else "latest", run.latest))
        if run.best is not None and not (run.latest and run.best.entry.file == run.latest.entry.file):
            picked.append(("best", run.best))
        rows += [_checkpoint_row(_label(run), which, info) for which, info in picked]
    kept = ", ".join(f"{_label(run)} {run.checkpoints}" for run in report.committed)
    note = (
        f"Best: by evaluation (train.eval) where a run has them, else by training episode, as --checkpoint best picks it. "
        f"Checkpoints kept per folder (train.keep): {kept}."
    )
    table = Table(
        columns,
        rows,
        numeric=frozenset(("Episode", "Timesteps", report.main.name, "Size")),
        code=frozenset(("File", "sha256")),
        hashes=frozenset(("sha256",)),
    )
    return [Heading("Checkpoints"), table, Paragraph(note, note=True)]


def _checkpoint_row(label: str, which: str, info: CheckpointInfo) -> list[str]:
    entry = info.entry
    score = number(info.score) + (" (eval)" if info.scored_by == "evaluation" else "") if info.score is not None else "–"
    created = entry.created.replace("T", " ", 1)
    return [label, which, entry.file, str(entry.episode), str(entry.timesteps), score, size(entry.size), created, entry.sha256]


def exports(report: ExperimentReport, config: ExperimentConfig) -> list[Block]:
    columns = ["Run", "Format", "File", "Size", "sha256", "From checkpoint", "Max |Δ| vs predict", "Exported", "Check"]
    rows = []
    for run in report.committed:
        for item in run.exports:
            check = "matches" if item.state == "ok" else f"{item.state}: {item.problem}"
            source = item.source_checkpoint.rsplit("/", 1)[-1] if item.source_checkpoint else "–"
            diff = "–" if item.max_abs_diff is None else f"{item.max_abs_diff:.2g}"
            exported = (item.exported or "–").replace("T", " ", 1)
            cells = [item.format or "–", item.file or "–", size(item.size), item.sha256 or "–", source, diff, exported, check]
            rows.append([_label(run), *cells])
    if not rows:
        return [
            Heading("Exports"),
            Paragraph(
                "No exported policy in the agents' folders. atheria export writes one there with its .json sidecar "
                "(a file written elsewhere with --output is not found here)."
            ),
        ]
    table = Table(
        columns,
        rows,
        numeric=frozenset(("Size", "Max |Δ| vs predict")),
        code=frozenset(("File", "sha256", "From checkpoint")),
        hashes=frozenset(("sha256",)),
    )
    note = "Each file's sha256 is checked against its sidecar as this report is made."
    return [Heading("Exports"), table, Paragraph(note, note=True)]


# --- the tune study --------------------------------------------------------------------------------


def tune_study(report: ExperimentReport, config: ExperimentConfig) -> list[Block]:
    study = report.study
    if study is None:
        return []
    text = (
        f"Study {study.study} ({study.folder}), as its last report (atheria tune, or atheria tune --report) wrote "
        "trials.csv: every trial, with the interrupted attempts that were retried."
    )
    numeric = frozenset(("number", "trial", "value", "episodes", "seconds"))
    blocks: list[Block] = [Heading("Tune study"), Paragraph(text), Table(study.columns, study.rows, numeric=numeric)]
    if study.best_yaml is not None:
        blocks += [Paragraph("The best trial's entry (best.yaml), to paste under agents:"), Preformatted(study.best_yaml, "yaml")]
    for name, png in study.figures.items():
        blocks.append(Image(f"{TUNE_PREFIX}{name}", png, f"tune study {study.study}: {name.removesuffix('.png')}"))
    return blocks


# --- sessions and resources -----------------------------------------------------------------------


def sessions(report: ExperimentReport, config: ExperimentConfig) -> list[Block]:
    blocks: list[Block] = [Heading("Sessions")]
    columns = [
        "#",
        "Episodes",
        "Count",
        "Device",
        "Threads",
        "Duration",
        "Evaluating",
        "Episodes/hour",
        "Started",
        "atheria",
        "Start",
    ]
    numeric = frozenset(("#", "Count", "Threads", "Duration", "Evaluating", "Episodes/hour"))
    for run in report.committed:
        rows = [_session_row(session) for session in run.sessions]
        blocks += [Heading(_label(run), level=3), Table(columns, rows, numeric=numeric)]
    note = "Episodes/hour: over the session's wall time, evaluations included. Threads: torch's, where recorded."
    return [*blocks, Paragraph(note, note=True)]


def _session_row(session: SessionInfo) -> list[str]:
    row = session.row
    start = (
        f"forked from {row.forked_from}"
        if row.forked_from
        else f"adopted from {row.adopted_from}; not exact"
        if row.adopted_from
        else f"resumed from {row.resumed_from}"
        if row.resumed_from
        else "new run"
    )
    rate = "–" if session.episodes_per_hour is None else f"{session.episodes_per_hour:.1f}"
    return [
        str(row.session),
        span(row.start_episode, row.end_episode),
        str(row.episodes),
        row.device,
        "–" if session.threads is None else str(session.threads),
        duration(row.duration_seconds),
        duration(row.eval_seconds) if row.eval_seconds else "–",
        rate,
        row.timestamp.replace("T", " ", 1),
        session.atheria_version or "–",
        start,
    ]


def resources(report: ExperimentReport, config: ExperimentConfig) -> list[Block]:
    readings = [
        [_label(run), str(index), *_resource_cells(session.resources)]
        for run in report.committed
        for index, session in enumerate(run.sessions, start=1)
        if session.resources is not None
    ]
    columns = ["Run", "Devices", "Threads", "Episodes", "Time", "Episodes/hour"]
    rows = [_throughput_row(run) for run in report.committed]
    table = Table(columns, rows, numeric=frozenset(("Threads", "Episodes", "Time", "Episodes/hour")))
    if not readings:
        state = f"ran every {report.monitor_every} episodes" if report.monitor_every else "was off"
        text = (
            f"The resource monitor {state} (train.monitor_every) and no session recorded readings. "
            "What the run records: each session's device, threads and episodes per hour."
        )
        return [Heading("Resources"), Paragraph(text), table]
    monitored = Table(
        ["Run", "Session", "Readings", "Peak RAM", "Mean CPU", "Mean GPU", "Peak GPU memory", "Last reading"],
        readings,
        numeric=frozenset(("Session", "Readings", "Peak RAM", "Mean CPU", "Mean GPU", "Peak GPU memory")),
    )
    note = "Per session, what the resource monitor read every train.monitor_every episodes: peaks and means of its readings."
    return [Heading("Resources"), monitored, Paragraph(note, note=True), table]


def _resource_cells(summary: ResourceSummary | None) -> list[str]:
    assert summary is not None
    gpu = "–" if summary.mean_gpu_utilization is None else f"{summary.mean_gpu_utilization:.0f} %"
    memory = (
        "–"
        if summary.peak_gpu_memory_used is None
        else f"{size(summary.peak_gpu_memory_used)} of {size(summary.gpu_memory_total)}"
        if summary.gpu_memory_total
        else size(summary.peak_gpu_memory_used)
    )
    return [str(summary.readings), size(summary.peak_rss_bytes), f"{summary.mean_cpu_percent:.0f} %", gpu, memory, summary.last]


def _throughput_row(run: RunInfo) -> list[str]:
    episodes = sum(session.row.episodes for session in run.sessions)
    seconds = sum(session.row.duration_seconds for session in run.sessions)
    devices = ", ".join(dict.fromkeys(session.row.device for session in run.sessions))
    threads = ", ".join(dict.fromkeys(str(session.threads) for session in run.sessions if session.threads is not None))
    rate = f"{episodes / seconds * 3600.0:.1f}" if seconds > 0 else "–"
    return [_label(run), devices, threads or "–", str(episodes), duration(seconds), rate]


# --- configuration and versions -------------------------------------------------------------------


def configuration(report: ExperimentReport, config: ExperimentConfig) -> list[Block]:
    rows = [[library, _versions_of(report.committed, library)] for library in _libraries(report.committed)]
    note = f"The libraries each run's last session trained with (metadata.json); this report: atheria {report.atheria_version}."
    text = yaml.safe_dump(_without_nulls(report.config), sort_keys=False, allow_unicode=True, width=100)
    return [
        Heading("Versions"),
        Table(["Library", "Version"], rows),
        Paragraph(note, note=True),
        Heading("Configuration"),
        Paragraph("The resolved experiment config the report was made with: defaults filled in, unset (null) fields left out."),
        Preformatted(text, "yaml"),
    ]


def _without_nulls(value: Any) -> Any:
    """The config without its unset fields: most of them are null, and they would fill the page."""
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def _libraries(runs: Sequence[RunInfo]) -> list[str]:
    return list(dict.fromkeys(library for run in runs for library in run.versions))


def _versions_of(runs: Sequence[RunInfo], library: str) -> str:
    """``2.7.0``, or ``2.7.0 (A2C, PPO); 2.6.1 (SAC)`` when runs differ."""
    by_version: dict[str, list[str]] = {}
    for run in runs:
        by_version.setdefault(run.versions.get(library, "–"), []).append(_label(run))
    if len(by_version) == 1:
        return next(iter(by_version))
    return "; ".join(f"{version} ({', '.join(labels)})" for version, labels in by_version.items())


SECTIONS: tuple[Section, ...] = (
    overview,
    comparison,
    tune_study,
    learning_curves,
    checkpoints,
    exports,
    sessions,
    resources,
    configuration,
)
