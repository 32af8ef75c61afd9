"""SB3's own zip, out (`export --format sb3`) and in (`train --from-sb3`), on small real runs."""

from __future__ import annotations

import base64
import hashlib
import json
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import atheria_cli
from atheria_cli.cli import app
from atheria_cli.run.formats import read_history, read_metadata
from atheria_cli.trainers.sb3.deploy import sample_observations
from tests.conftest import CARTPOLE_ENV, TINY_AGENTS, TINY_NET, tiny_config, write_config
from tests.integration.helpers import agent_dir, assert_same_tree, last_payload, rewards

pytestmark = pytest.mark.integration
runner = CliRunner()

NORMALIZED_PENDULUM = {"id": "Pendulum-v1", "max_episode_steps": 50, "normalize": True}
SAC = TINY_AGENTS["SAC"]


# --- out: export --format sb3 ------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SAC and PPO on a VecNormalize Pendulum, DQN on CartPole: 2 episodes each."""
    root = tmp_path_factory.mktemp("sb3-out")
    configs = {
        "normalized": tiny_config({"SAC": SAC, "PPO": TINY_AGENTS["PPO"]}, env=NORMALIZED_PENDULUM),
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


# Loads the export with SB3 alone: atheria cannot be imported in this process.
SB3_ALONE = """
import importlib.abc, json, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "atheria_cli":
            raise ImportError(f"blocked: {name}")
sys.meta_path.insert(0, Block())
import gymnasium as gym, numpy as np, stable_baselines3
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize
algo, zip_path, env_id, observations, vec_normalize, replay = sys.argv[1:7]
model = getattr(stable_baselines3, algo).load(zip_path, device="cpu")
venv = DummyVecEnv([lambda: gym.make(env_id, max_episode_steps=50)])
if vec_normalize != "-":
    venv = VecNormalize.load(vec_normalize, venv)
obs = np.load(observations)
seen = venv.normalize_obs(obs) if vec_normalize != "-" else obs
actions, _ = model.predict(seen, deterministic=True)
mean, _ = evaluate_policy(model, venv, n_eval_episodes=2, deterministic=True)
rows = None
if replay != "-":
    model.load_replay_buffer(replay)
    rows = model.replay_buffer.size()
print(json.dumps({"actions": actions.tolist(), "mean": float(mean), "rows": rows,
                  "atheria": "atheria_cli" in sys.modules}))
"""


@pytest.mark.parametrize(
    "config, agent, experiment, env_id",
    [
        ("normalized", "SAC", "test", "Pendulum-v1"),
        ("normalized", "PPO", "test", "Pendulum-v1"),
        ("discrete", "DQN", "discrete", "CartPole-v1"),
    ],
)
def test_sb3_alone_loads_the_export_and_predicts_like_atheria(
    runs: Path, tmp_path: Path, config: str, agent: str, experiment: str, env_id: str
) -> None:
    off_policy = agent != "PPO"
    result = invoke(runs, config, "export", agent, "--format", "sb3", *(["--with-replay"] if off_policy else []))
    assert result.exit_code == 0, result.output
    folder = runs / "checkpoints" / experiment / agent
    assert result.stdout.startswith(f"{agent}: {folder / 'model_sb3.zip'} (sb3) from episode_0002.pt, verified on 256 ")
    model = atheria_cli.load_agent(folder / "episode_0002.pt")
    observations = sample_observations(model, seed=11)
    np.save(tmp_path / "obs.npy", observations)
    normalized = config == "normalized"
    arguments = [
        agent,
        str(folder / "model_sb3.zip"),
        env_id,
        str(tmp_path / "obs.npy"),
        str(folder / "model_sb3_vecnormalize.pkl") if normalized else "-",
        str(folder / "model_sb3_replay_buffer.pkl") if off_policy else "-",
    ]
    completed = subprocess.run(
        [sys.executable, "-c", SB3_ALONE, *arguments], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    loaded = json.loads(completed.stdout)
    assert loaded["atheria"] is False
    env = model.get_env()
    expected, _ = model.predict(env.normalize_obs(observations) if normalized else observations, deterministic=True)
    assert len(observations) == 256
    assert np.array_equal(np.asarray(loaded["actions"], dtype=expected.dtype).reshape(expected.shape), expected)
    assert np.isfinite(loaded["mean"])
    assert loaded["rows"] == (model.replay_buffer.size() if off_policy else None)
    assert loaded["rows"] != 0


def test_the_sidecar_names_the_checkpoint_and_every_extra_file_with_its_sha256(runs: Path) -> None:
    assert invoke(runs, "normalized", "export", "SAC", "--format", "sb3", "--with-replay").exit_code == 0
    folder = runs / "checkpoints" / "test" / "SAC"
    side = json.loads((folder / "model_sb3.json").read_text())

    def sha(name: str) -> str:
        return hashlib.sha256((folder / name).read_bytes()).hexdigest()

    assert side["format"] == "sb3" and side["file"] == "model_sb3.zip" and side["sha256"] == sha("model_sb3.zip")
    assert side["source_checkpoint"] == "episode_0002.pt"
    assert side["source_sha256"] == json.loads((folder / "metadata.json").read_text())["checkpoints"][-1]["sha256"]
    assert side["observation_normalization"] is True and side["verification"]["samples"] == 256
    assert {role: (item["file"], item["sha256"]) for role, item in side["extra_files"].items()} == {
        "replay_buffer": ("model_sb3_replay_buffer.pkl", sha("model_sb3_replay_buffer.pkl")),
        "vec_normalize": ("model_sb3_vecnormalize.pkl", sha("model_sb3_vecnormalize.pkl")),
    }


def test_an_export_without_replay_removes_the_replay_file_of_an_earlier_one(runs: Path) -> None:
    folder = runs / "checkpoints" / "test" / "SAC"
    assert invoke(runs, "normalized", "export", "SAC", "--format", "sb3", "--with-replay").exit_code == 0
    assert (folder / "model_sb3_replay_buffer.pkl").is_file()
    assert invoke(runs, "normalized", "export", "SAC", "--format", "sb3", "--checkpoint", "1").exit_code == 0
    assert not (folder / "model_sb3_replay_buffer.pkl").exists()
    assert set(json.loads((folder / "model_sb3.json").read_text())["extra_files"]) == {"vec_normalize"}


def test_eval_of_the_sb3_export_matches_eval_of_the_checkpoint(runs: Path) -> None:
    assert invoke(runs, "normalized", "export", "SAC", "--format", "sb3").exit_code == 0
    exported = runs / "checkpoints" / "test" / "SAC" / "model_sb3.zip"
    from_checkpoint = invoke(runs, "normalized", "eval", "SAC", "--episodes", "2", "--seed", "5", "--json")
    from_zip = invoke(runs, "normalized", "eval", "SAC", "--episodes", "2", "--seed", "5", "--json", "--export", str(exported))
    assert from_checkpoint.exit_code == 0 and from_zip.exit_code == 0, from_checkpoint.output + from_zip.output
    a, b = json.loads(from_checkpoint.stdout), json.loads(from_zip.stdout)
    assert b["source"] == str(exported)
    assert [e["reward"] for e in a["episodes"]] == pytest.approx([e["reward"] for e in b["episodes"]], rel=1e-6, abs=1e-6)


def test_eval_refuses_an_sb3_export_whose_vecnormalize_file_changed(runs: Path) -> None:
    assert invoke(runs, "normalized", "export", "SAC", "--format", "sb3").exit_code == 0
    folder = runs / "checkpoints" / "test" / "SAC"
    statistics = folder / "model_sb3_vecnormalize.pkl"
    original = statistics.read_bytes()
    try:
        statistics.write_bytes(original + b"\0")
        result = invoke(runs, "normalized", "eval", "SAC", "--export", str(folder / "model_sb3.zip"))
    finally:
        statistics.write_bytes(original)
    assert result.exit_code == 2
    assert result.stderr == (
        f"atheria: error: {statistics}: sha256 differs from the one in model_sb3.json: "
        "the file changed after export; re-export it\n"
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["PPO", "--format", "sb3", "--with-replay"], "--with-replay: PPO (PPO) is on-policy and has no replay buffer"),
        (
            ["SAC", "--format", "exported", "--with-replay"],
            "--with-replay writes SB3's replay-buffer file: only with --format sb3",
        ),
    ],
)
def test_with_replay_is_refused_where_there_is_no_sb3_replay_buffer(runs: Path, args: list[str], message: str) -> None:
    folder = runs / "checkpoints" / "test"
    before = sorted(str(path) for path in folder.rglob("*"))
    result = (
        invoke(runs, "normalized", "export", "SAC", *args[1:])
        if args[0] == "SAC"
        else invoke(runs, "normalized", "export", *args)
    )
    assert result.exit_code == 2 and result.stderr == f"atheria: error: {message}\n"
    assert sorted(str(path) for path in folder.rglob("*")) == before


# --- in: train --from-sb3 ----------------------------------------------------------------------

AGENTS: dict[str, dict[str, Any]] = {
    "SAC": SAC,
    # No gradient step in its first episode: its first checkpoint holds the zip's weights unchanged.
    "Still": {"algo": "SAC", "hyperparams": {**SAC["hyperparams"], "learning_starts": 100_000}},
    "Wider": {"algo": "SAC", "hyperparams": {**SAC["hyperparams"], "policy_kwargs": {"net_arch": [32]}}},
    "TD3": TINY_AGENTS["TD3"],
}


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What a plain SB3 script leaves: SAC ``learn`` (300 steps) then ``save`` and
    ``save_replay_buffer``, and a SAC saved on another env (MountainCarContinuous: 2 observations).
    SB3 adds keys to ``policy_kwargs``: each model gets a copy."""
    import gymnasium as gym
    from stable_baselines3 import SAC as SB3SAC

    root = tmp_path_factory.mktemp("sb3-in")
    hyperparams = {key: value for key, value in SAC["hyperparams"].items() if key != "policy_kwargs"}
    model = SB3SAC(
        "MlpPolicy", gym.make("Pendulum-v1", max_episode_steps=50), policy_kwargs=dict(TINY_NET), seed=3, **hyperparams
    )
    model.learn(300)
    model.save(root / "plain.zip")
    model.save_replay_buffer(root / "plain_replay.pkl")
    other = SB3SAC("MlpPolicy", gym.make("MountainCarContinuous-v0"), policy_kwargs=dict(TINY_NET), **hyperparams)
    other.save(root / "mountain_car.zip")
    return root


def adopt(root: Path, *args: str, checkpoints: str = "checkpoints"):
    config = tiny_config(AGENTS)
    config["checkpoints_dir"] = str(root / checkpoints)
    path = write_config(root / f"{checkpoints}.yaml", config)
    return runner.invoke(app, ["train", "--config", str(path), *args])


def _zip_tensors(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as archive:
        return {
            name: torch.load(archive.open(name), map_location="cpu", weights_only=True)
            for name in archive.namelist()
            if name.endswith(".pth")
        }


def test_a_plain_sb3_zip_is_adopted_with_its_weights_and_counters(plain: Path, tmp_path: Path) -> None:
    zip_path = plain / "plain.zip"
    result = adopt(tmp_path, "--from-sb3", str(zip_path), "--agent", "Still", "--episodes", "1")
    assert result.exit_code == 0, result.output
    assert "atheria: warning: Still: the run starts with an empty replay buffer" in result.stderr
    assert f"atheria: warning: Still: adopting {zip_path} at 300 timesteps; not exact" in result.stderr
    payload, zipped = last_payload(tmp_path / "checkpoints", "Still"), _zip_tensors(zip_path)
    state = payload["model"]
    assert_same_tree(state["state_dicts"]["policy"], zipped["policy.pth"])
    for name in ("actor.optimizer", "critic.optimizer", "ent_coef_optimizer"):
        assert_same_tree(state["state_dicts"][name]["state"], zipped[f"{name}.pth"]["state"], name)
    assert torch.equal(state["variables"]["log_ent_coef"], zipped["pytorch_variables.pth"]["log_ent_coef"])
    data = json.loads(zipfile.ZipFile(zip_path).read("data"))
    assert state["counters"]["num_timesteps"] == 300 + 50 and state["counters"]["_n_updates"] == data["_n_updates"] > 0
    folder = agent_dir(tmp_path / "checkpoints", "Still")
    session = read_history(folder / "history.json").trainings[0]
    origin = {"file": str(zip_path), "sha256": hashlib.sha256(zip_path.read_bytes()).hexdigest(), "num_timesteps": 300}
    assert session.exact is False and session.adopted_from is not None and session.adopted_from.model_dump() == origin
    assert session.start_timesteps == 300 and session.start_episode == 1
    metadata = read_metadata(folder / "metadata.json")
    assert metadata.adopted_from is not None and metadata.adopted_from.model_dump() == origin
    history = runner.invoke(app, ["history", "Still", "--config", str(tmp_path / "checkpoints.yaml")])
    assert f"session 1 adopted from {zip_path} (SB3, 300 timesteps); not exact" in history.stdout


def test_an_adopted_run_trains_and_its_resume_is_exact(plain: Path, tmp_path: Path) -> None:
    zip_path = str(plain / "plain.zip")
    straight = adopt(tmp_path, "--from-sb3", zip_path, "--agent", "SAC", "--episodes", "2", checkpoints="straight")
    first = adopt(tmp_path, "--from-sb3", zip_path, "--agent", "SAC", "--episodes", "1", checkpoints="split")
    resumed = adopt(tmp_path, "--resume", "--agent", "SAC", "--episodes", "1", checkpoints="split")
    assert straight.exit_code == first.exit_code == resumed.exit_code == 0, straight.output + first.output + resumed.output
    zipped = _zip_tensors(plain / "plain.zip")["policy.pth"]
    trained = last_payload(tmp_path / "straight", "SAC")["model"]["state_dicts"]["policy"]
    assert any(not torch.equal(trained[name], zipped[name]) for name in zipped)  # it learned
    assert rewards(tmp_path / "split", "SAC") == rewards(tmp_path / "straight", "SAC")
    assert_same_tree(
        last_payload(tmp_path / "split", "SAC")["model"]["state_dicts"],
        last_payload(tmp_path / "straight", "SAC")["model"]["state_dicts"],
    )
    sessions = read_history(agent_dir(tmp_path / "split", "SAC") / "history.json").trainings
    assert [session.exact for session in sessions] == [False, True]
    assert sessions[1].adopted_from is None and sessions[1].resumed_from == "episode_0001.pt"


class CreatesFile:
    """Unpickling this creates ``path``: what a stranger's zip could run."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


def _with_payload(source: Path, target: Path, marker: Path) -> None:
    """``source`` with every ``:serialized:`` value of its ``data`` replaced by the payload."""
    payload = base64.b64encode(pickle.dumps(CreatesFile(marker))).decode()
    with zipfile.ZipFile(source) as original:
        data = json.loads(original.read("data"))
        for value in data.values():
            if isinstance(value, dict) and ":serialized:" in value:
                value[":serialized:"] = payload
        with zipfile.ZipFile(target, "w") as crafted:
            for name in original.namelist():
                crafted.writestr(name, json.dumps(data) if name == "data" else original.read(name))


def test_a_zip_with_a_pickle_payload_is_adopted_without_running_it(plain: Path, tmp_path: Path) -> None:
    marker, crafted = tmp_path / "payload_ran", tmp_path / "crafted.zip"
    _with_payload(plain / "plain.zip", crafted, marker)
    result = adopt(tmp_path, "--from-sb3", str(crafted), "--agent", "SAC", "--episodes", "1")
    assert result.exit_code == 0, result.output
    assert not marker.exists()
    assert read_history(agent_dir(tmp_path / "checkpoints", "SAC") / "history.json").trainings[0].exact is False
    # The payload is live: SB3's own load runs it.
    script = "import sys; from stable_baselines3 import SAC\ntry: SAC.load(sys.argv[1])\nexcept Exception: pass"
    subprocess.run([sys.executable, "-c", script, str(crafted)], capture_output=True, check=True)
    assert marker.exists()


def _truncated(plain: Path, tmp_path: Path) -> Path:
    content = (plain / "plain.zip").read_bytes()
    (tmp_path / "truncated.zip").write_bytes(content[: len(content) // 2])
    return tmp_path / "truncated.zip"


def _damaged(plain: Path, tmp_path: Path) -> Path:
    """One flipped byte in the middle of ``data`` (SB3 stores it uncompressed)."""
    content = bytearray((plain / "plain.zip").read_bytes())
    with zipfile.ZipFile(plain / "plain.zip") as archive:
        info = archive.getinfo("data")
    content[info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size // 2] ^= 0xFF
    (tmp_path / "damaged.zip").write_bytes(bytes(content))
    return tmp_path / "damaged.zip"


def _not_a_zip(plain: Path, tmp_path: Path) -> Path:
    (tmp_path / "notes.zip").write_text("not a zip\n")
    return tmp_path / "notes.zip"


@pytest.mark.parametrize(
    "make, agent, message",
    [
        (_truncated, "SAC", "--from-sb3: {zip} is not an SB3 zip (no 'data' entry: truncated, or another zip)"),
        (_damaged, "SAC", "--from-sb3: {zip} is not a readable zip (Bad CRC-32 for file 'data')"),
        (_not_a_zip, "SAC", "--from-sb3: {zip} is not a readable zip (File is not a zip file)"),
        (
            lambda plain, tmp: plain / "plain.zip",
            "TD3",
            "TD3: the zip's policy_class is from stable_baselines3.sac.policies, the config's TD3 uses "
            "stable_baselines3.td3.policies; adopt the zip into an agent of its algorithm",
        ),
        (
            lambda plain, tmp: plain / "plain.zip",
            "Wider",
            "Wider: tensor actor.latent_pi.0.weight of policy.pth has shape [16, 3], the config's network has [32, 3]",
        ),
        (
            lambda plain, tmp: plain / "mountain_car.zip",
            "SAC",
            "SAC: the zip's observation_space.shape is [2], the config's env has [3] (Box([-1. -1. -8.], [1. 1. 8.], (3,), float32))",
        ),
    ],
    ids=["truncated", "damaged", "not-a-zip", "other-algorithm", "other-network", "other-env"],
)
def test_a_zip_that_does_not_fit_exits_2_with_one_line_and_writes_nothing(
    plain: Path, tmp_path: Path, make: Any, agent: str, message: str
) -> None:
    zip_path = make(plain, tmp_path)
    before = sorted(path.name for path in tmp_path.iterdir())
    result = adopt(tmp_path, "--from-sb3", str(zip_path), "--agent", agent, "--episodes", "1")
    assert result.exit_code == 2, result.output
    assert result.stderr == f"atheria: error: {message.format(zip=zip_path)}\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([*before, "checkpoints.yaml"])


def test_an_sb3_replay_buffer_is_imported_only_with_trust_pickle(plain: Path, tmp_path: Path) -> None:
    zip_path, replay = str(plain / "plain.zip"), str(plain / "plain_replay.pkl")
    untrusted = adopt(tmp_path, "--from-sb3", zip_path, "--from-sb3-replay", replay, "--agent", "Still", "--episodes", "1")
    assert untrusted.exit_code == 0, untrusted.output
    assert f"atheria: warning: Still: {replay} not imported: an SB3 replay buffer is a pickle" in untrusted.stderr
    trusted = adopt(
        tmp_path,
        *("--from-sb3", zip_path, "--from-sb3-replay", replay, "--trust-pickle", "--agent", "Still", "--episodes", "1"),
        checkpoints="trusted",
    )
    assert trusted.exit_code == 0, trusted.output
    # The zip's 300 rows, then this episode's 50: all in the first checkpoint's segment.
    assert read_metadata(agent_dir(tmp_path / "checkpoints", "Still") / "metadata.json").checkpoints[0].replay_rows == [0, 50]
    trusted_entry = read_metadata(agent_dir(tmp_path / "trusted", "Still") / "metadata.json").checkpoints[0]
    assert trusted_entry.replay_rows == [0, 350]
    model = atheria_cli.load_agent(agent_dir(tmp_path / "trusted", "Still") / trusted_entry.file)
    from stable_baselines3.common.save_util import load_from_pkl

    original = load_from_pkl(replay)
    assert np.array_equal(model.replay_buffer.observations[:300], original.observations[:300])
    assert np.array_equal(model.replay_buffer.actions[:300], original.actions[:300])


def test_replay_and_trust_options_need_from_sb3(tmp_path: Path) -> None:
    result = adopt(tmp_path, "--trust-pickle", "--episodes", "1")
    assert result.exit_code == 2
    assert result.stderr == "atheria: error: --from-sb3-replay and --trust-pickle go with --from-sb3 FILE.zip\n"
