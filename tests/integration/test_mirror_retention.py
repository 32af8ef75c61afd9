"""The mirror forgets what retention removed: after each push it holds exactly the local run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from atheria_cli.run.formats import Metadata
from atheria_cli.run.mirror import Mirror
from tests.conftest import TINY_AGENTS, tiny_config
from tests.integration.helpers import agent_dir, assert_same_tree, last_payload, rewards, train

pytestmark = pytest.mark.integration

# A replay ring smaller than the run, so old segments stop being needed and retention drops them.
SMALL_RING_SAC = {"SAC": {"hyperparams": {**TINY_AGENTS["SAC"]["hyperparams"], "buffer_size": 120}}}
MEMORY_URL, MEMORY_ROOT = "memory://drive/atheria", "/drive/atheria"


@pytest.fixture
def memory() -> Any:
    fs = fsspec.filesystem("memory")
    fs.store.clear()
    fs.pseudo_dirs[:] = [""]
    yield fs
    fs.store.clear()
    fs.pseudo_dirs[:] = [""]


def _config(mirror: str) -> dict[str, Any]:
    config = tiny_config(SMALL_RING_SAC)
    config["train"].update({"keep": {"last": 2, "best": 1}, "mirror": {"to": mirror, "every": 2}})
    return config


def _local_files(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def _mirror_files(fs: Any, folder: str) -> list[str]:
    return sorted(path.removeprefix(f"{folder}/") for path in fs.find(folder))


@pytest.mark.parametrize("kind", ["local folder", "memory"])
def test_the_mirror_holds_exactly_the_files_retention_kept(tmp_path: Path, memory: Any, kind: str) -> None:
    url = str(tmp_path / "drive") if kind == "local folder" else MEMORY_URL
    fs, base = (fsspec.filesystem("file"), str(tmp_path / "drive")) if kind == "local folder" else (memory, MEMORY_ROOT)
    train(_config(url), tmp_path / "runs", episodes=6)
    local = _local_files(agent_dir(tmp_path / "runs", "SAC"))
    assert len([name for name in local if name.endswith(".pt")]) <= 3
    assert any(name.startswith("replay/") for name in local)
    assert _mirror_files(fs, f"{base}/test/SAC") == local


def _fail_deletions(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bucket refuses deletions (as a process killed after the manifest push never makes them);
    moving a ``.partial`` upload into place still works."""
    original = MemoryFileSystem.rm_file

    def refuse(self: MemoryFileSystem, path: str) -> None:
        if str(path).endswith(".partial"):
            return original(self, path)
        raise PermissionError(f"deletion refused: {path}")

    monkeypatch.setattr(MemoryFileSystem, "rm_file", refuse)


def test_a_push_cut_off_before_its_deletions_stays_resumable_and_the_next_push_cleans_up(
    tmp_path: Path, memory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, folder = _config(MEMORY_URL), f"{MEMORY_ROOT}/test/SAC"
    with monkeypatch.context() as patch:
        _fail_deletions(patch)
        observer = train(config, tmp_path / "runs", episodes=4)
    refused = "SAC: mirroring failed (cannot delete memory://drive/atheria/test/SAC/episode_0001.pt"
    assert any(warning.startswith(refused) for warning in observer.warnings)
    local = agent_dir(tmp_path / "runs", "SAC")
    leftovers = sorted(set(_mirror_files(memory, folder)) - set(_local_files(local)))
    assert "episode_0001.pt" in leftovers and all(name.startswith(("episode_", "replay/episode_")) for name in leftovers)
    assert json.loads(memory.cat_file(f"{folder}/metadata.json")) == json.loads((local / "metadata.json").read_text())

    # The machine is gone: resume from the mirror; its first push removes the leftovers.
    shutil.rmtree(tmp_path / "runs")
    observer = train(config, tmp_path / "runs", episodes=2, resume=True)
    assert not [w for w in observer.warnings if "mirroring failed" in w]
    assert _mirror_files(memory, folder) == _local_files(local)

    train(tiny_config(SMALL_RING_SAC, train={**config["train"], "mirror": None}), tmp_path / "one_go", episodes=6)
    assert rewards(tmp_path / "one_go", "SAC") == rewards(tmp_path / "runs", "SAC")
    one_go, resumed = last_payload(tmp_path / "one_go", "SAC"), last_payload(tmp_path / "runs", "SAC")
    for section in ("loop", "buffer", "env", "rng"):
        assert_same_tree(one_go[section], resumed[section], section)
    for state in (one_go["model"], resumed["model"]):  # the Monitor's wall time "t" differs
        state["ep_info_buffer"] = [{k: v for k, v in info.items() if k != "t"} for info in state["ep_info_buffer"]]
    assert_same_tree(one_go["model"], resumed["model"], "model")


def test_a_mirror_of_another_run_loses_no_file(tmp_path: Path, memory: Any) -> None:
    folder = f"{MEMORY_ROOT}/test/SAC"
    memory.pipe_file(f"{folder}/episode_0009.pt", b"another run's checkpoint")
    memory.pipe_file(f"{folder}/replay/episode_0009.npz", b"another run's segment")

    def manifest(run_id: str) -> Metadata:
        return Metadata(
            agent="SAC",
            algo="SAC",
            policy="MlpPolicy",
            env_id="Pendulum-v1",
            experiment="test",
            last_episode=0,
            total_timesteps=0,
            device="cpu",
            hyperparams={},
            versions={},
            run_id=run_id,
            created="t",
            updated="t",
        )

    memory.pipe_file(f"{folder}/metadata.json", manifest("other").model_dump_json().encode())
    local = tmp_path / "SAC"
    local.mkdir()
    (local / "metadata.json").write_text(manifest("mine").model_dump_json())
    Mirror(MEMORY_URL, "test", "SAC").push(local, manifest("mine"))
    assert _mirror_files(memory, folder) == ["episode_0009.pt", "metadata.json", "replay/episode_0009.npz"]
