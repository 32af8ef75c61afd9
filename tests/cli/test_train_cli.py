"""`atheria train` through Typer's CliRunner: exit codes, messages, files on disk."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from atheria_cli.cli import app
from tests.conftest import TINY_AGENTS, listing, tiny_config, write_config

# Only the tests that train are marked integration: `pytest -m 'not integration'` still runs the
# bad-input tests, which must exit 2 before anything trains.

runner = CliRunner()
AGENT_FILES_AFTER_3 = [
    "config.json",
    "episode_0001.pt",
    "episode_0002.pt",
    "episode_0003.pt",
    "episodes.jsonl",
    "history.json",
    "metadata.json",
]


def invoke(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def config_path(in_tmp: Path) -> Path:
    return write_config(in_tmp / "exp.yaml", tiny_config())


@pytest.mark.integration
def test_train_then_resume_writes_the_seed_layout(config_path: Path, in_tmp: Path) -> None:
    first = invoke("train", "--config", str(config_path), "--episodes", "2")
    assert first.exit_code == 0, first.output
    second = invoke("train", "--config", str(config_path), "--resume", "--episodes", "1")
    assert second.exit_code == 0, second.output

    run_dir = in_tmp / "checkpoints" / "test"
    assert listing(in_tmp) == ["checkpoints", "exp.yaml"]
    assert listing(run_dir) == ["A2C", "PPO", "SAC"]
    for agent in ("A2C", "SAC", "PPO"):
        folder = run_dir / agent
        assert listing(folder) == sorted(AGENT_FILES_AFTER_3 + (["replay"] if agent == "SAC" else []))
        history = json.loads((folder / "history.json").read_text())
        assert history["schema_version"] == 1
        assert history["total_episodes"] == 3
        assert [s["start_episode"] for s in history["trainings"]] == [1, 3]
        assert [s["end_episode"] for s in history["trainings"]] == [2, 3]
        assert [s["episodes_count"] for s in history["trainings"]] == [2, 1]
        for session in history["trainings"]:
            assert {"session_timestamp", "start_episode", "end_episode", "episodes_count", "device", "duration_seconds"} <= set(
                session
            )
            assert session["device"] == "cpu"
        assert history["trainings"][1]["resumed_from"] == "episode_0002.pt"
        lines = (folder / "episodes.jsonl").read_bytes()
        assert history["episodes_file"] == "episodes.jsonl" and history["episodes_bytes"] == len(lines)
        records = [json.loads(line) for line in lines.decode().splitlines()]
        assert [e["episode"] for e in records] == [1, 2, 3]
        assert all(set(e) == {"episode", "timesteps", "reward", "length", "seconds", "metrics"} for e in records)
        assert [e["timesteps"] for e in records] == [50, 100, 150]

        metadata = json.loads((folder / "metadata.json").read_text())
        assert metadata["schema_version"] == 1
        assert metadata["agent"] == agent and metadata["algo"] == agent
        assert metadata["env_id"] == "Pendulum-v1"
        assert metadata["last_episode"] == 3 and metadata["total_timesteps"] == 150
        assert metadata["device"] == "cpu"
        assert {"torch", "stable_baselines3", "gymnasium", "numpy", "python", "atheria"} <= set(metadata["versions"])
        assert metadata["hyperparams"]["policy_kwargs"] == {"net_arch": [16]}
        assert "gamma" in metadata["hyperparams"]  # SB3 defaults are resolved too
        assert [c["file"] for c in metadata["checkpoints"]] == ["episode_0001.pt", "episode_0002.pt", "episode_0003.pt"]
        for entry in metadata["checkpoints"]:
            assert entry["size"] == (folder / entry["file"]).stat().st_size
            assert re.fullmatch(r"[0-9a-f]{64}", entry["sha256"])
        if agent == "SAC":
            assert listing(folder / "replay") == ["episode_0001.npz", "episode_0002.npz", "episode_0003.npz"]
            assert metadata["checkpoints"][-1]["replay_rows"] == [0, 150]
            assert [(s["file"], s["start"], s["end"]) for s in metadata["replay_segments"]] == [
                ("replay/episode_0001.npz", 0, 50),
                ("replay/episode_0002.npz", 50, 100),
                ("replay/episode_0003.npz", 100, 150),
            ]
        stored_config = json.loads((folder / "config.json").read_text())
        assert stored_config["schema_version"] == 1
        assert stored_config["config"]["agents"][agent]["hyperparams"]["policy_kwargs"] == {"net_arch": [16]}


@pytest.mark.integration
def test_summary_table_lists_every_agent_per_episode(config_path: Path) -> None:
    result = invoke("train", "--config", str(config_path), "--episodes", "2")
    assert result.exit_code == 0
    header = next(line for line in result.stdout.splitlines() if "Episode" in line)
    assert [name for name in ("A2C", "SAC", "PPO") if name in header] == ["A2C", "SAC", "PPO"]
    assert "test: reward per episode" in result.stdout
    assert "A2C: 2 episode(s), last checkpoint checkpoints/test/A2C/episode_0002.pt" in result.stdout
    # Progress goes to stderr, one line per episode when stderr is not a terminal.
    assert "SAC episode 2: reward=" in result.stderr


@pytest.mark.integration
def test_existing_run_without_resume_is_refused_and_untouched(config_path: Path, in_tmp: Path) -> None:
    assert invoke("train", "--config", str(config_path), "--episodes", "1", "--agent", "SAC").exit_code == 0
    before = {p: p.stat().st_mtime_ns for p in (in_tmp / "checkpoints").rglob("*")}
    result = invoke("train", "--config", str(config_path), "--episodes", "1", "--agent", "SAC")
    assert result.exit_code == 2
    assert result.stderr == (
        "atheria: error: SAC already has 1 episode(s) in checkpoints/test/SAC (last checkpoint episode_0001.pt); "
        "use --resume to continue or --fresh to move it aside and start over\n"
    )
    assert {p: p.stat().st_mtime_ns for p in (in_tmp / "checkpoints").rglob("*")} == before


@pytest.mark.integration
def test_fresh_moves_the_old_run_aside(config_path: Path, in_tmp: Path) -> None:
    assert invoke("train", "--config", str(config_path), "--episodes", "2", "--agent", "PPO").exit_code == 0
    old_sha = json.loads((in_tmp / "checkpoints/test/PPO/metadata.json").read_text())["checkpoints"][-1]["sha256"]
    result = invoke("train", "--config", str(config_path), "--episodes", "1", "--agent", "PPO", "--fresh")
    assert result.exit_code == 0, result.output
    names = listing(in_tmp / "checkpoints/test")
    assert len(names) == 2 and names[0] == "PPO" and re.fullmatch(r"PPO\.old-\d{8}T\d{6}Z", names[1])
    assert listing(in_tmp / "checkpoints/test/PPO") == [
        "config.json",
        "episode_0001.pt",
        "episodes.jsonl",
        "history.json",
        "metadata.json",
    ]
    moved = in_tmp / "checkpoints/test" / names[1]
    assert listing(moved) == [
        "config.json",
        "episode_0001.pt",
        "episode_0002.pt",
        "episodes.jsonl",
        "history.json",
        "metadata.json",
    ]
    assert json.loads((moved / "metadata.json").read_text())["checkpoints"][-1]["sha256"] == old_sha
    assert f"PPO: previous run moved to checkpoints/test/{names[1]}" in result.stderr


@pytest.mark.integration
def test_agent_filter_trains_only_the_named_agents(config_path: Path, in_tmp: Path) -> None:
    result = invoke("train", "--config", str(config_path), "--episodes", "1", "--agent", "PPO", "--agent", "A2C")
    assert result.exit_code == 0, result.output
    assert listing(in_tmp / "checkpoints/test") == ["A2C", "PPO"]
    # The next session may add the third agent, and resume the others.
    result = invoke("train", "--config", str(config_path), "--episodes", "1", "--resume")
    assert result.exit_code == 0, result.output
    assert "SAC: no checkpoint in checkpoints/test/SAC, starting fresh" in result.stderr
    totals = {
        a: json.loads((in_tmp / f"checkpoints/test/{a}/history.json").read_text())["total_episodes"]
        for a in ("A2C", "SAC", "PPO")
    }
    assert totals == {"A2C": 2, "SAC": 1, "PPO": 2}


@pytest.mark.integration
def test_save_every_checkpoints_on_multiples_and_at_the_session_end(in_tmp: Path) -> None:
    config = tiny_config({"A2C": TINY_AGENTS["A2C"]}, train={"episodes": 2, "save_every": 2, "schedule_timesteps": 2000})
    path = write_config(in_tmp / "exp.yaml", config)
    assert invoke("train", "--config", str(path), "--episodes", "5").exit_code == 0
    assert [p for p in listing(in_tmp / "checkpoints/test/A2C") if p.endswith(".pt")] == [
        "episode_0002.pt",
        "episode_0004.pt",
        "episode_0005.pt",
    ]


@pytest.mark.integration
def test_options_override_the_config(config_path: Path, in_tmp: Path) -> None:
    result = invoke(
        "train",
        "--config",
        str(config_path),
        "--episodes",
        "1",
        "--agent",
        "A2C",
        "--seed",
        "7",
        "--device",
        "cpu",
        "--checkpoints-dir",
        "elsewhere",
    )
    assert result.exit_code == 0, result.output
    stored = json.loads((in_tmp / "elsewhere/test/A2C/config.json").read_text())["config"]
    assert stored["seed"] == 7 and stored["checkpoints_dir"] == "elsewhere"
    assert not (in_tmp / "checkpoints").exists()


@pytest.mark.integration
def test_packaged_default_config_is_used_anywhere(in_tmp: Path) -> None:
    from atheria_cli.config import load_config, resolve_config_path

    assert resolve_config_path(None, in_tmp) is None
    config = load_config(None)
    assert list(config.agents) == ["A2C", "SAC", "PPO"]
    repo_default = Path(__file__).resolve().parents[2] / "configs" / "default.yaml"
    packaged = Path(__file__).resolve().parents[2] / "atheria_cli" / "config" / "default.yaml"
    assert repo_default.read_text() == packaged.read_text()


# --- bad input: exit 2, one line on stderr, nothing written ------------------------------------

BAD_CONFIGS = {
    "unknown_field": (
        {"agents": {"SAC": {"hyperparams": {}, "learning_rate": 0.1}}},
        "agents.SAC.learning_rate: unknown field",
    ),
    "unknown_algo": (
        {"agents": {"X": {"algo": "HER"}}},
        "agents.X.algo: Input should be 'A2C', 'PPO', 'SAC', 'TD3', 'DDPG', 'DQN', 'TQC', 'QRDQN', 'TRPO', 'CrossQ', "
        "'MaskablePPO' or 'RecurrentPPO'",
    ),
    "name_not_algo": ({"agents": {"Fast": {}}}, "agents.Fast.algo is required: 'Fast' is not an algorithm name"),
    "bad_value": (
        {"agents": {"SAC": {"hyperparams": {"learning_rate": "fast"}}}},
        "agents.SAC.hyperparams.learning_rate: Input should be a valid number",
    ),
    "unknown_kwarg": (
        {"agents": {"SAC": {"hyperparams": {"learning_rte": 0.1}}}},
        "agents.SAC.hyperparams.learning_rte: SAC does not accept 'learning_rte' (did you mean 'learning_rate'?",
    ),
    "reserved_kwarg": (
        {"agents": {"PPO": {"hyperparams": {"seed": 3}}}},
        "agents.PPO.hyperparams.seed: set by the 'seed' field or --seed",
    ),
    "unknown_env": (
        {"env": {"id": "Pendulam-v1"}},
        "env.id: unknown Gymnasium environment 'Pendulam-v1' (did you mean Pendulum-v1",
    ),
    "wrong_action_space": (
        {"agents": {"DQN": {}}},
        "agents.DQN: DQN needs a Discrete action space, but the environment has Box(",
    ),
    "negative_episodes": ({"train": {"episodes": 0}}, "train.episodes: Input should be greater than 0"),
    "bad_device": ({"device": "gpu"}, "device: 'gpu' is not a device: use auto, cpu, cuda or cuda:N"),
    "bad_activation": (
        {"agents": {"PPO": {"hyperparams": {"policy_kwargs": {"activation_fn": "os.system"}}}}},
        "agents.PPO.hyperparams.policy_kwargs.activation_fn: unknown 'os.system'",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config_exits_2_with_one_line_and_writes_nothing(case: str, in_tmp: Path) -> None:
    overrides, expected = BAD_CONFIGS[case]
    config = tiny_config()
    config.update(overrides)
    path = write_config(in_tmp / "bad.yaml", config)
    result = invoke("train", "--config", str(path))
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert result.stderr.startswith(f"atheria: error: {path}: {expected}") or result.stderr.startswith(
        f"atheria: error: {expected}"
    ), result.stderr
    assert listing(in_tmp) == ["bad.yaml"]


def test_an_unknown_policy_keyword_is_refused_before_any_agent_trains(in_tmp: Path) -> None:
    # SAC trains after A2C: found only when SAC's networks were built, A2C's run was on disk.
    config = tiny_config()
    config["agents"]["SAC"]["hyperparams"]["policy_kwargs"] = {"net_archx": [4]}
    path = write_config(in_tmp / "bad.yaml", config)
    result = invoke("train", "--config", str(path), "--episodes", "1")
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        "atheria: error: agents.SAC.hyperparams.policy_kwargs.net_archx: SACPolicy does not accept 'net_archx' "
        "(did you mean 'net_arch'? accepted: activation_fn, clip_mean, log_std_init, n_critics, net_arch, "
        "normalize_images, optimizer_class, optimizer_kwargs, share_features_extractor, use_expln)\n"
    )
    assert listing(in_tmp) == ["bad.yaml"]


@pytest.mark.parametrize(
    "size, message",
    [
        ([1, 2], "Input should be a valid integer (got [1, 2])"),
        ("💥", "Input should be a valid integer, unable to parse string as an integer (got '💥')"),
        (1.5, "Input should be a valid integer, got a number with a fractional part (got 1.5)"),
        (True, "Input should be a number, not a boolean (got True)"),
    ],
)
def test_a_buffer_size_that_is_not_an_integer_exits_2_before_the_memory_check(size: object, message: str, in_tmp: Path) -> None:
    config = tiny_config()
    config["agents"]["SAC"]["hyperparams"]["buffer_size"] = size
    path = write_config(in_tmp / "bad.yaml", config)
    result = invoke("train", "--config", str(path), "--episodes", "1")
    assert result.exit_code == 2, result.output
    assert result.stderr == f"atheria: error: agents.SAC.hyperparams.buffer_size: {message}\n"
    assert listing(in_tmp) == ["bad.yaml"]


def refused(in_tmp: Path, config: dict[str, Any]) -> tuple[Path, str]:
    """``atheria train`` on ``config`` as bad.yaml: exit 2, nothing written; the path and stderr."""
    path = write_config(in_tmp / "bad.yaml", config)
    result = invoke("train", "--config", str(path), "--episodes", "1")
    assert result.exit_code == 2, result.output
    assert listing(in_tmp) == ["bad.yaml"]
    return path, result.stderr


@pytest.mark.parametrize(
    "section, key, message",
    [
        ("train", "threads", "train.threads: Input should be less than or equal to 4096"),
        ("env", "n_envs", "env.n_envs: Input should be less than or equal to 4096"),
        ("env", "frame_stack", "env.frame_stack: Input should be less than or equal to 1024"),
    ],
)
def test_a_huge_count_exits_2_before_anything_runs(section: str, key: str, message: str, in_tmp: Path) -> None:
    # Found by scripts/fuzz_config.py --cases 500: threads 1e30 overflowed torch.set_num_threads
    # (a traceback), n_envs 1e30 hung building the envs.
    config = tiny_config()
    config[section][key] = 10**30
    path, stderr = refused(in_tmp, config)
    assert stderr == f"atheria: error: {path}: {message}\n"


@pytest.mark.parametrize(
    "agent, key, value, message",
    [
        ("A2C", "gamma", 1e30, "agents.A2C.hyperparams.gamma: must be between 0 and 1 (got 1e+30)"),
        ("PPO", "n_epochs", 0, "agents.PPO.hyperparams.n_epochs: must be at least 1 (got 0)"),
        ("SAC", "policy_kwargs", {"n_critics": 0}, "agents.SAC.hyperparams.policy_kwargs.n_critics: must be at least 1 (got 0)"),
        # Read only when SB3 builds the model: A2C, before SAC, trained and wrote its run first.
        ("SAC", "target_entropy", "abc", "agents.SAC.hyperparams.target_entropy: must be 'auto' or a number (got 'abc')"),
        ("SAC", "train_freq", [1, "bad"], "agents.SAC.hyperparams.train_freq: the unit must be 'step' or 'episode' (got 'bad')"),
        (
            "SAC",
            "optimize_memory_usage",
            True,
            "agents.SAC.hyperparams.optimize_memory_usage: SB3's replay buffer cannot both optimize memory and handle "
            "time-limit truncation; set replay_buffer_kwargs: {handle_timeout_termination: false} too",
        ),
    ],
)
def test_a_hyperparameter_outside_its_range_exits_2_before_any_agent_trains(
    agent: str, key: str, value: object, message: str, in_tmp: Path
) -> None:
    # SB3 checks none of these: gamma 1e30 made A2C's actions NaN (a traceback mid-episode),
    # n_epochs 0 an UnboundLocalError in PPO's train(), n_critics 0 an empty optimizer.
    config = tiny_config()
    config["agents"][agent]["hyperparams"][key] = value
    path = write_config(in_tmp / "bad.yaml", config)
    result = invoke("train", "--config", str(path), "--episodes", "1")
    assert result.exit_code == 2, result.output
    assert result.stderr == f"atheria: error: {message}\n"
    assert listing(in_tmp) == ["bad.yaml"]


ADAM_ACCEPTS = "amsgrad, betas, capturable, decoupled_weight_decay, differentiable, eps, foreach, fused, maximize, weight_decay"


@pytest.mark.parametrize(
    "optimizer_kwargs, message",
    [
        ({"momentum": 0.9}, f"optimizer_kwargs.momentum: Adam does not accept 'momentum' (accepted: {ADAM_ACCEPTS})"),
        ({"betas": [2.0, 0.9]}, "optimizer_kwargs: Adam rejected them: ValueError: Invalid beta parameter at index 0: 2.0"),
        ({"lr": 0.1}, "optimizer_kwargs.lr: set by the learning_rate hyperparameter, not an optimizer keyword argument"),
    ],
)
def test_optimizer_kwargs_the_optimizer_refuses_exit_2_before_any_agent_trains(
    optimizer_kwargs: dict[str, object], message: str, in_tmp: Path
) -> None:
    # SB3 passes optimizer_kwargs only when it builds the networks, after planning: PPO trained
    # and wrote its run, then the next agent's bad key ended the session (found by
    # scripts/fuzz_config.py, with DQN after PPO on CartPole).
    bad = {"hyperparams": {**TINY_AGENTS["SAC"]["hyperparams"], "policy_kwargs": {"optimizer_kwargs": optimizer_kwargs}}}
    path = write_config(in_tmp / "bad.yaml", tiny_config({"PPO": TINY_AGENTS["PPO"], "SAC": bad}))
    result = invoke("train", "--config", str(path), "--episodes", "1")
    assert result.exit_code == 2, result.output
    assert result.stderr == f"atheria: error: agents.SAC.hyperparams.policy_kwargs.{message}\n"
    assert listing(in_tmp) == ["bad.yaml"]  # PPO trained nothing, and the locks' folders are gone too


def test_a_missing_tensorboard_extra_is_reported_before_fresh_moves_the_old_run(in_tmp: Path) -> None:
    path = write_config(in_tmp / "exp.yaml", tiny_config({"PPO": TINY_AGENTS["PPO"]}, train={"tensorboard": True}))
    old_run = in_tmp / "checkpoints/test/PPO"
    old_run.mkdir(parents=True)
    (old_run / "episode_0001.pt").write_bytes(b"the old run's checkpoint")
    code = "import sys; sys.modules['tensorboard'] = None; from atheria_cli.cli import main; sys.argv[0] = 'atheria'; main()"
    done = subprocess.run(
        [sys.executable, "-c", code, "train", "--config", str(path), "--episodes", "1", "--fresh"],
        capture_output=True,
        text=True,
        cwd=in_tmp,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    assert (
        done.stderr == "atheria: error: train.tensorboard needs the 'tensorboard' extra: pip install 'atheria-cli[tensorboard]'\n"
    )
    assert listing(in_tmp / "checkpoints/test") == ["PPO"]
    assert listing(old_run) == ["episode_0001.pt"]


@pytest.mark.parametrize(
    "checkpoints_dir, message",
    [
        ("x" * 300, f"cannot create the run folder {'x' * 77}...: File name too long"),
        ("bad.yaml", "cannot create the run folder bad.yaml/test: bad.yaml is a file, not a folder"),
    ],
)
def test_a_run_folder_this_machine_cannot_create_exits_2(checkpoints_dir: str, message: str, in_tmp: Path) -> None:
    # Found by the config fuzzer: a 300-character checkpoints_dir ended in an OSError traceback.
    path = write_config(in_tmp / "bad.yaml", tiny_config(checkpoints_dir=checkpoints_dir))
    result = invoke("train", "--config", str(path), "--episodes", "1")
    assert result.exit_code == 2, result.output
    assert result.stderr == f"atheria: error: {message}\n"
    assert listing(in_tmp) == ["bad.yaml"]


@pytest.mark.parametrize(
    "agent, key, value, message",
    [
        ("A2C", "stats_window_size", 10**30, "agents.A2C.hyperparams.stats_window_size: integers must be at most 2147483647"),
        ("SAC", "n_steps", 10**30, "agents.SAC.hyperparams.n_steps: integers must be at most 2147483647"),
        (
            "PPO",
            "policy_kwargs",
            {"net_arch": [8, 10**30]},
            "agents.PPO.hyperparams.policy_kwargs.net_arch: integers must be at most 2147483647",
        ),
    ],
)
def test_an_integer_hyperparameter_beyond_any_machine_exits_2(
    agent: str, key: str, value: object, message: str, in_tmp: Path
) -> None:
    # Found by the config fuzzer at 2,000 cases: stats_window_size 1e30 overflowed a C integer in
    # SB3's deque, SAC's n_steps 1e30 failed numpy's allocation, both with a traceback mid-session.
    config = tiny_config()
    config["agents"][agent]["hyperparams"][key] = value
    path, stderr = refused(in_tmp, config)
    assert stderr.startswith(f"atheria: error: {message} (got ") and stderr.count("\n") == 1


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda config: config["agents"]["SAC"]["hyperparams"].update(ent_coef="ünïcödé ✓"),
            "agents.SAC.hyperparams.ent_coef: must be a number >= 0, 'auto' or 'auto_<initial value > 0>' (got 'ünïcödé ✓')",
        ),
        (
            lambda config: config["agents"]["SAC"]["hyperparams"]["policy_kwargs"].update(net_arch={}),
            "agents.SAC.hyperparams.policy_kwargs.net_arch: no key 'pi' was provided in net_arch for the actor network (got {})",
        ),
    ],
)
def test_a_setting_the_model_reads_only_at_setup_is_refused_before_any_agent_trains(
    edit: Callable[[dict[str, Any]], None], message: str, in_tmp: Path
) -> None:
    # Found by the config fuzzer at 2,000 cases (seed 4): SAC refused these when the session
    # built it, after A2C had trained and written its run.
    config = tiny_config()
    edit(config)
    path, stderr = refused(in_tmp, config)
    assert stderr == f"atheria: error: {message}\n"


@pytest.mark.parametrize(
    "days, message",
    [
        (1.5, "days must be an integer (got 1.5)"),
        (float("inf"), "days must be an integer (got inf)"),
        (10**30, "days must be 1..3660"),
    ],
)
def test_a_building_env_setting_of_the_wrong_type_or_size_exits_2(days: object, message: str, in_tmp: Path) -> None:
    # Found by the config fuzzer: these reached numpy inside the env's reset (a traceback).
    env = {"id": "atheria/BuildingCO2-v0", "kwargs": {"days": days}, "metrics": [{"name": "co2_kg", "goal": "min"}]}
    path, stderr = refused(in_tmp, tiny_config({"A2C": TINY_AGENTS["A2C"]}, env=env))
    assert stderr.startswith("atheria: error: ") and stderr.count("\n") == 1
    assert message in stderr, stderr


@pytest.mark.parametrize(
    "section, key, value, where",
    [("train", "mirror", {"to": "\x00"}, "train.mirror.to"), ("env", "kwargs", {"days": "a\x00b"}, "env.kwargs.days")],
)
def test_a_nul_character_in_a_config_string_exits_2(section: str, key: str, value: object, where: str, in_tmp: Path) -> None:
    # Found by the config fuzzer: a mirror path with a NUL ended in "ValueError: embedded null
    # byte", a traceback after the first commit.
    config = tiny_config()
    config[section][key] = value
    path, stderr = refused(in_tmp, config)
    assert stderr == f"atheria: error: {path}: {where}: must not contain a NUL character\n"


def test_an_experiment_name_too_long_under_a_missing_folder_exits_2(in_tmp: Path) -> None:
    # Found by the config fuzzer: with checkpoints/ not there yet, probing the path said "no such
    # folder", the lock created checkpoints/ and then failed on the name (exit 1, a folder left).
    path, stderr = refused(in_tmp, tiny_config(experiment="x" * 300))
    assert stderr == f"atheria: error: cannot create the run folder checkpoints/{'x' * 65}...: File name too long\n"


@pytest.mark.integration
def test_a_run_whose_policy_diverges_ends_with_one_line_not_a_traceback(in_tmp: Path) -> None:
    # Found by the config fuzzer: a learning rate of 1e30 is a valid number, and A2C's actions
    # became NaN mid-episode; torch.distributions' ValueError ended the run with a traceback.
    agent = {"hyperparams": {**TINY_AGENTS["A2C"]["hyperparams"], "learning_rate": 1e30}}
    path = write_config(in_tmp / "exp.yaml", tiny_config({"A2C": agent}))
    result = invoke("train", "--config", str(path), "--episodes", "1")
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "atheria: error: agents.A2C: training diverged in episode 1: the policy's outputs are no longer finite "
        "(NaN or inf); lower the learning rate or scale the rewards (the run keeps its last checkpoint: none yet)"
    )
    assert [line for line in result.stderr.splitlines() if line.startswith("atheria: error:")] == result.stderr.splitlines()[-1:]


def test_yaml_syntax_error_names_the_line(in_tmp: Path) -> None:
    path = in_tmp / "broken.yaml"
    path.write_text("experiment: x\nenv:\n  id: Pendulum-v1\n  kwargs: {a: 1\nagents: {}\n")
    result = invoke("train", "--config", str(path))
    assert result.exit_code == 2
    assert re.fullmatch(
        rf"atheria: error: {re.escape(str(path))}: YAML syntax error at line \d+, column \d+: .+\n", result.stderr
    )
    assert listing(in_tmp) == ["broken.yaml"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--config", "missing.yaml"], "atheria: error: config file not found: missing.yaml\n"),
        (
            ["--episodes", "0"],
            "atheria: error: Invalid value for '--episodes' / '-n': Input should be greater than or equal to 1\n",
        ),
        (["--agent", "TRPO"], "atheria: error: unknown agent 'TRPO': the experiment has A2C, SAC, PPO\n"),
        (
            ["--resume", "--fresh"],
            "atheria: error: --resume and --fresh cannot be combined: --resume continues a run, --fresh moves it aside\n",
        ),
        (["--device", "cuda:x"], None),
    ],
)
def test_bad_options_exit_2(args: list[str], message: str | None, config_path: Path, in_tmp: Path) -> None:
    if "--config" not in args:
        args = ["--config", str(config_path), *args]
    result = invoke("train", *args)
    assert result.exit_code == 2, result.output
    if message is not None:
        assert result.stderr == message
    assert result.stderr.startswith("atheria: error: ") and result.stderr.count("\n") == 1
    assert listing(in_tmp) == ["exp.yaml"]


def test_cuda_requested_without_cuda_exits_2(config_path: Path, in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = invoke("train", "--config", str(config_path), "--device", "cuda")
    assert result.exit_code == 2
    assert result.stderr == (
        "atheria: error: device 'cuda' requested but CUDA is not available on this machine (use --device cpu)\n"
    )
    assert listing(in_tmp) == ["exp.yaml"]


def test_unknown_option_is_one_line(config_path: Path) -> None:
    result = invoke("train", "--config", str(config_path), "--episods", "3")
    assert result.exit_code == 2
    assert result.stderr.startswith("atheria: error: No such option: --episods") and result.stderr.count("\n") == 1


@pytest.mark.integration
def test_damaged_metadata_on_resume_is_reported(config_path: Path, in_tmp: Path) -> None:
    assert invoke("train", "--config", str(config_path), "--episodes", "1", "--agent", "A2C").exit_code == 0
    metadata = in_tmp / "checkpoints/test/A2C/metadata.json"
    metadata.write_text("{not json")
    result = invoke("train", "--config", str(config_path), "--episodes", "1", "--agent", "A2C", "--resume")
    assert result.exit_code == 2
    assert result.stderr == (
        "atheria: error: checkpoints/test/A2C/metadata.json: invalid JSON at line 1, column 2: "
        "Expecting property name enclosed in double quotes\n"
    )


@pytest.mark.integration
def test_altered_checkpoint_is_refused_on_resume(config_path: Path, in_tmp: Path) -> None:
    assert invoke("train", "--config", str(config_path), "--episodes", "1", "--agent", "A2C").exit_code == 0
    checkpoint = in_tmp / "checkpoints/test/A2C/episode_0001.pt"
    data = bytearray(checkpoint.read_bytes())
    data[len(data) // 2] ^= 0xFF
    checkpoint.write_bytes(bytes(data))
    result = invoke("train", "--config", str(config_path), "--episodes", "1", "--agent", "A2C", "--resume")
    assert result.exit_code == 2
    assert result.stderr == (
        "atheria: error: checkpoints/test/A2C: episode_0001.pt: sha256 differs from metadata.json, "
        "and no earlier checkpoint is intact; use --fresh to start over\n"
    )


@pytest.mark.integration
def test_resume_falls_back_from_a_damaged_checkpoint(config_path: Path, in_tmp: Path) -> None:
    assert invoke("train", "--config", str(config_path), "--episodes", "3", "--agent", "SAC").exit_code == 0
    folder = in_tmp / "checkpoints/test/SAC"
    (folder / "episode_0003.pt").write_bytes((folder / "episode_0003.pt").read_bytes()[:5000])  # truncated
    result = invoke("train", "--config", str(config_path), "--episodes", "2", "--agent", "SAC", "--resume")
    assert result.exit_code == 0, result.output
    assert (
        "atheria: warning: SAC: episode_0003.pt is unusable (episode_0003.pt: 5000 bytes, metadata.json records " in result.stderr
    )
    assert "SAC: episodes 3–4 (resuming from episode_0002.pt)" in result.stderr
    history = json.loads((folder / "history.json").read_text())
    assert history["total_episodes"] == 4
    assert [(s["start_episode"], s["end_episode"]) for s in history["trainings"]] == [(1, 2), (3, 4)]
    lines = (folder / "episodes.jsonl").read_text().splitlines()
    assert [json.loads(line)["episode"] for line in lines] == [1, 2, 3, 4]
    metadata = json.loads((folder / "metadata.json").read_text())
    assert [c["file"] for c in metadata["checkpoints"]] == [
        "episode_0001.pt",
        "episode_0002.pt",
        "episode_0003.pt",
        "episode_0004.pt",
    ]
    assert metadata["checkpoints"][2]["size"] == (folder / "episode_0003.pt").stat().st_size  # rewritten, intact
    assert listing(folder / "replay") == ["episode_0001.npz", "episode_0002.npz", "episode_0003.npz", "episode_0004.npz"]


def test_version_and_module_entry_point() -> None:
    import subprocess
    import sys

    from atheria_cli import __version__

    assert invoke("--version").stdout == f"atheria {__version__}\n"
    completed = subprocess.run([sys.executable, "-m", "atheria_cli", "--help"], capture_output=True, text=True, check=True)
    assert "train" in completed.stdout
