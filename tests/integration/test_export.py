"""atheria export-jit and atheria eval on small real runs."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import atheria_cli
from atheria_cli.cli import app
from tests.conftest import CARTPOLE_ENV, TINY_AGENTS, tiny_config, write_config

pytestmark = pytest.mark.integration
runner = CliRunner()

NORMALIZED_PENDULUM = {"id": "Pendulum-v1", "max_episode_steps": 50, "normalize": True}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Box actions (A2C, PPO, SAC, plus a VecNormalize PPO) and Discrete actions (DQN), 2 episodes each."""
    root = tmp_path_factory.mktemp("runs")
    configs = {
        "box": tiny_config({name: TINY_AGENTS[name] for name in ("A2C", "PPO", "SAC")}),
        "normalized": tiny_config({"PPO": TINY_AGENTS["PPO"]}, env=NORMALIZED_PENDULUM, experiment="normalized"),
        "discrete": tiny_config({"DQN": TINY_AGENTS["DQN"]}, env=CARTPOLE_ENV, experiment="discrete"),
    }
    for name, config in configs.items():
        config["checkpoints_dir"] = str(root / "checkpoints")
        path = write_config(root / f"{name}.yaml", config)
        result = runner.invoke(app, ["train", "--config", str(path), "--episodes", "2"])
        assert result.exit_code == 0, result.output
    return root


def invoke(runs: Path, config: str, *args: str):
    return runner.invoke(app, [*args, "--config", str(runs / f"{config}.yaml")])


@pytest.mark.parametrize(
    "config, agent, experiment",
    [
        ("box", "A2C", "test"),
        ("box", "PPO", "test"),
        ("box", "SAC", "test"),
        ("normalized", "PPO", "normalized"),
        ("discrete", "DQN", "discrete"),
    ],
)
def test_export_verifies_against_predict(runs: Path, config: str, agent: str, experiment: str) -> None:
    result = invoke(runs, config, "export-jit", agent)
    assert result.exit_code == 0, result.output
    folder = runs / "checkpoints" / experiment / agent
    assert result.stdout.startswith(
        f"{agent}: {folder / 'model_jit.pt'} (torchscript) from episode_0002.pt, verified on 256 observations, max |difference| "
    )
    side = json.loads((folder / "model_jit.json").read_text())
    assert side["format"] == "torchscript" and side["schema_version"] == 3
    assert side["file"] == "model_jit.pt" and side["sha256"] == hashlib.sha256((folder / "model_jit.pt").read_bytes()).hexdigest()
    assert side["source_checkpoint"] == "episode_0002.pt"
    assert side["source_sha256"] == json.loads((folder / "metadata.json").read_text())["checkpoints"][-1]["sha256"]
    assert side["verification"]["samples"] == 256 and side["verification"]["max_abs_diff"] <= 1e-5
    assert side["observation_normalization"] is (config == "normalized")
    assert {"torch", "stable_baselines3", "atheria"} <= set(side["versions"]) and side["exported"]
    assert side["action_space"]["type"] == ("Discrete" if agent == "DQN" else "Box")


BLOCKING_LOADER = """
import importlib.abc, json, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"atheria_cli", "stable_baselines3", "gymnasium"}:
            raise ImportError(f"blocked: {name}")
sys.meta_path.insert(0, Block())
import torch
module = torch.jit.load(sys.argv[1])
obs = torch.tensor(json.loads(sys.argv[2]), dtype=torch.float32)
print(json.dumps(module(obs).tolist()))
print(",".join(sorted(m for m in ("atheria_cli", "stable_baselines3", "gymnasium") if m in sys.modules)))
"""


@pytest.mark.parametrize("config, agent, experiment", [("normalized", "PPO", "normalized"), ("discrete", "DQN", "discrete")])
def test_exported_file_runs_with_torch_only(runs: Path, config: str, agent: str, experiment: str) -> None:
    assert invoke(runs, config, "export-jit", agent).exit_code == 0
    folder = runs / "checkpoints" / experiment / agent
    model = atheria_cli.load_agent(folder / "episode_0002.pt")
    space = model.observation_space
    space.seed(3)
    raw = np.stack([space.sample() for _ in range(16)]).astype(np.float32)
    completed = subprocess.run(
        [sys.executable, "-c", BLOCKING_LOADER, str(folder / "model_jit.pt"), json.dumps(raw.tolist())],
        capture_output=True,
        text=True,
        check=True,
        cwd=runs,
    )
    output, imported = completed.stdout.splitlines()
    assert imported == ""
    env = model.get_env()
    expected, _ = model.predict(env.normalize_obs(raw) if hasattr(env, "normalize_obs") else raw, deterministic=True)
    assert np.allclose(np.array(json.loads(output)).reshape(expected.shape), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("config, agent", [("box", "SAC"), ("normalized", "PPO"), ("discrete", "DQN")])
def test_eval_of_the_export_matches_eval_of_the_checkpoint(runs: Path, config: str, agent: str) -> None:
    experiment = {"box": "test", "normalized": "normalized", "discrete": "discrete"}[config]
    assert invoke(runs, config, "export-jit", agent).exit_code == 0
    jit = runs / "checkpoints" / experiment / agent / "model_jit.pt"
    from_checkpoint = invoke(runs, config, "eval", agent, "--episodes", "3", "--seed", "5", "--json")
    from_jit = invoke(runs, config, "eval", agent, "--episodes", "3", "--seed", "5", "--json", "--jit", str(jit))
    assert from_checkpoint.exit_code == 0 and from_jit.exit_code == 0, from_checkpoint.output + from_jit.output
    a, b = json.loads(from_checkpoint.stdout), json.loads(from_jit.stdout)
    assert a["source"] == "episode_0002.pt" and b["source"] == str(jit)
    assert [e["seed"] for e in a["episodes"]] == [5, 6, 7]
    assert a["summary"]["reward"]["mean"] == pytest.approx(b["summary"]["reward"]["mean"], rel=1e-6, abs=1e-6)
    assert [e["length"] for e in a["episodes"]] == [e["length"] for e in b["episodes"]]


def test_eval_table(runs: Path) -> None:
    result = invoke(runs, "box", "eval", "A2C", "--episodes", "2")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("A2C (episode_0002.pt): 2 deterministic episode(s), seeds 0–1\n")
    assert "reward" in result.stdout and "±" in result.stdout


def test_checkpoint_selection(runs: Path) -> None:
    assert invoke(runs, "box", "export-jit", "A2C", "--checkpoint", "1", "--no-verify").stdout.startswith(
        f"A2C: {runs / 'checkpoints/test/A2C/model_jit.pt'} (torchscript) from episode_0001.pt, not verified"
    )
    rewards = [json.loads(line)["reward"] for line in (runs / "checkpoints/test/A2C/episodes.jsonl").read_text().splitlines()]
    best = 1 + int(np.argmax(rewards))
    assert f"from episode_000{best}.pt" in invoke(runs, "box", "export-jit", "A2C", "--checkpoint", "best").stdout


def test_output_option_writes_elsewhere(runs: Path, tmp_path: Path) -> None:
    target = tmp_path / "policy.pt"
    result = invoke(runs, "box", "export-jit", "SAC", "--output", str(target))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy.json", "policy.pt"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["export-jit", "SAC", "--checkpoint", "9"], "atheria: error: SAC has no checkpoint for episode 9 (checkpoints: 1, 2)\n"),
        (
            ["export-jit", "SAC", "--checkpoint", "first"],
            "atheria: error: --checkpoint must be last, best or an episode number (got 'first')\n",
        ),
        (["export-jit", "TD3"], "atheria: error: unknown agent 'TD3': the experiment has A2C, PPO, SAC\n"),
        (["export-jit", "--output", "x.pt"], "atheria: error: --output names one file: give exactly one AGENT with it\n"),
        (["eval", "SAC", "--jit", "missing.pt"], "atheria: error: --jit: file not found: missing.pt\n"),
        (["eval", "SAC", "--episodes", "0"], None),
    ],
)
def test_export_and_eval_errors(runs: Path, args: list[str], message: str | None) -> None:
    result = invoke(runs, "box", *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("atheria: error: ") and result.stderr.count("\n") == 1
    if message:
        assert result.stderr == message


def test_agent_without_run_says_how_to_start_one(runs: Path, tmp_path: Path) -> None:
    config = tiny_config({"TD3": TINY_AGENTS["TD3"]}, checkpoints_dir=str(tmp_path / "none"))
    path = write_config(tmp_path / "c.yaml", config)
    for command in (["export-jit"], ["eval", "TD3"]):
        result = runner.invoke(app, [*command, "--config", str(path)])
        assert result.exit_code == 2
        assert (
            result.stderr
            == f"atheria: error: TD3 has no run in {tmp_path / 'none/test/TD3'}; start one with: atheria train --agent TD3\n"
        )


def test_checkpoint_from_another_env_is_refused(runs: Path, tmp_path: Path) -> None:
    config = tiny_config({"SAC": TINY_AGENTS["SAC"]}, checkpoints_dir=str(runs / "checkpoints"))
    config["env"] = {"id": "MountainCarContinuous-v0"}
    path = write_config(tmp_path / "other.yaml", config)
    for command in (["export-jit", "SAC"], ["eval", "SAC"]):
        result = runner.invoke(app, [*command, "--config", str(path)])
        assert result.exit_code == 2
        assert result.stderr.startswith("atheria: error: SAC: episode_0002.pt was trained with observation space Box(")
    jit = runs / "checkpoints/test/SAC/model_jit.pt"
    assert invoke(runs, "box", "export-jit", "SAC").exit_code == 0
    result = runner.invoke(app, ["eval", "SAC", "--config", str(path), "--jit", str(jit)])
    assert result.exit_code == 2 and "model_jit.pt was exported for another observation space" in result.stderr


@pytest.mark.skipif(importlib.util.find_spec("onnx") is not None, reason="onnx is installed")
def test_onnx_without_the_extra_is_a_clear_error(runs: Path) -> None:
    result = invoke(runs, "box", "export-jit", "SAC", "--onnx")
    assert result.exit_code == 2
    assert result.stderr.startswith("atheria: error: the onnx format needs onnx")
    assert result.stderr.endswith(": pip install 'atheria-cli[onnx]'\n")


@pytest.mark.parametrize("format_name, file", [("torchscript", "sac.pt"), ("exported", "sac.pt2")])
def test_failed_verification_writes_nothing(
    runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, format_name: str, file: str
) -> None:
    """Fault injection: export a *different* policy (A2C's) for SAC; verification must catch it."""
    import atheria_cli.trainers.sb3.deploy as export

    other = atheria_cli.load_agent(runs / "checkpoints/test/A2C/episode_0002.pt")
    real_module = export.policy_module
    monkeypatch.setattr(export, "policy_module", lambda model, normalizer: real_module(other, None))
    target = tmp_path / file
    result = invoke(runs, "box", "export", "SAC", "--format", format_name, "--output", str(target))
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"atheria: error: SAC: the exported {format_name} policy disagrees with model.predict on 256 observations (max |difference| "
    )
    assert result.stderr.endswith("> 1e-05); nothing written\n")
    assert list(tmp_path.iterdir()) == []


ONNX_MISSING = [name for name in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(name) is None]
needs_onnx = pytest.mark.skipif(bool(ONNX_MISSING), reason=f"the onnx extra is not installed ({', '.join(ONNX_MISSING)} missing)")
EXPERIMENTS = {"box": "test", "normalized": "normalized", "discrete": "discrete"}
FORMAT_FILES = {"exported": "model_exported.pt2", "onnx": "model_onnx.onnx"}


@pytest.fixture(scope="module")
def checkpoint_evals(runs: Path) -> dict[tuple[str, str], dict]:
    """``eval --json`` of each agent's last checkpoint, computed once, compared with every format."""
    cache: dict[tuple[str, str], dict] = {}
    for config, agent in (("box", "SAC"), ("normalized", "PPO"), ("discrete", "DQN")):
        result = invoke(runs, config, "eval", agent, "--episodes", "3", "--seed", "5", "--json")
        assert result.exit_code == 0, result.output
        cache[(config, agent)] = json.loads(result.stdout)
    return cache


@pytest.mark.parametrize("format_name", ["exported", pytest.param("onnx", marks=needs_onnx)])
@pytest.mark.parametrize("config, agent", [("box", "SAC"), ("normalized", "PPO"), ("discrete", "DQN")])
def test_format_exports_verifies_and_evaluates_like_the_checkpoint(
    runs: Path, checkpoint_evals: dict, config: str, agent: str, format_name: str
) -> None:
    result = invoke(runs, config, "export", agent, "--format", format_name)
    assert result.exit_code == 0, result.output
    exported = runs / "checkpoints" / EXPERIMENTS[config] / agent / FORMAT_FILES[format_name]
    assert result.stdout.startswith(
        f"{agent}: {exported} ({format_name}) from episode_0002.pt, verified on 256 observations, max |difference| "
    )
    side = json.loads(exported.with_suffix(".json").read_text())
    assert (side["format"], side["file"], side["size"]) == (format_name, exported.name, exported.stat().st_size)
    assert side["sha256"] == hashlib.sha256(exported.read_bytes()).hexdigest()
    assert side["verification"]["samples"] == 256 and side["verification"]["max_abs_diff"] <= 1e-5
    evaluated = invoke(runs, config, "eval", agent, "--episodes", "3", "--seed", "5", "--json", "--export", str(exported))
    assert evaluated.exit_code == 0, evaluated.output
    a, b = checkpoint_evals[(config, agent)], json.loads(evaluated.stdout)
    assert b["source"] == str(exported) and [e["seed"] for e in b["episodes"]] == [5, 6, 7]
    assert [e["length"] for e in a["episodes"]] == [e["length"] for e in b["episodes"]]
    assert a["summary"]["reward"]["mean"] == pytest.approx(b["summary"]["reward"]["mean"], rel=1e-5, abs=1e-5)


@needs_onnx
def test_export_jit_onnx_also_writes_the_onnx_format(runs: Path, tmp_path: Path) -> None:
    target = tmp_path / "policy.pt"
    result = invoke(runs, "box", "export-jit", "SAC", "--onnx", "--output", str(target))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy.json", "policy.pt", "policy_onnx.json", "policy_onnx.onnx"]
    assert json.loads((tmp_path / "policy_onnx.json").read_text())["format"] == "onnx"
    assert [line.split(" (")[1].split(")")[0] for line in result.stdout.splitlines()] == ["torchscript", "onnx"]


def torchscript_deprecations(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning) and "torch.jit" in str(w.message)]


@pytest.mark.parametrize(
    "format_name, warns", [("torchscript", True), ("exported", False), pytest.param("onnx", False, marks=needs_onnx)]
)
def test_only_the_torchscript_format_calls_deprecated_torch_jit(
    runs: Path, tmp_path: Path, format_name: str, warns: bool
) -> None:
    """torch 2.13 deprecates torch.jit.*: only --format torchscript may call it (the torchscript case
    shows the recorder does see the warning)."""
    target = tmp_path / f"policy{Path(FORMAT_FILES.get(format_name, 'x.pt')).suffix}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = invoke(runs, "normalized", "export", "PPO", "--format", format_name, "--output", str(target))
    assert result.exit_code == 0, result.output
    assert bool(torchscript_deprecations(caught)) is warns, torchscript_deprecations(caught)


def test_an_export_that_a_later_agent_refuses_writes_no_agent_s_file(in_tmp: Path) -> None:
    # The first agent's export was written, then the frame-stacked second one refused (exit 2).
    stacked = {**TINY_AGENTS["A2C"], "algo": "A2C", "env": {"frame_stack": 2}}
    path = write_config(in_tmp / "exp.yaml", tiny_config({"A2C": TINY_AGENTS["A2C"], "Stacked": stacked}))
    assert runner.invoke(app, ["train", "--config", str(path), "--episodes", "1"]).exit_code == 0
    before = sorted(str(item.relative_to(in_tmp)) for item in in_tmp.rglob("*"))
    result = runner.invoke(app, ["export", "--config", str(path), "--format", "torchscript"])
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        "atheria: error: Stacked: a frame-stacked policy (frame_stack) cannot be exported yet; evaluate it with `atheria eval`\n"
    )
    assert sorted(str(item.relative_to(in_tmp)) for item in in_tmp.rglob("*")) == before
