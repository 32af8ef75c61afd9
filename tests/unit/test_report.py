"""``atheria report`` (atheria_cli.reports.report*) on runs written with the real store (no torch).

The fixture runs are committed through ``AgentStore.commit`` as training commits them, with
evaluations, sessions that record threads, export sidecars and seeds where a test needs them.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import os
import re
import socket
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from atheria_cli.config import ExperimentConfig
from atheria_cli.errors import UsageError
from atheria_cli.reports.report import files_dir, resolve_target, write_report
from atheria_cli.reports.report_data import gather_report
from atheria_cli.reports.report_markdown import escape
from atheria_cli.reports.seeds import SeedsCompareReport
from atheria_cli.run.formats import (
    AdoptOrigin,
    EpisodeRecord,
    EvaluationRecord,
    History,
    Metadata,
    ResourceSummary,
    SessionRecord,
    Stat,
)
from atheria_cli.run.layout import AgentLayout
from atheria_cli.run.store import AgentStore, now_iso

CHECKPOINT = b"fake checkpoint bytes"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def experiment(root: Path, **overrides: Any) -> ExperimentConfig:
    config = {
        "experiment": "unit",
        "checkpoints_dir": str(root / "checkpoints"),
        "env": {"id": "Pendulum-v1", "metrics": [{"name": "co2_kg", "goal": "min"}]},
        "agents": {"PPO": {}, "SAC": {}},
        "baseline": {"co2_kg": 100},
        **overrides,
    }
    return ExperimentConfig.model_validate(config)


def record(episode: int, co2: float, reward: float = -1.0) -> EpisodeRecord:
    return EpisodeRecord(episode=episode, timesteps=episode * 10, reward=reward, length=10, seconds=0.5, metrics={"co2_kg": co2})


def evaluation(episode: int, co2: float) -> EvaluationRecord:
    return EvaluationRecord(
        episode=episode,
        timesteps=episode * 10,
        episodes=2,
        seeds=[10_000, 10_001],
        seconds=0.1,
        reward=Stat(mean=-1.0, std=0.0),
        length=Stat(mean=10.0, std=0.0),
        metrics={"co2_kg": Stat(mean=co2, std=1.0)},
    )


def commit_run(
    config: ExperimentConfig,
    agent: str,
    sessions: list[list[float]],
    *,
    evaluations: dict[int, float] | None = None,
    duration: float = 1.5,
    threads: int | None = 2,
    resources: ResourceSummary | None = None,
    adopted: AdoptOrigin | None = None,
) -> AgentStore:
    """Commit each session's co2 values (one episode each) through AgentStore.commit, as training
    does, with a checkpoint after every episode and the evaluations at their episodes."""
    store = AgentStore(AgentLayout.of(config.run_dir, agent))
    history = History(agent=agent)
    metadata = Metadata(
        agent=agent,
        algo=config.algo_of(agent),
        policy="MlpPolicy",
        env_id="Pendulum-v1",
        experiment=config.experiment,
        last_episode=0,
        total_timesteps=0,
        device="cpu",
        hyperparams={},
        versions={"atheria": "0.1.0", "torch": "2.13.0"},
        created=now_iso(),
        updated=now_iso(),
    )
    episode = 0
    for values in sessions:
        session = SessionRecord(
            session_timestamp="2026-11-23T05:08:56+00:00",
            start_episode=episode + 1,
            end_episode=episode,
            episodes_count=0,
            device="cpu",
            duration_seconds=duration,
            threads=threads,
            atheria_version="0.1.0",
            resumed_from=f"episode_{episode:04d}.pt" if episode else None,
            resources=resources,
            adopted_from=None if episode else adopted,
            exact=bool(episode) or adopted is None,
        )
        history.trainings.append(session)
        for co2 in values:
            episode += 1
            session.end_episode, session.episodes_count = episode, session.episodes_count + 1
            if evaluations and episode in evaluations:
                history.evaluations.append(evaluation(episode, evaluations[episode]))
            history.total_episodes = episode
            store.commit(
                checkpoint_bytes=CHECKPOINT + bytes([episode]),
                entry_episode=episode,
                timesteps=episode * 10,
                history=history,
                metadata=metadata,
                run_config=None,
                new_episodes=[record(episode, co2)],
            )
    return store


def write_export(folder: Path, source: str, name: str = "model_onnx.onnx") -> Path:
    """An exported file and its schema-2 sidecar, as ``atheria export`` writes them."""
    exported = folder / name
    exported.write_bytes(b"exported policy bytes")
    sidecar = {
        "schema_version": 2,
        "format": "onnx",
        "file": name,
        "size": exported.stat().st_size,
        "sha256": hashlib.sha256(exported.read_bytes()).hexdigest(),
        "device": "cpu",
        "agent": folder.name,
        "algo": folder.name,
        "observation_space": {},
        "action_space": {},
        "input": {},
        "observation_normalization": False,
        "source_checkpoint": str(folder / source),
        "source_sha256": "0" * 64,
        "verification": {"samples": 256, "max_abs_diff": 1.5e-7, "tolerance": 1e-5},
        "versions": {},
        "exported": "2026-11-23T06:00:00+00:00",
    }
    exported.with_suffix(".json").write_text(json.dumps(sidecar), encoding="utf-8")
    return exported


class _Page(HTMLParser):
    """Every tag with its attributes, and the text, of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: bytes) -> _Page:
    parser = _Page()
    parser.feed(page.decode("utf-8"))
    return parser


def decoded_images(page: _Page) -> list[Image.Image]:
    """Each <img>'s data URI decoded and checked by PIL: a whole, valid PNG."""
    images = []
    for tag, attrs in page.tags:
        if tag == "img":
            source = attrs["src"] or ""
            assert source.startswith("data:image/png;base64,"), source[:40]
            data = base64.b64decode(source.removeprefix("data:image/png;base64,"), validate=True)
            assert data.startswith(PNG_SIGNATURE)
            image = Image.open(io.BytesIO(data))
            image.verify()  # checks the chunks and their CRCs
            images.append(Image.open(io.BytesIO(data)))
    return images


@pytest.fixture
def config(tmp_path: Path) -> ExperimentConfig:
    """PPO: two sessions (episodes 1-3, 4-5), evaluated at 2 and 4; SAC: never trained."""
    config = experiment(tmp_path)
    commit_run(config, "PPO", [[90.0, 80.0, 70.0], [60.0, 65.0]], evaluations={2: 85.0, 4: 55.0})
    return config


# --- HTML ------------------------------------------------------------------------------------------


def test_html_report_is_one_self_contained_page(config: ExperimentConfig) -> None:
    written = write_report(config)
    assert written.path == config.run_dir / "report.html" and written.format == "html"
    page = parse(written.path.read_bytes())
    assert not [tag for tag, _ in page.tags if tag in ("script", "link", "iframe", "object", "embed")]
    # Nothing to fetch: every image is inline, every link points within the page.
    assert all((attrs.get("href") or "#").startswith("#") for tag, attrs in page.tags if tag == "a")
    images = decoded_images(page)
    assert len(images) == 2  # every agent on co2_kg, then PPO's curve; SAC has no run, so no figure
    assert all(image.width >= 600 and image.height >= 300 for image in images)
    policy = next(attrs for tag, attrs in page.tags if tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy")
    assert policy["content"] == "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def test_html_report_shows_the_comparison_checkpoints_and_sessions(config: ExperimentConfig) -> None:
    text = " ".join(parse(write_report(config).path.read_bytes()).text)
    # compare's rule: PPO's last evaluation scores it (55 ± 1), against the baseline of 100.
    assert "55.00 ± 1.00" in text and "100.00 → 55.00" in text and "↓ 45.00 (45.0 %)" in text
    assert "2 evaluation episodes at episode 4" in text
    # Best by evaluation (episode 4, co2 55), latest episode 5; their sha256 as committed.
    metadata = AgentStore(AgentLayout.of(config.run_dir, "PPO")).metadata()
    by_file = {entry.file: entry.sha256 for entry in metadata.checkpoints}
    assert by_file["episode_0004.pt"] in text and by_file["episode_0005.pt"] in text
    assert by_file["episode_0003.pt"] not in text
    assert "55.00 (eval)" in text
    # Two sessions of 1.5 s: 3 episodes -> 7200 episodes/hour, 2 episodes -> 4800.
    assert "7200.0" in text and "4800.0" in text and "resumed from episode_0003.pt" in text
    assert "SAC" in text and "no run" in text


def test_html_report_escapes_every_user_string(tmp_path: Path) -> None:
    hostile = "<script>alert(1)</script>&amp;"
    root = tmp_path / "<b>bold</b>"
    config = experiment(
        root, env={"id": "Pendulum-v1", "kwargs": {"note": hostile}, "metrics": [{"name": "co2_kg", "goal": "min"}]}
    )
    commit_run(config, "PPO", [[90.0, 80.0]])
    page = write_report(config).path.read_text(encoding="utf-8")
    assert "<script" not in page and "<b>" not in page
    assert html.escape(hostile) in page and html.escape(str(root)) in page


# --- Markdown --------------------------------------------------------------------------------------


def test_markdown_report_writes_its_pngs_beside_it(config: ExperimentConfig, tmp_path: Path) -> None:
    target = tmp_path / "out" / "exp.md"
    target.parent.mkdir()
    written = write_report(config, output=target)
    assert written.format == "md" and written.path == target
    assert files_dir(target) == tmp_path / "out" / "exp_files"
    assert sorted(path.name for path in files_dir(target).iterdir()) == ["all_agents.png", "curve_PPO.png"]
    text = target.read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert links == ["exp_files/all_agents.png", "exp_files/curve_PPO.png"]
    for link in links:
        Image.open(target.parent / link).verify()
    assert "| PPO | 2 evaluation episodes at episode 4 | 55.00 ± 1.00 |" in text
    assert "```yaml\n" in text


def test_markdown_report_removes_its_own_figures_it_no_longer_links(config: ExperimentConfig, tmp_path: Path) -> None:
    target = tmp_path / "exp.md"
    write_report(config, output=target)
    stale = files_dir(target) / "curve_OLD.png"
    stale.write_bytes(b"an earlier report's figure")
    users = files_dir(target) / "diagram.png"
    users.write_bytes(b"the user's own picture")
    write_report(config, output=target)
    assert not stale.exists() and (files_dir(target) / "curve_PPO.png").is_file()
    assert users.read_bytes() == b"the user's own picture"


def test_markdown_escapes_what_markdown_would_read() -> None:
    assert escape("a_b*c | <d> [e](f)") == r"a\_b\*c \| \<d\> \[e\](f)"
    assert escape("two\nlines") == "two lines"


# --- what the report covers ------------------------------------------------------------------------


def test_multi_seed_report_shows_iqm_and_confidence_intervals(tmp_path: Path) -> None:
    config = experiment(tmp_path, seeds=[0, 1, 2])
    for seed, final in zip((0, 1, 2), (50.0, 60.0, 70.0), strict=True):
        replicate = config.model_copy(update={"experiment": f"unit/seed_{seed}", "seed": seed, "seeds": None})
        commit_run(replicate, "PPO", [[90.0, final]])
        commit_run(replicate, "SAC", [[80.0, final - 5]])
    report = gather_report(config)
    main = report.comparisons[0]
    assert isinstance(main, SeedsCompareReport) and main.metric.name == "co2_kg"
    ppo = next(row for row in main.agents if row.agent == "PPO")
    assert ppo.statistics is not None and ppo.statistics.seeds == 3
    assert [run.seed for run in report.runs] == [0, 1, 2, 0, 1, 2]
    written = write_report(config)
    page = parse(written.path.read_bytes())
    text = " ".join(page.text)
    stats = ppo.statistics
    assert stats.mean_ci is not None and stats.iqm_ci is not None
    assert f"[{stats.mean_ci[0]:.2f}, {stats.mean_ci[1]:.2f}]" in text and f"{stats.iqm:.2f}" in text
    assert "0: 70.00, 1: 75.00, 2: 80.00" in text  # mean of each seed's last 10 (here 2) episodes
    assert "PPO, seed 2" in text
    assert len(decoded_images(page)) == 3  # every agent, then one figure per agent over its seeds


def test_report_of_a_run_that_is_still_training_shows_what_is_committed(config: ExperimentConfig) -> None:
    layout = AgentLayout.of(config.run_dir, "PPO")
    # A session past its last commit: an appended episode and half a line nobody committed,
    # and the agent's lock held by this (living) process.
    with open(layout.root / "episodes.jsonl", "ab") as handle:
        handle.write(json.dumps(record(6, 1.0).model_dump(mode="json")).encode() + b"\n" + b'{"episode": 7, "timest')
    (config.run_dir / ".PPO.lock").write_text(f"pid {os.getpid()} on {socket.gethostname()}", encoding="utf-8")
    report = gather_report(config)
    ppo = report.runs_of("PPO")[0]
    assert ppo.history is not None and ppo.history.total_episodes == 5
    assert ppo.training_now == f"pid {os.getpid()} on {socket.gethostname()}"
    text = " ".join(parse(write_report(config).path.read_bytes()).text)
    assert f"A training session (pid {os.getpid()} on {socket.gethostname()}) holds the lock of PPO" in text


def test_a_lock_left_by_a_dead_process_is_not_training(config: ExperimentConfig) -> None:
    (config.run_dir / ".PPO.lock").write_text(f"pid {2**22 + 12345} on {socket.gethostname()}", encoding="utf-8")
    assert gather_report(config).runs_of("PPO")[0].training_now is None


def test_exports_are_listed_with_their_sha256_and_checked(config: ExperimentConfig) -> None:
    folder = AgentLayout.of(config.run_dir, "PPO").root
    exported = write_export(folder, "episode_0004.pt")
    digest = hashlib.sha256(exported.read_bytes()).hexdigest()
    (item,) = gather_report(config).runs_of("PPO")[0].exports
    assert (item.state, item.format, item.sha256, item.max_abs_diff) == ("ok", "onnx", digest, 1.5e-7)
    assert digest in " ".join(parse(write_report(config).path.read_bytes()).text)
    exported.write_bytes(b"changed after export")
    (item,) = gather_report(config).runs_of("PPO")[0].exports
    assert item.state == "changed" and "sha256 differs" in (item.problem or "")
    exported.unlink()
    assert gather_report(config).runs_of("PPO")[0].exports[0].state == "missing"


def test_sessions_record_throughput_and_threads(config: ExperimentConfig) -> None:
    sessions = gather_report(config).runs_of("PPO")[0].sessions
    assert [(s.row.episodes, s.threads, s.episodes_per_hour) for s in sessions] == [(3, 2, 7200.0), (2, 2, 4800.0)]


def test_the_monitor_s_readings_are_reported_per_session(tmp_path: Path) -> None:
    config = experiment(tmp_path, train={"monitor_every": 2})
    readings = ResourceSummary(
        readings=3,
        peak_rss_bytes=3_000_000_000,
        mean_cpu_percent=187.5,
        mean_gpu_utilization=64.0,
        peak_gpu_memory_used=2_000_000_000,
        gpu_memory_total=16_000_000_000,
        last="elapsed 0:10:00, 30.0 episodes/h, RAM 3.00 GiB, CPU 190%, GPU 64%",
    )
    commit_run(config, "PPO", [[90.0, 80.0]], resources=readings)
    html = write_report(config).path.read_text(encoding="utf-8")
    resources = html[html.index('<h2 id="resources">') : html.index('<h2 id="versions">')]
    for cell in ("3.0 GB", "188 %", "64 %", "2.0 GB of 16.0 GB", "elapsed 0:10:00, 30.0 episodes/h"):
        assert cell in resources, cell
    assert "no session recorded readings" not in html


def test_an_adopted_first_session_is_named_with_its_zip_and_not_exact(tmp_path: Path) -> None:
    config = experiment(tmp_path)
    origin = AdoptOrigin(file="sac_checkpoint_300000.zip", sha256="0" * 64, num_timesteps=300000)
    commit_run(config, "SAC", [[90.0], [80.0]], adopted=origin)
    html = write_report(config).path.read_text(encoding="utf-8")
    sessions = html[html.index('<h2 id="sessions">') :]
    assert "adopted from sac_checkpoint_300000.zip (SB3, 300000 timesteps); not exact" in sessions
    assert "resumed from episode_0001.pt" in sessions and "new run" not in sessions


def test_best_checkpoint_without_evaluations_is_the_best_training_episode(tmp_path: Path) -> None:
    config = experiment(tmp_path)
    commit_run(config, "SAC", [[90.0, 40.0, 70.0]])  # co2 goal min: episode 2
    run = gather_report(config).runs_of("SAC")[0]
    assert run.best is not None and run.latest is not None
    assert (run.best.entry.file, run.best.score, run.best.scored_by) == ("episode_0002.pt", 40.0, "episode")
    assert run.latest.entry.file == "episode_0003.pt"


# --- bad input -------------------------------------------------------------------------------------


def test_an_experiment_without_runs_is_a_usage_error_and_writes_nothing(tmp_path: Path) -> None:
    config = experiment(tmp_path)
    with pytest.raises(UsageError, match="unit has no committed run in .*: nothing to report"):
        write_report(config)
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize(
    ("output", "format_name", "message"),
    [
        ("report.txt", None, r"--output .*report.txt: name a .html or .md file"),
        ("report.html", "md", r"is a .html file but --format is md"),
        (None, "pdf", r"--format 'pdf': use html or md"),
        ("missing/report.md", None, r"folder .*missing does not exist"),
    ],
)
def test_bad_output_or_format_is_refused_before_anything_is_read(
    tmp_path: Path, output: str | None, format_name: str | None, message: str
) -> None:
    config = experiment(tmp_path)  # no run: a check that came after reading would say so instead
    with pytest.raises(UsageError, match=message):
        write_report(config, output=tmp_path / output if output else None, format_name=format_name)


def test_format_follows_the_output_suffix_and_defaults_to_html(tmp_path: Path) -> None:
    config = experiment(tmp_path)
    assert resolve_target(config, None, None) == (config.run_dir / "report.html", "html")
    assert resolve_target(config, None, "md") == (config.run_dir / "report.md", "md")
    assert resolve_target(config, tmp_path / "r.MD", None) == (tmp_path / "r.MD", "md")
