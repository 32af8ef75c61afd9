"""`atheria report` through Typer's CliRunner on a real tiny run, and its page in a real browser.

One module-scoped run: A2C (on-policy) and SAC (off-policy) trained by `atheria train` on a
20-step environment whose final info carries `co2_kg`, evaluated every 2 episodes, in two
sessions (episodes 1-2, then 3 with --resume); PPO is in the experiment but never trained. The
browser test renders the HTML with headless Chromium where one is installed (Debian: `apt-get
install chromium`) and is skipped, saying so, where none is.
"""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from typer.testing import CliRunner

from atheria_cli.cli import app
from tests.conftest import TINY_AGENTS, tiny_config, write_config

pytestmark = pytest.mark.integration

runner = CliRunner()
TRAINED = ("A2C", "SAC")
CHROMIUM = next((found for name in ("chromium", "chromium-browser", "google-chrome") if (found := shutil.which(name))), None)
MATPLOTLIB_BLUE = (31, 119, 180)  # the first line colour of every figure ("tab:blue"); the page's CSS has no such colour


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args))


@pytest.fixture(scope="module")
def run_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report")
    config = tiny_config(
        agents={name: TINY_AGENTS[name] for name in ("A2C", "SAC", "PPO")},
        env={"id": "tests.envs:EmissionsEnv", "metrics": [{"name": "co2_kg", "goal": "min"}]},
        baseline={"co2_kg": 200.0},
    )
    config["train"]["eval"] = {"every": 2, "episodes": 1}
    write_config(root / "exp.yaml", config)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        agents = [option for agent in TRAINED for option in ("--agent", agent)]
        first = invoke("train", "--config", "exp.yaml", "--episodes", "2", *agents)
        assert first.exit_code == 0, first.output
        second = invoke("train", "--config", "exp.yaml", "--episodes", "1", "--resume", *agents)
        assert second.exit_code == 0, second.output
    return root


@pytest.fixture(autouse=True)
def in_run_root(run_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(run_root)
    return run_root


def test_report_writes_html_beside_the_runs_and_prints_its_path(run_root: Path) -> None:
    result = invoke("report", "--config", "exp.yaml")
    assert result.exit_code == 0, result.output
    assert result.stdout == "checkpoints/test/report.html\n" and result.stderr == ""
    page = (run_root / "checkpoints" / "test" / "report.html").read_text(encoding="utf-8")
    for agent in TRAINED:  # each trained agent: its curve, both its sessions, its evaluations' score
        assert f'alt="learning curve of {agent}"' in page
        assert f"<h3>{agent}</h3>" in page
    assert page.count("resumed from episode_0002.pt") == 2
    assert "1 evaluation episodes at episode 2" in page  # compare's rule: the last evaluation scores it
    assert "PPO has no committed run." in page


def test_report_markdown_writes_the_pngs_beside_it(run_root: Path, tmp_path: Path) -> None:
    target = tmp_path / "shared" / "exp.md"
    target.parent.mkdir()
    result = invoke("report", "--config", "exp.yaml", "--format", "md", "--output", str(target))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{target}\n"
    assert result.stderr == f"figures: 3 PNG(s) in {tmp_path / 'shared' / 'exp_files'}\n"
    names = sorted(path.name for path in (tmp_path / "shared" / "exp_files").iterdir())
    assert names == ["all_agents.png", "curve_A2C.png", "curve_SAC.png"]
    assert "![learning curve of SAC](exp_files/curve_SAC.png)" in target.read_text(encoding="utf-8")


def test_report_of_an_experiment_without_runs_exits_2_with_one_line(run_root: Path, tmp_path: Path) -> None:
    result = invoke("report", "--config", "exp.yaml", "--checkpoints-dir", str(tmp_path / "empty"))
    assert result.exit_code == 2
    run_dir = tmp_path / "empty" / "test"
    message = f"test has no committed run in {run_dir}: nothing to report; train one with: atheria train"
    assert result.stderr == f"atheria: error: {message}\n" and result.stdout == ""
    assert not (tmp_path / "empty").exists()


def test_report_bad_format_exits_2_with_one_line() -> None:
    result = invoke("report", "--config", "exp.yaml", "--format", "pdf")
    assert result.exit_code == 2
    assert result.stderr == "atheria: error: --format 'pdf': use html or md\n"


def test_report_never_imports_torch(run_root: Path, tmp_path: Path) -> None:
    """The whole command, figures included, reads JSON and draws: torch and SB3 stay unloaded."""
    code = (
        "import sys\nfrom atheria_cli.cli import app\n"
        f"try:\n    app(['report', '--config', 'exp.yaml', '--output', {str(tmp_path / 'r.html')!r}])\n"
        "except SystemExit as exit:\n    assert exit.code == 0, exit.code\n"
        "print(','.join(sorted(m for m in ('torch', 'stable_baselines3', 'gymnasium') if m in sys.modules)))\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=run_root)
    assert completed.stdout.splitlines()[-1] == ""


def browser_command(profile: Path) -> list[str]:
    """Headless Chromium, as the project's machines run it (root: no sandbox; no network)."""
    assert CHROMIUM is not None
    return [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--disable-background-networking",
        "--no-first-run",
        f"--user-data-dir={profile}",
    ]


def browser_images(page: Path, browser: list[str]) -> list[bytes]:
    """The page's images in the DOM as the browser built it, each a data URI decoded and
    verified as a PNG."""
    dom = subprocess.run([*browser, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=True).stdout
    images = [base64.b64decode(source, validate=True) for source in re.findall(r'<img src="data:image/png;base64,([^"]+)"', dom)]
    for image in images:
        Image.open(io.BytesIO(image)).verify()
    return images


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH (Debian: apt-get install chromium)")
def test_report_renders_in_a_real_browser_with_every_image(run_root: Path, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    assert invoke("report", "--config", "exp.yaml", "--output", str(page)).exit_code == 0
    browser = browser_command(tmp_path / "profile")
    assert len(browser_images(page, browser)) == 3  # every agent together, then A2C and SAC
    # The page as drawn: the figures' line colour fills a good part of it, so the images were
    # decoded and painted (a blocked or broken image draws none of it).
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*browser, f"--screenshot={shot}", "--window-size=1200,3000", page.as_uri()], capture_output=True, timeout=120, check=True
    )
    picture = Image.open(shot).convert("RGB")
    assert picture.size == (1200, 3000)
    colours = picture.getcolors(maxcolors=1 << 24) or []
    assert len(colours) > 50  # not a blank page
    blue = sum(count for count, rgb in colours if all(abs(a - b) <= 12 for a, b in zip(rgb, MATPLOTLIB_BLUE, strict=True)))
    assert blue > 500, blue
