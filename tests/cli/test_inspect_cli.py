"""`atheria history`, `status` and `compare` through Typer's CliRunner, on a real tiny run.

One module-scoped run: A2C and PPO trained by `atheria train` on a 20-step environment whose
final info carries `co2_kg`, in two sessions (episodes 1-3, then 4-5 with --resume); SAC is in
the experiment but never trained. Tests that damage files work on a copy of the run.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from atheria_cli.cli import app
from tests.conftest import tiny_config, write_config
from tests.unit.test_reports import commit_sessions, experiment
from tests.unit.test_reports import record as made_record

pytestmark = pytest.mark.integration

runner = CliRunner()
TRAINED = ("A2C", "PPO")
EPISODE_STEPS = 20
BASELINE_CO2 = 200.0


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args))


def inspect_config() -> dict[str, Any]:
    return tiny_config(
        env={"id": "tests.envs:EmissionsEnv", "metrics": [{"name": "co2_kg", "goal": "min"}]},
        baseline={"co2_kg": BASELINE_CO2},
    )


@pytest.fixture(scope="module")
def run_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding exp.yaml and checkpoints/test/{A2C,PPO}: 2 sessions, 5 episodes each."""
    root = tmp_path_factory.mktemp("inspect")
    write_config(root / "exp.yaml", inspect_config())
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        agents = [option for agent in TRAINED for option in ("--agent", agent)]
        first = invoke("train", "--config", "exp.yaml", "--episodes", "3", *agents)
        assert first.exit_code == 0, first.output
        second = invoke("train", "--config", "exp.yaml", "--episodes", "2", "--resume", *agents)
        assert second.exit_code == 0, second.output
    return root


@pytest.fixture(autouse=True)
def in_run_root(run_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(run_root)
    return run_root


@pytest.fixture
def copy_root(run_root: Path, tmp_path: Path) -> Path:
    """A private copy of the run's checkpoints folder, for tests that damage files."""
    shutil.copytree(run_root / "checkpoints", tmp_path / "copy")
    return tmp_path / "copy"


def records(root: Path, agent: str) -> list[dict[str, Any]]:
    lines = (root / "checkpoints" / "test" / agent / "episodes.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def mean(values: list[float]) -> float:
    return math.fsum(values) / len(values)


def shown_episodes(out: str) -> list[int]:
    """Episode numbers of the episodes table (rows: episode, timesteps, reward, co2_kg, seconds)."""
    row = re.compile(r"^│\s+(\d+) │\s+\d+ │\s+-?[\d.]+ │\s+[\d.]+ │\s+[\d.]+ │$", re.MULTILINE)
    return [int(number) for number in row.findall(out)]


def one_line_error(result: Any, message: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stderr == f"atheria: error: {message}\n"
    assert result.stdout == ""


@pytest.fixture
def hand_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """exp.yaml and runs committed from hand-made records (no training), so the exact tables can
    be written down: PPO in one session (co2 90, 70), SAC in two (co2 120, then 110)."""
    monkeypatch.chdir(tmp_path)
    config = experiment(tmp_path, baseline={"co2_kg": 100}).model_copy(update={"checkpoints_dir": "checkpoints"})
    commit_sessions(config, "PPO", [[made_record(1, -1.0, 90.0), made_record(2, -2.0, 70.0)]])
    commit_sessions(config, "SAC", [[made_record(1, -1.0, 120.0)], [made_record(2, -1.0, 110.0)]])
    return write_config(tmp_path / "exp.yaml", config.model_dump(mode="json"))


# --- atheria history ----------------------------------------------------------------------------


def test_history_shows_sessions_episodes_and_convergence(run_root: Path) -> None:
    result = invoke("history", "A2C", "--config", "exp.yaml")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    out = result.stdout
    assert out.splitlines()[0] == "A2C (test) in checkpoints/test/A2C: 5 episode(s), 100 timesteps, 2 session(s)"
    assert re.search(r"│ 1 │ 1–3\s+│\s+3 │ cpu\s+│", out) and re.search(r"│ 2 │ 4–5\s+│\s+2 │ cpu\s+│", out)
    episodes = records(run_root, "A2C")
    for record in episodes:
        row = rf"│\s+{record['episode']} │\s+{record['timesteps']} │\s+{record['reward']:.2f} │\s+{record['metrics']['co2_kg']:.2f} │"
        assert re.search(row, out), row
    assert "Episodes (last" not in out  # 5 episodes: all shown under the default of 20
    for name, goal, values in (
        ("reward", "max", [record["reward"] for record in episodes]),
        ("co2_kg", "min", [record["metrics"]["co2_kg"] for record in episodes]),
    ):
        before, after = mean(values[:3]), mean(values[3:])
        change = after - before
        better = (change > 0) == (goal == "max")
        arrow = "↑" if change > 0 else "↓"
        line = next(line for line in out.splitlines() if "│       2 │ 4–5" in line and f"{after:.2f}" in line)
        assert f"{change:+.2f}" in line and f"{arrow} {abs(change) / abs(before) * 100:.1f} %" in line
        assert ("better" if better else "worse") in line
        assert f"{name} ({goal})" in out


def test_history_of_one_session_shows_no_empty_convergence_columns(hand_made: Path) -> None:
    result = invoke("history", "PPO", "--config", str(hand_made))
    assert result.exit_code == 0, result.output
    assert result.stdout.split("Convergence")[1] == (
        ": mean per session\n"
        "┏━━━━━━━━━━━━━━━┳━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━┓\n"
        "┃ Quantity      ┃ Session ┃ Episodes ┃  Mean ┃\n"
        "┡━━━━━━━━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━┩\n"
        "│ reward (max)  │       1 │ 1–2      │ -1.50 │\n"
        "├───────────────┼─────────┼──────────┼───────┤\n"
        "│ co2_kg (min)  │       1 │ 1–2      │ 80.00 │\n"
        "├───────────────┼─────────┼──────────┼───────┤\n"
        "│ comfort (max) │       1 │ 1–2      │  1.00 │\n"
        "└───────────────┴─────────┴──────────┴───────┘\n"
    )
    two = invoke("history", "SAC", "--config", str(hand_made))
    assert two.stdout.split("Convergence")[1] == (
        ": mean per session vs the previous session\n"
        "┏━━━━━━━━━━━━━━━┳━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━┳━━━━━━━━┳━━━━━━━━━┳━━━━━━━━━┓\n"
        "┃ Quantity      ┃ Session ┃ Episodes ┃   Mean ┃ Change ┃       % ┃ Verdict ┃\n"
        "┡━━━━━━━━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━╇━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━┩\n"
        "│ reward (max)  │       1 │ 1        │  -1.00 │        │         │         │\n"
        "│               │       2 │ 2        │  -1.00 │   0.00 │ = 0.0 % │ same    │\n"
        "├───────────────┼─────────┼──────────┼────────┼────────┼─────────┼─────────┤\n"
        "│ co2_kg (min)  │       1 │ 1        │ 120.00 │        │         │         │\n"
        "│               │       2 │ 2        │ 110.00 │ -10.00 │ ↓ 8.3 % │ better  │\n"
        "├───────────────┼─────────┼──────────┼────────┼────────┼─────────┼─────────┤\n"
        "│ comfort (max) │       1 │ 1        │   1.00 │        │         │         │\n"
        "│               │       2 │ 2        │   1.00 │   0.00 │ = 0.0 % │ same    │\n"
        "└───────────────┴─────────┴──────────┴────────┴────────┴─────────┴─────────┘\n"
    )


def test_history_last_and_all_choose_the_episodes_shown() -> None:
    last = invoke("history", "PPO", "--config", "exp.yaml", "--last", "2")
    assert last.exit_code == 0, last.output
    assert "Episodes (last 2 of 5; --all shows every one)" in last.stdout
    assert shown_episodes(last.stdout) == [4, 5]
    every = invoke("history", "PPO", "--config", "exp.yaml", "--all")
    assert every.exit_code == 0
    assert shown_episodes(every.stdout) == [1, 2, 3, 4, 5]


def test_history_json_is_one_document(run_root: Path) -> None:
    result = invoke("history", "PPO", "--config", "exp.yaml", "--json", "--last", "1")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["agent"] == "PPO" and document["total_episodes"] == 5 and document["total_timesteps"] == 100
    assert [q["name"] for q in document["quantities"]] == ["reward", "co2_kg"]
    assert [(s["start_episode"], s["end_episode"], s["episodes"]) for s in document["sessions"]] == [(1, 3, 3), (4, 5, 2)]
    assert document["sessions"][1]["resumed_from"] == "episode_0003.pt"
    episodes = records(run_root, "PPO")
    assert document["episodes_shown"] == 1
    assert document["episodes"] == [
        {
            "episode": 5,
            "session": 2,
            "timesteps": 100,
            "reward": episodes[4]["reward"],
            "length": EPISODE_STEPS,
            "metrics": {"co2_kg": episodes[4]["metrics"]["co2_kg"]},
            "seconds": episodes[4]["seconds"],
        }
    ]
    co2 = next(trend for trend in document["convergence"] if trend["quantity"] == "co2_kg")
    values = [record["metrics"]["co2_kg"] for record in episodes]
    first, second = co2["sessions"]
    assert first["mean"] == pytest.approx(mean(values[:3])) and first["change"] is None
    assert second["change"] == pytest.approx(mean(values[3:]) - mean(values[:3]))
    assert second["change_percent"] == pytest.approx(second["change"] / abs(first["mean"]) * 100)
    assert second["verdict"] == ("better" if second["change"] < 0 else "worse")
    every = json.loads(invoke("history", "PPO", "--config", "exp.yaml", "--json", "--all").stdout)
    assert [episode["episode"] for episode in every["episodes"]] == [1, 2, 3, 4, 5]


def test_history_csv_holds_every_episode(run_root: Path, tmp_path: Path) -> None:
    target = tmp_path / "ppo.csv"
    result = invoke("history", "PPO", "--config", "exp.yaml", "--last", "1", "--csv", str(target))
    assert result.exit_code == 0, result.output
    assert result.stderr == f"wrote {target}\n"
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert list(rows[0]) == ["episode", "session", "timesteps", "reward", "length", "co2_kg", "seconds"]
    expected = records(run_root, "PPO")
    assert [int(row["episode"]) for row in rows] == [1, 2, 3, 4, 5]
    assert [int(row["session"]) for row in rows] == [1, 1, 1, 2, 2]
    assert [float(row["reward"]) for row in rows] == [record["reward"] for record in expected]
    assert [float(row["co2_kg"]) for row in rows] == [record["metrics"]["co2_kg"] for record in expected]


def test_history_plot_writes_a_png(tmp_path: Path) -> None:
    image = pytest.importorskip("matplotlib.image")
    target = tmp_path / "curve.png"
    result = invoke("history", "A2C", "--config", "exp.yaml", "--plot", str(target), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["written"] == [str(target)]
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = image.imread(str(target))
    height, width = pixels.shape[:2]
    assert width >= 600 and height >= 400  # two subplots: reward and co2_kg
    assert sorted(path.name for path in tmp_path.iterdir()) == ["curve.png"]  # no temporary left


@pytest.mark.parametrize(
    "args, message",
    [
        (["X"], "unknown agent 'X': the experiment has A2C, SAC, PPO"),
        (["SAC"], "SAC has no run in checkpoints/test/SAC; start one with: atheria train --agent SAC"),
        (
            ["A2C", "--last", "3", "--all"],
            "--last and --all cannot be combined: --last N shows the last N episodes, --all every one",
        ),
        (["A2C", "--last", "0"], "Invalid value for '--last': Input should be greater than or equal to 1"),
        (["A2C", "--plot", "missing/curve.png"], "--plot missing/curve.png: folder missing does not exist"),
        (["A2C", "--plot", "curve.jpg"], "--plot curve.jpg: unsupported image type '.jpg'; use .png, .svg or .pdf"),
        (["A2C", "--csv", "checkpoints"], "--csv checkpoints: is a folder; give a file name"),
        (["A2C", "--csv", "missing/e.csv"], "--csv missing/e.csv: folder missing does not exist"),
        ([], "Missing argument 'AGENT'."),
    ],
)
def test_history_bad_input_is_one_line(args: list[str], message: str, run_root: Path) -> None:
    before = sorted(path.name for path in run_root.iterdir())
    one_line_error(invoke("history", *args, "--config", "exp.yaml"), message)
    assert sorted(path.name for path in run_root.iterdir()) == before


def test_history_reads_another_checkpoints_dir(copy_root: Path) -> None:
    shutil.rmtree(copy_root / "test" / "A2C")
    result = invoke("history", "PPO", "--config", "exp.yaml", "--checkpoints-dir", str(copy_root), "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["folder"] == str(copy_root / "test" / "PPO")
    one_line_error(
        invoke("history", "A2C", "--config", "exp.yaml", "--checkpoints-dir", str(copy_root)),
        f"A2C has no run in {copy_root / 'test' / 'A2C'}; start one with: atheria train --agent A2C",
    )


def damage(folder: Path, name: str) -> str:
    """Damage one file of a run; return what the error must say after the path."""
    path = folder / name
    if name == "history.json":
        path.write_text('{"schema_version": 1, "agent": "A2C", ')
        return "invalid JSON at line 1, column 39: Expecting property name enclosed in double quotes"
    if name == "episodes.jsonl":
        data = path.read_bytes()
        path.write_bytes(data[:-10])
        return f"holds {len(data) - 10} bytes, history.json records {len(data)}"
    document = json.loads(path.read_text())
    document["checkpoints"][-1]["size"] = "big"
    path.write_text(json.dumps(document))
    return f"checkpoints.{len(document['checkpoints']) - 1}.size: Input should be a valid integer, unable to parse string as an integer"


@pytest.mark.parametrize("name", ["history.json", "episodes.jsonl", "metadata.json"])
@pytest.mark.parametrize("command", ["history", "status", "compare"])
def test_damaged_file_is_reported_with_its_path(command: str, name: str, copy_root: Path) -> None:
    folder = copy_root / "test" / "A2C"
    problem = damage(folder, name)
    args = [command, "A2C"] if command == "history" else [command]
    result = invoke(*args, "--config", "exp.yaml", "--checkpoints-dir", str(copy_root))
    one_line_error(result, f"{folder / name}: {problem}")
    assert "Traceback" not in result.output


def test_newer_schema_says_upgrade(copy_root: Path) -> None:
    path = copy_root / "test" / "PPO" / "history.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "schema_version": 99}))
    one_line_error(
        invoke("history", "PPO", "--config", "exp.yaml", "--checkpoints-dir", str(copy_root)),
        f"{path}: schema_version 99 is newer than this atheria supports (1); upgrade atheria",
    )


# --- atheria status -----------------------------------------------------------------------------


def test_status_table_has_a_row_per_agent(run_root: Path) -> None:
    result = invoke("status", "--config", "exp.yaml")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.splitlines()[0] == "test: runs in checkpoints/test, main metric co2_kg (min)"
    for agent in TRAINED:
        values = [record["metrics"]["co2_kg"] for record in records(run_root, agent)]
        best = min(values)
        row = next(line for line in out.splitlines() if line.startswith(f"│ {agent} "))
        assert re.search(
            rf"│\s+5 │\s+100 │\s+{values[-1]:.2f} │\s+{best:.2f} \({values.index(best) + 1}\) │ episode_0005.pt\s+│", row
        ), row
        assert row.rstrip("│ ").endswith("yes")
    assert re.search(r"│ SAC\s+│\s+no run │", out)


def test_status_json(run_root: Path) -> None:
    result = invoke("status", "--config", "exp.yaml", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["metric"] == {"name": "co2_kg", "goal": "min"}
    rows = {row["agent"]: row for row in document["agents"]}
    assert list(rows) == ["A2C", "SAC", "PPO"]
    for agent in TRAINED:
        row = rows[agent]
        folder = run_root / "checkpoints" / "test" / agent
        values = [record["metrics"]["co2_kg"] for record in records(run_root, agent)]
        assert row["state"] == "committed" and row["episodes"] == 5 and row["timesteps"] == 100
        assert row["last_value"] == values[-1] and row["best_value"] == min(values)
        assert row["last_checkpoint"] == f"checkpoints/test/{agent}/episode_0005.pt"
        assert row["disk_bytes"] == sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
        assert row["resumable"] is True and row["resume_problem"] is None
    assert rows["SAC"] == {
        "agent": "SAC",
        "state": "no run",
        "episodes": 0,
        "timesteps": 0,
        "last_value": None,
        "best_value": None,
        "best_episode": None,
        "last_checkpoint": None,
        "disk_bytes": 0,
        "resumable": False,
        "resume_problem": "no run",
        "seed": None,
    }
    assert document["seeds"] == []


def test_status_tells_when_a_run_cannot_be_resumed(copy_root: Path) -> None:
    (copy_root / "test" / "A2C" / "episode_0005.pt").unlink()
    with open(copy_root / "test" / "PPO" / "episode_0005.pt", "ab") as handle:
        handle.write(b"x")
    (copy_root / "test" / "SAC").mkdir()
    (copy_root / "test" / "SAC" / "history.json").write_text("{}")  # files, but nothing committed
    args = ["status", "--config", "exp.yaml", "--checkpoints-dir", str(copy_root)]
    rows = {row["agent"]: row for row in json.loads(invoke(*args, "--json").stdout)["agents"]}
    assert (rows["A2C"]["resumable"], rows["A2C"]["resume_problem"]) == (False, "episode_0005.pt is missing")
    size = (copy_root / "test" / "PPO" / "episode_0005.pt").stat().st_size
    assert rows["PPO"]["resume_problem"] == f"episode_0005.pt is {size} bytes, metadata.json records {size - 1}"
    assert (rows["SAC"]["state"], rows["SAC"]["resume_problem"]) == ("uncommitted", "no committed checkpoint")
    table = invoke(*args).stdout
    assert "no: episode_0005.pt is missing" in table and "uncommitted" in table


def test_bad_baseline_in_config_is_a_field_error(tmp_path: Path) -> None:
    config = inspect_config()
    config["baseline"] = {"co2": 500}
    path = write_config(tmp_path / "bad.yaml", config)
    one_line_error(
        invoke("status", "--config", str(path)),
        f"{path}: baseline.co2: not 'reward' or a metric of env.metrics (known: reward, co2_kg)",
    )


def test_misspelt_keep_metric_exits_2_naming_the_known_ones_and_writes_nothing(tmp_path: Path) -> None:
    config = inspect_config()
    config["checkpoints_dir"] = str(tmp_path / "checkpoints")
    config["train"]["keep"] = {"best": 1, "metric": "co2"}
    path = write_config(tmp_path / "bad.yaml", config)
    one_line_error(
        invoke("train", "--config", str(path)),
        f"{path}: train.keep.metric: 'co2' is not 'reward' or a metric of env.metrics (known: reward, co2_kg)",
    )
    assert sorted(item.name for item in tmp_path.iterdir()) == ["bad.yaml"]


# --- atheria compare ----------------------------------------------------------------------------


def test_compare_against_the_baseline(run_root: Path) -> None:
    result = invoke("compare", "--config", "exp.yaml")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.splitlines()[0] == "test: co2_kg (min), last 10 episode(s) per agent"
    means = {}
    for agent in TRAINED:
        values = [record["metrics"]["co2_kg"] for record in records(run_root, agent)]
        means[agent] = average = mean(values)
        std = math.sqrt(mean([(value - average) ** 2 for value in values]))
        moved = average - BASELINE_CO2
        arrow = "↓" if moved < 0 else "↑"
        row = next(line for line in out.splitlines() if line.startswith(f"│ {agent} "))
        assert f"│ 1–5      │ {average:.2f} ± {std:.2f} │ 200.00 → {average:.2f} │" in row, row
        assert f"{arrow} {abs(moved):.2f} ({abs(moved) / BASELINE_CO2 * 100:.1f} %)" in row
        assert ("better" if moved < 0 else "worse") in row
    assert re.search(r"│ SAC\s+│ no run", out)
    assert out.splitlines()[-1] == f"best: {min(means, key=means.__getitem__)}"


def test_compare_names_its_verdict_column(hand_made: Path) -> None:
    result = invoke("compare", "--config", str(hand_made))
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "unit: co2_kg (min), last 10 episode(s) per agent\n"
        "┏━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━┳━━━━━━━━━┓\n"
        "┃ Agent ┃ Episodes ┃    Mean ± std ┃     vs baseline ┃           Change ┃ Verdict ┃\n"
        "┡━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━╇━━━━━━━━━┩\n"
        "│ PPO   │ 1–2      │ 80.00 ± 10.00 │  100.00 → 80.00 │ ↓ 20.00 (20.0 %) │ better  │\n"
        "│ SAC   │ 1–2      │ 115.00 ± 5.00 │ 100.00 → 115.00 │ ↑ 15.00 (15.0 %) │ worse   │\n"
        "└───────┴──────────┴───────────────┴─────────────────┴──────────────────┴─────────┘\n"
        "best: PPO\n"
    )


def test_compare_json_window_and_metric(run_root: Path) -> None:
    result = invoke("compare", "--config", "exp.yaml", "--window", "2", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["window"], document["baseline"], document["metric"]["name"]) == (2, BASELINE_CO2, "co2_kg")
    row = next(row for row in document["agents"] if row["agent"] == "PPO")
    values = [record["metrics"]["co2_kg"] for record in records(run_root, "PPO")][-2:]
    assert (row["episodes"], row["first_episode"], row["last_episode"]) == (2, 4, 5)
    assert row["mean"] == pytest.approx(mean(values))
    assert row["std"] == pytest.approx(abs(values[0] - values[1]) / 2)
    assert row["improvement"] == pytest.approx(BASELINE_CO2 - mean(values))
    assert row["improvement_percent"] == pytest.approx((BASELINE_CO2 - mean(values)) / BASELINE_CO2 * 100)
    sac = next(row for row in document["agents"] if row["agent"] == "SAC")
    assert sac["state"] == "no run" and sac["mean"] is None

    reward = invoke("compare", "--config", "exp.yaml", "--metric", "reward")
    assert reward.exit_code == 0
    assert reward.stdout.splitlines()[0] == "test: reward (max), last 10 episode(s) per agent"
    assert "no baseline for reward: add `baseline: {reward: VALUE}` to the config to compare with one" in reward.stdout
    assert "vs baseline" not in reward.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--window", "0"], "Invalid value for '--window' / '-w': Input should be greater than or equal to 1"),
        (["--metric", "co2"], "unknown metric 'co2': the experiment records reward, co2_kg"),
        (["--config", "missing.yaml"], "config file not found: missing.yaml"),
    ],
)
def test_compare_bad_input_is_one_line(args: list[str], message: str) -> None:
    if "--config" not in args:
        args = ["--config", "exp.yaml", *args]
    one_line_error(invoke("compare", *args), message)


# --- reading only JSON ----------------------------------------------------------------------------

NO_HEAVY_IMPORTS = """
import sys
from atheria_cli.cli import main

codes = []
for args in ({commands}):
    sys.argv = ["atheria", *args]
    try:
        main()
    except SystemExit as exit:
        codes.append(exit.code)
heavy = sorted(name for name in ("torch", "stable_baselines3", "gymnasium") if name in sys.modules)
print("RESULT", codes, heavy, file=sys.stderr)
"""


def test_inspection_commands_never_import_torch_sb3_or_gymnasium(run_root: Path, tmp_path: Path) -> None:
    commands = [
        ["history", "A2C", "--config", "exp.yaml", "--csv", str(tmp_path / "e.csv")],
        ["history", "PPO", "--config", "exp.yaml", "--json", "--all"],
        ["status", "--config", "exp.yaml"],
        ["compare", "--config", "exp.yaml", "--json"],
    ]
    code = NO_HEAVY_IMPORTS.format(commands=", ".join(repr(command) for command in commands))
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=run_root, timeout=120, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr.strip().splitlines()[-1] == "RESULT [0, 0, 0, 0] []"
