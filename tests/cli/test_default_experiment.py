"""The packaged default experiment (the building env) and its reference policies."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from atheria_cli.cli import app
from tests.cli.test_report_cli import CHROMIUM, browser_command, browser_images

pytestmark = pytest.mark.integration
runner = CliRunner()


def test_default_experiment_trains_from_any_directory_and_reports_co2(in_tmp: Path) -> None:
    result = runner.invoke(app, ["train", "--episodes", "1"])
    assert result.exit_code == 0, result.output
    assert "default: co2_kg per episode" in result.stdout
    row = next(line for line in result.stdout.splitlines() if line.strip().startswith("│       1"))
    values = [float(cell) for cell in row.replace("│", " ").split()[1:]]
    assert len(values) == 3 and all(300 < value < 900 for value in values)  # kg CO2 of one week
    assert re.search(
        r"^A2C: 1 episode\(s\), mean co2_kg [\d.]+ vs baseline 550 \(\d+\.\d % (better|worse)\), last checkpoint ",
        result.stdout,
        re.M,
    )
    record = json.loads((in_tmp / "checkpoints/default/SAC/episodes.jsonl").read_text().splitlines()[0])
    assert record["length"] == 168 and set(record["metrics"]) == {"co2_kg"}


def test_reference_policies_are_named_baselines(in_tmp: Path) -> None:
    heuristic = runner.invoke(app, ["eval", "heuristic", "--episodes", "2", "--json"])
    idle = runner.invoke(app, ["eval", "idle", "--episodes", "2", "--json"])
    assert heuristic.exit_code == 0 and idle.exit_code == 0, heuristic.output + idle.output
    a, b = json.loads(heuristic.stdout), json.loads(idle.stdout)
    assert a["source"] == b["source"] == "reference policy"
    assert a["summary"]["co2_kg"]["mean"] < b["summary"]["co2_kg"]["mean"]  # the rule beats doing nothing
    assert a["improvement"]["co2_kg"]["absolute"] == pytest.approx(550 - a["summary"]["co2_kg"]["mean"])
    recorded = json.loads((in_tmp / "checkpoints/default/references/heuristic.json").read_text())
    assert recorded["schema_version"] == 1 and recorded["seeds"] == [10000, 10001]  # train.eval's seeds
    assert recorded["summary"]["co2_kg"] == a["summary"]["co2_kg"]
    compared = runner.invoke(app, ["compare", "--json"])
    assert compared.exit_code == 0, compared.output
    references = [row for row in json.loads(compared.stdout)["agents"] if row["kind"] == "reference"]
    assert [row["agent"] for row in references] == ["heuristic", "idle"]
    assert references[0]["mean"] == a["summary"]["co2_kg"]["mean"] and references[0]["episodes"] == 2
    table = runner.invoke(app, ["compare"])
    assert "heuristic (reference)" in table.stdout and "550.00 → " in table.stdout
    unknown = runner.invoke(app, ["eval", "greedy"])
    assert unknown.exit_code == 2
    assert unknown.stderr == (
        "atheria: error: unknown agent 'greedy': the experiment has A2C, SAC, PPO; "
        "atheria/BuildingCO2-v0 offers the reference policies heuristic, idle\n"
    )


def test_agents_and_the_heuristic_are_compared_on_the_same_evaluation_seeds(in_tmp: Path) -> None:
    # Training episodes explore and play the training stream's weeks; the heuristic plays
    # deterministic evaluation weeks. compare must rank both on the same ones: train.eval's.
    trained = runner.invoke(app, ["train", "--agent", "A2C", "--episodes", "5"])
    assert trained.exit_code == 0, trained.output
    assert "A2C evaluation at episode 5 (5 episodes): " in trained.stderr
    evaluation = json.loads((in_tmp / "checkpoints/default/A2C/history.json").read_text())["evaluations"]
    assert [item["seeds"] for item in evaluation] == [[10000, 10001, 10002, 10003, 10004]]
    heuristic = runner.invoke(app, ["eval", "heuristic", "--json"])
    assert heuristic.exit_code == 0, heuristic.output
    assert [episode["seed"] for episode in json.loads(heuristic.stdout)["episodes"]] == evaluation[0]["seeds"]
    compared = runner.invoke(app, ["compare", "--json"])
    assert compared.exit_code == 0, compared.output
    rows = {row["agent"]: row for row in json.loads(compared.stdout)["agents"]}
    assert rows["A2C"]["source"] == "evaluation" and rows["A2C"]["episodes"] == 5
    assert rows["A2C"]["mean"] == pytest.approx(evaluation[0]["metrics"]["co2_kg"]["mean"])
    assert rows["heuristic"]["kind"] == "reference" and rows["heuristic"]["episodes"] == 5


def test_the_default_experiment_s_report_shows_agents_and_the_heuristic_on_the_same_weeks(in_tmp: Path) -> None:
    trained = runner.invoke(app, ["train", "--agent", "A2C", "--episodes", "5"])
    assert trained.exit_code == 0, trained.output
    assert runner.invoke(app, ["eval", "heuristic"]).exit_code == 0
    page = runner.invoke(app, ["report"])
    assert page.exit_code == 0, page.output
    html = (in_tmp / "checkpoints/default/report.html").read_text(encoding="utf-8")
    comparison = html[html.index('<h2 id="comparison">') : html.index('<h2 id="learning-curves">')]
    # Both rows scored on the same 5 evaluation weeks (train.eval's seeds), not training episodes.
    assert "A2C</td><td>5 evaluation episodes at episode 5" in comparison
    assert "heuristic (reference)</td><td>reference policy, 5 evaluation episodes" in comparison
    # After 5 episodes the heuristic still beats A2C: "best" ranks agents and must not read as the best policy.
    assert "Best agent: A2C; the reference heuristic scores better." in comparison
    (in_tmp / "out").mkdir()
    markdown = runner.invoke(app, ["report", "--format", "md", "--output", str(in_tmp / "out/REPORT.md")])
    assert markdown.exit_code == 0, markdown.output
    assert sorted(path.name for path in (in_tmp / "out").iterdir()) == ["REPORT.md", "REPORT_files"]
    if CHROMIUM is None:
        pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium): the page was not rendered")
    assert len(browser_images(in_tmp / "checkpoints/default/report.html", browser_command(in_tmp / "profile"))) == 2
