"""`atheria compare`, `history` and `status` on a multi-seed experiment, through CliRunner.

The runs are committed through the store with hand-made episode records (no training), so the
numbers in the table can be checked by hand.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from atheria_cli.cli import app
from atheria_cli.config import ExperimentConfig
from atheria_cli.run.formats import write_document
from atheria_cli.run.seeds import seed_config
from tests.unit.test_evaluations import evaluation
from tests.unit.test_reports import commit_sessions, experiment, record

runner = CliRunner()
# co2 (goal min) of each seed's last 2 episodes: PPO's seeds score 60, 70, 80, SAC's 90, 95, 100.
SCORES = {"PPO": (60.0, 70.0, 80.0), "SAC": (90.0, 95.0, 100.0)}


@pytest.fixture
def seeds_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    config = experiment(tmp_path, seeds=[0, 1, 2], baseline={"co2_kg": 100}).model_copy(update={"checkpoints_dir": "checkpoints"})
    for agent, scores in SCORES.items():
        for seed, score in enumerate(scores):
            episodes = [record(1, -1.0, 500.0), record(2, -1.0, score - 5), record(3, -1.0, score + 5)]
            commit_sessions(seed_config(config, seed), agent, [episodes])
    return config_file(config, tmp_path)


def config_file(config: ExperimentConfig, folder: Path) -> Path:
    path = folder / "exp.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")), encoding="utf-8")
    return path


@pytest.fixture
def evaluated_seeds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Seeds 0 and 1 of PPO and SAC, episodes co2 500, 55, 65 (the last 2 score 60). PPO's seed 0
    was evaluated at episodes 2 and 3 (co2 means 10 and 30); SAC's seed 0 trained in two sessions."""
    monkeypatch.chdir(tmp_path)
    config = experiment(tmp_path, seeds=[0, 1], baseline={"co2_kg": 100}).model_copy(update={"checkpoints_dir": "checkpoints"})
    episodes = [record(1, -1.0, 500.0), record(2, -1.0, 55.0), record(3, -1.0, 65.0)]
    evaluated = commit_sessions(seed_config(config, 0), "PPO", [episodes])
    history = evaluated.history()
    history.evaluations = [evaluation(2, 10.0), evaluation(3, 30.0)]
    write_document(evaluated.layout.history, history)
    commit_sessions(seed_config(config, 1), "PPO", [episodes])
    commit_sessions(seed_config(config, 0), "SAC", [episodes[:2], episodes[2:]])
    commit_sessions(seed_config(config, 1), "SAC", [episodes])
    return config_file(config, tmp_path)


def test_compare_over_seeds_scores_an_evaluated_seed_by_its_last_evaluations(evaluated_seeds: Path) -> None:
    result = runner.invoke(app, ["compare", "--config", str(evaluated_seeds), "--window", "2", "--eval-window", "2"])
    assert result.exit_code == 0, result.output
    # PPO: seed 0 scores 20 (both evaluations pooled), seed 1 its last 2 episodes (60).
    assert result.stdout == (
        "unit: co2_kg (min), mean of the last 2 episode(s) per seed; seeds 0, 1\n"
        "┏━━━━━━━┳━━━━━━━┳━━━━━━━━━━━━━━━┳━━━━━━━┳━━━━━━━┳━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━"
        "━┳━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━┳━━━━━━━━━┳━━━━━━━━━━━━━━━┓\n"
        "┃ Agent ┃ Seeds ┃    Mean ± std ┃    SE ┃   IQM ┃   95 % CI mean ┃    95 % CI IQM"
        " ┃       Min–max ┃    vs baseline ┃           Change ┃ Verdict ┃ P(beats best) ┃\n"
        "┡━━━━━━━╇━━━━━━━╇━━━━━━━━━━━━━━━╇━━━━━━━╇━━━━━━━╇━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━"
        "━╇━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━━━━━━━┩\n"
        "│ PPO   │     2 │ 40.00 ± 28.28 │ 20.00 │ 40.00 │ [20.00, 60.00] │ [20.00, 60.00]"
        " │ 20.00 – 60.00 │ 100.00 → 40.00 │ ↓ 60.00 (60.0 %) │ better  │             – │\n"
        "│ SAC   │     2 │  60.00 ± 0.00 │  0.00 │ 60.00 │ [60.00, 60.00] │ [60.00, 60.00]"
        " │ 60.00 – 60.00 │ 100.00 → 60.00 │ ↓ 40.00 (40.0 %) │ better  │          0.25 │\n"
        "└───────┴───────┴───────────────┴───────┴───────┴────────────────┴───────────────"
        "─┴───────────────┴────────────────┴──────────────────┴─────────┴───────────────┘\n"
        "only 2 seed(s): the confidence intervals are wide; 5 or more seeds make them useful\n"
        "PPO (seed 0): scored by the last 2 evaluations (train.eval), not by training episodes\n"
        "best: PPO (lowest mean over seeds; P(beats best): over all pairs of seeds, ties ½)\n"  # co2_kg: goal min
    )
    document = json.loads(runner.invoke(app, ["compare", "--config", str(evaluated_seeds), "--window", "2", "--json"]).stdout)
    assert document["eval_window"] == 1
    assert [(seed["seed"], seed["score"], seed["source"], seed["episodes"]) for seed in document["agents"][0]["seeds"]] == [
        (0, 30.0, "evaluation", 2),
        (1, 60.0, "episodes", 2),
    ]


def test_compare_over_seeds_prints_iqm_intervals_and_the_chance_to_beat_the_best(seeds_config: Path) -> None:
    result = runner.invoke(app, ["compare", "--config", str(seeds_config), "--window", "2", "--metric", "co2_kg"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "unit: co2_kg (min), mean of the last 2 episode(s) per seed; seeds 0, 1, 2" in out
    for column in ("Seeds", "Mean ± std", "SE", "IQM", "95 % CI mean", "95 % CI IQM", "Min–max", "P(beats best)"):
        assert column in out
    ppo = next(line for line in out.splitlines() if "│ PPO" in line)
    assert "70.00 ± 10.00" in ppo and "5.77" in ppo and "60.00 – 80.00" in ppo and "100.00 → 70.00" in ppo
    sac = next(line for line in out.splitlines() if "│ SAC" in line)
    assert sac.rstrip("│ ").endswith("0.00")  # no SAC seed beats any PPO seed
    assert "only 3 seed(s): the confidence intervals are wide; 5 or more seeds make them useful" in out
    assert "best: PPO" in out


def test_compare_over_seeds_json_carries_every_seed(seeds_config: Path) -> None:
    result = runner.invoke(app, ["compare", "--config", str(seeds_config), "--window", "2", "--metric", "co2_kg", "--json"])
    document = json.loads(result.stdout)
    ppo = document["agents"][0]
    assert [(seed["seed"], seed["score"]) for seed in ppo["seeds"]] == [(0, 60.0), (1, 70.0), (2, 80.0)]
    low, high = ppo["statistics"]["mean_ci"]
    assert 60.0 <= low <= 70.0 <= high <= 80.0
    assert document["best_agent"] == "PPO" and document["few_seeds"] is True


def test_status_of_a_multi_seed_run_shows_every_agent_and_seed(seeds_config: Path) -> None:
    shutil.rmtree(seeds_config.parent / "checkpoints/unit/seed_2/SAC")
    result = runner.invoke(app, ["status", "--config", str(seeds_config)])
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "unit: runs in checkpoints/unit, main metric co2_kg (min)\n"
        "┏━━━━━━━┳━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━━┳━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━┳━━━━━━━━┳━━━━━━━━━━━┓\n"
        "┃ Agent ┃ Seed ┃ Episodes ┃ Timesteps ┃   Last ┃ Best (ep.) ┃ Last checkpoint ┃   Disk ┃ Resumable ┃\n"
        "┡━━━━━━━╇━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━━╇━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━╇━━━━━━━━╇━━━━━━━━━━━┩\n"
        "│ PPO   │    0 │        3 │        30 │  65.00 │  55.00 (2) │ episode_0003.pt │ 1.8 KB │ yes       │\n"
        "│ PPO   │    1 │        3 │        30 │  75.00 │  65.00 (2) │ episode_0003.pt │ 1.8 KB │ yes       │\n"
        "│ PPO   │    2 │        3 │        30 │  85.00 │  75.00 (2) │ episode_0003.pt │ 1.8 KB │ yes       │\n"
        "│ SAC   │    0 │        3 │        30 │  95.00 │  85.00 (2) │ episode_0003.pt │ 1.8 KB │ yes       │\n"
        "│ SAC   │    1 │        3 │        30 │ 100.00 │  90.00 (2) │ episode_0003.pt │ 1.8 KB │ yes       │\n"
        "│ SAC   │    2 │   no run │           │        │            │                 │        │ no        │\n"
        "└───────┴──────┴──────────┴───────────┴────────┴────────────┴─────────────────┴────────┴───────────┘\n"
    )
    document = json.loads(runner.invoke(app, ["status", "--config", str(seeds_config), "--json"]).stdout)
    assert (document["experiment"], document["run_dir"], document["seeds"]) == ("unit", "checkpoints/unit", [0, 1, 2])
    rows = [(row["agent"], row["seed"], row["state"], row["episodes"], row["last_value"]) for row in document["agents"]]
    assert rows == [
        ("PPO", 0, "committed", 3, 65.0),
        ("PPO", 1, "committed", 3, 75.0),
        ("PPO", 2, "committed", 3, 85.0),
        ("SAC", 0, "committed", 3, 95.0),
        ("SAC", 1, "committed", 3, 100.0),
        ("SAC", 2, "no run", 0, None),
    ]
    assert document["agents"][1]["last_checkpoint"] == "checkpoints/unit/seed_1/PPO/episode_0003.pt"
    one = json.loads(runner.invoke(app, ["status", "--config", str(seeds_config), "--seed", "1", "--json"]).stdout)
    assert (one["experiment"], one["seeds"]) == ("unit/seed_1", [])
    assert [(row["agent"], row["seed"], row["last_value"]) for row in one["agents"]] == [
        ("PPO", None, 75.0),
        ("SAC", None, 100.0),
    ]


def test_history_of_a_multi_seed_run_without_seed_summarises_each_seed(evaluated_seeds: Path) -> None:
    shutil.rmtree(evaluated_seeds.parent / "checkpoints/unit/seed_1/SAC")
    result = runner.invoke(app, ["history", "SAC", "--config", str(evaluated_seeds)])
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "SAC (unit): one row per seed, main metric co2_kg (min)\n"
        "┏━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━━━━┳━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓\n"
        "┃ Seed ┃ Episodes ┃ Timesteps ┃ Sessions ┃ Evaluations ┃  Last ┃ Best (ep.) ┃ Folder                      ┃\n"
        "┡━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━━━━╇━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┩\n"
        "│    0 │        3 │        30 │        2 │           0 │ 65.00 │  55.00 (2) │ checkpoints/unit/seed_0/SAC │\n"
        "│    1 │   no run │           │          │             │       │            │ checkpoints/unit/seed_1/SAC │\n"
        "└──────┴──────────┴───────────┴──────────┴─────────────┴───────┴────────────┴─────────────────────────────┘\n"
        "one seed in full (sessions, episodes, convergence): atheria history SAC --seed S\n"
    )
    document = json.loads(runner.invoke(app, ["history", "PPO", "--config", str(evaluated_seeds), "--json"]).stdout)
    assert (document["agent"], document["experiment"], document["metric"]) == ("PPO", "unit", {"name": "co2_kg", "goal": "min"})
    assert document["written"] == []
    assert document["seeds"] == [
        {
            "seed": seed,
            "state": "committed",
            "folder": f"checkpoints/unit/seed_{seed}/PPO",
            "episodes": 3,
            "timesteps": 30,
            "sessions": 1,
            "evaluations": evaluations,
            "last_value": 65.0,
            "best_value": 55.0,
            "best_episode": 2,
        }
        for seed, evaluations in ((0, 2), (1, 0))
    ]
    chosen = runner.invoke(app, ["history", "PPO", "--config", str(evaluated_seeds), "--seed", "1", "--json"])
    assert chosen.exit_code == 0, chosen.output
    assert json.loads(chosen.stdout)["folder"] == "checkpoints/unit/seed_1/PPO"
    unknown = runner.invoke(app, ["history", "X", "--config", str(evaluated_seeds)])
    assert (unknown.exit_code, unknown.stderr) == (2, "atheria: error: unknown agent 'X': the experiment has PPO, SAC\n")


@pytest.mark.parametrize("option", [["--last", "3"], ["--all"], ["--csv", "episodes.csv"]])
def test_history_options_of_one_run_need_a_seed_in_a_multi_seed_run(evaluated_seeds: Path, option: list[str]) -> None:
    result = runner.invoke(app, ["history", "PPO", "--config", str(evaluated_seeds), *option, "--plot", "h.png"])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"atheria: error: {option[0]} works on one seed's run: add --seed S (unit has seeds 0, 1)\n"
    assert sorted(path.name for path in evaluated_seeds.parent.iterdir()) == ["checkpoints", "exp.yaml"]


def test_compare_plot_draws_every_agent_with_a_band_over_seeds(seeds_config: Path, tmp_path: Path) -> None:
    from atheria_cli.config import load_config
    from atheria_cli.metrics import Quantity
    from atheria_cli.reports.compare_plot import agent_curve, agent_runs

    config = load_config(seeds_config)
    curve = agent_curve("PPO", agent_runs(config, "PPO"), Quantity("co2_kg", "min"), "episodes")
    assert curve is not None and curve.seeds == 3 and curve.x == [1.0, 2.0, 3.0]
    # Rolling mean at episode 3 is (500 + 2 s) / 3 for seed scores s = 60, 70, 80: mean 640/3, SE (20/3)/sqrt(3).
    assert curve.mean[2] == pytest.approx(640 / 3) and curve.sem is not None
    assert curve.sem[2] == pytest.approx((20 / 3) / 3**0.5)
    timesteps = agent_curve("PPO", agent_runs(config, "PPO"), Quantity("co2_kg", "min"), "timesteps")
    assert timesteps is not None and len(timesteps.x) == 200 and timesteps.x[0] == 10.0 and timesteps.x[-1] == 30.0
    for axis in ("episodes", "timesteps"):
        plot = str(tmp_path / f"{axis}.png")
        result = runner.invoke(app, ["compare", "--config", str(seeds_config), "--plot", plot, "--x", axis])
        assert result.exit_code == 0, result.output
        assert (tmp_path / f"{axis}.png").read_bytes().startswith(b"\x89PNG")
        assert f"wrote {tmp_path / axis}.png" in result.stderr
    bad = runner.invoke(app, ["compare", "--config", str(seeds_config), "--plot", str(tmp_path / "c.png"), "--x", "hours"])
    assert (bad.exit_code, bad.stderr) == (2, "atheria: error: --x 'hours': use episodes or timesteps\n")


def test_history_plot_of_a_multi_seed_run_draws_each_seed(seeds_config: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["history", "SAC", "--config", str(seeds_config), "--plot", str(tmp_path / "h.svg")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "h.svg").read_text().count("seed ") >= 3


@pytest.mark.parametrize(
    "args, message",
    [
        (["--seeds", "4-0"], "atheria: error: --seeds '4-0': expected seeds like 0-4 or 0,3 (non-negative, ranges low-high)\n"),
        (["--jobs", "0"], None),  # Typer's own range check: exit 2 too
    ],
)
def test_train_rejects_bad_seeds_and_jobs(seeds_config: Path, args: list[str], message: str | None) -> None:
    result = runner.invoke(app, ["train", "--config", str(seeds_config), *args])
    assert result.exit_code == 2
    if message is not None:
        assert result.stderr == message
