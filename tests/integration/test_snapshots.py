"""``train.snapshots``: a trainer's snapshot() persisted every N episodes, the newest K kept,
committed with the checkpoints, exact across a resume and a crash, mirrored, and verified."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import fsspec
import pytest
import torch
from typer.testing import CliRunner

from atheria_cli.cli import app
from atheria_cli.errors import TrainerFailedError
from atheria_cli.run.formats import read_metadata
from atheria_cli.run.store import AgentStore
from tests.conftest import listing, write_config
from tests.integration.helpers import agent_dir, assert_same_tree, train

pytestmark = pytest.mark.integration

runner = CliRunner()
METRICS = [{"name": "loss", "goal": "min"}, "lr"]


def snapshot_config(every: int = 2, keep: int | None = 2, save_every: int = 1, **train_settings: Any) -> dict[str, Any]:
    snapshots: dict[str, int] = {"every": every} if keep is None else {"every": every, "keep": keep}
    return {
        "experiment": "test",
        "seed": 7,
        "device": "cpu",
        "agents": {"fit": {"trainer": "tests.trainers:Snapshotter", "kwargs": {"hidden": 8}, "metrics": METRICS}},
        "train": {"allow_import": True, "save_every": save_every, "snapshots": snapshots, **train_settings},
    }


def folder(root: Path) -> Path:
    return agent_dir(root, "fit")


def snapshot(root: Path, episode: int) -> dict[str, Any]:
    path = folder(root) / f"snapshots/snapshot_{episode:04d}.pt"
    payload: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    return payload


def committed(root: Path) -> list[int]:
    return [entry.episode for entry in read_metadata(folder(root) / "metadata.json").snapshots]


def checkpoint_psi(root: Path, episode: int) -> torch.Tensor:
    payload = torch.load(folder(root) / f"episode_{episode:04d}.pt", map_location="cpu", weights_only=True)
    psi: torch.Tensor = payload["state"]["psi"]
    return psi


def test_six_episodes_every_2_keep_2_leave_the_last_two_snapshots_of_psi(tmp_path: Path) -> None:
    observer = train(snapshot_config(), tmp_path, episodes=6)
    assert observer.warnings == []
    assert listing(folder(tmp_path) / "snapshots") == ["snapshot_0004.pt", "snapshot_0006.pt"]
    assert committed(tmp_path) == [4, 6]
    for episode in (4, 6):
        payload = snapshot(tmp_path, episode)
        assert (payload["format"], payload["schema_version"], payload["trainer"]) == ("atheria-snapshot", 1, "torch")
        assert (payload["agent"], payload["episode"], payload["num_timesteps"]) == ("fit", episode, episode)
        assert payload["tensors"] == ["psi", "step"] and list(payload["snapshot"]) == ["psi", "step"]
        # psi as the trainer held it at that episode (the checkpoint of the same episode holds it
        # too): a copy, not the tensor training goes on updating in place.
        assert torch.equal(payload["snapshot"]["psi"], checkpoint_psi(tmp_path, episode))
        assert payload["snapshot"]["step"].item() == episode
    assert not torch.equal(snapshot(tmp_path, 4)["snapshot"]["psi"], snapshot(tmp_path, 6)["snapshot"]["psi"])


def test_a_snapshot_is_committed_by_the_checkpoint_after_its_episode(tmp_path: Path) -> None:
    train(snapshot_config(keep=None, save_every=3), tmp_path, episodes=4)
    # Snapshots 2 and 4 were written when their episodes ended; checkpoints at 3 and 4 committed them.
    assert committed(tmp_path) == [2, 4]
    assert [entry.file for entry in read_metadata(folder(tmp_path) / "metadata.json").checkpoints] == [
        "episode_0003.pt",
        "episode_0004.pt",
    ]


def test_a_resume_continues_the_snapshots_as_one_session_takes_them(tmp_path: Path) -> None:
    train(snapshot_config(keep=None), tmp_path / "one", episodes=6)
    train(snapshot_config(keep=None), tmp_path / "split", episodes=3)
    assert committed(tmp_path / "split") == [2]
    resumed = train(snapshot_config(keep=None), tmp_path / "split", episodes=3, resume=True)
    assert resumed.warnings == []
    for root in (tmp_path / "one", tmp_path / "split"):
        assert listing(folder(root) / "snapshots") == ["snapshot_0002.pt", "snapshot_0004.pt", "snapshot_0006.pt"]
        assert committed(root) == [2, 4, 6]
    for episode in (2, 4, 6):
        one, split = snapshot(tmp_path / "one", episode), snapshot(tmp_path / "split", episode)
        assert_same_tree(one["snapshot"], split["snapshot"], f"snapshot {episode}")


def test_a_crash_between_a_snapshot_and_its_commit_leaves_a_consistent_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = snapshot_config(save_every=4)
    train(config, tmp_path / "one", episodes=6)
    real_commit = AgentStore.commit

    def killed_at_episode_6(self: AgentStore, **kwargs: Any) -> Any:
        if kwargs["entry_episode"] == 6:
            raise KeyboardInterrupt("killed before the commit of episode 6")
        return real_commit(self, **kwargs)

    monkeypatch.setattr(AgentStore, "commit", killed_at_episode_6)
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "split", episodes=6)
    monkeypatch.setattr(AgentStore, "commit", real_commit)
    run = folder(tmp_path / "split")
    # snapshot_0006.pt was written when episode 6 ended, but no commit lists it.
    assert listing(run / "snapshots") == ["snapshot_0002.pt", "snapshot_0004.pt", "snapshot_0006.pt"]
    assert committed(tmp_path / "split") == [2, 4]
    verified = _invoke_verify(tmp_path / "split", config)
    assert verified.exit_code == 0, verified.output
    assert verified.stdout == "fit: 1 checkpoint(s), 2 snapshot(s), ok\n"
    assert "note: snapshots/snapshot_0006.pt is not committed" in verified.stderr

    train(config, tmp_path / "split", episodes=1, resume=True)  # episode 5: the orphan goes
    assert listing(run / "snapshots") == ["snapshot_0002.pt", "snapshot_0004.pt"]
    train(config, tmp_path / "split", episodes=1, resume=True)  # episode 6 again, then retention
    assert (
        listing(run / "snapshots") == ["snapshot_0004.pt", "snapshot_0006.pt"] == listing(folder(tmp_path / "one") / "snapshots")
    )
    assert committed(tmp_path / "split") == [4, 6]
    for episode in (4, 6):
        assert_same_tree(snapshot(tmp_path / "one", episode)["snapshot"], snapshot(tmp_path / "split", episode)["snapshot"])


def test_a_resume_that_falls_back_takes_the_later_snapshots_again_and_says_so(tmp_path: Path) -> None:
    config = snapshot_config(keep=None, save_every=2)
    train(config, tmp_path, episodes=4)
    (folder(tmp_path) / "episode_0004.pt").write_bytes(b"damaged")
    resumed = train(config, tmp_path, episodes=2, resume=True)
    assert "fit: snapshots/snapshot_0004.pt came after episode_0002.pt and are removed; training takes them again" in (
        resumed.warnings
    )
    assert committed(tmp_path) == [2, 4]
    assert torch.equal(snapshot(tmp_path, 4)["snapshot"]["psi"], checkpoint_psi(tmp_path, 4))


def test_the_mirror_holds_the_kept_snapshots_and_a_resume_brings_them_back(tmp_path: Path) -> None:
    memory = fsspec.filesystem("memory")
    memory.store.clear()
    memory.pseudo_dirs[:] = [""]
    try:
        config = snapshot_config(mirror={"to": "memory://drive/atheria"})
        train(config, tmp_path / "runs", episodes=6)
        local = sorted(str(path.relative_to(folder(tmp_path / "runs"))) for path in folder(tmp_path / "runs").rglob("*.pt"))
        mirrored = sorted(path.removeprefix("/drive/atheria/test/fit/") for path in memory.find("/drive/atheria/test/fit"))
        assert [name for name in mirrored if name.startswith("snapshots/")] == [
            "snapshots/snapshot_0004.pt",
            "snapshots/snapshot_0006.pt",
        ]
        assert [name for name in mirrored if name.endswith(".pt")] == local
        # The machine is gone: --resume restores the run, snapshots included, from the mirror.
        lost = tmp_path / "runs"
        before = {episode: snapshot(lost, episode)["snapshot"] for episode in (4, 6)}
        for path in sorted(lost.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        train(config, lost, episodes=2, resume=True)
        assert committed(lost) == [6, 8]
        assert listing(folder(lost) / "snapshots") == ["snapshot_0006.pt", "snapshot_0008.pt"]
        assert_same_tree(before[6], snapshot(lost, 6)["snapshot"], "snapshot 6")
    finally:
        memory.store.clear()
        memory.pseudo_dirs[:] = [""]


def _invoke_verify(root: Path, config: dict[str, Any]) -> Any:
    path = write_config(root.parent / f"{root.name}.yaml", {**config, "checkpoints_dir": str(root)})
    return runner.invoke(app, ["verify", "--config", str(path)])


def test_verify_reports_a_damaged_missing_or_mismatched_snapshot(tmp_path: Path) -> None:
    config = snapshot_config(keep=None)
    train(config, tmp_path / "runs", episodes=6)
    run = folder(tmp_path / "runs")
    assert _invoke_verify(tmp_path / "runs", config).stdout == "fit: 6 checkpoint(s), 3 snapshot(s), ok\n"

    data = bytearray((run / "snapshots/snapshot_0002.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (run / "snapshots/snapshot_0002.pt").write_bytes(bytes(data))
    (run / "snapshots/snapshot_0004.pt").unlink()
    # Another run's snapshot 4 under 6's name, with metadata.json made to vouch for its bytes:
    # only the header tells.
    replaced = _snapshot_bytes_of(tmp_path, config, episode=4)
    (run / "snapshots/snapshot_0006.pt").write_bytes(replaced)
    metadata = json.loads((run / "metadata.json").read_text())
    entry = metadata["snapshots"][2]
    entry["size"], entry["sha256"] = len(replaced), hashlib.sha256(replaced).hexdigest()
    (run / "metadata.json").write_text(json.dumps(metadata))

    result = _invoke_verify(tmp_path / "runs", config)
    assert result.exit_code == 1
    assert result.stdout == (
        "fit: 6 checkpoint(s), 3 snapshot(s), 3 problem(s)\n"
        "  snapshots/snapshot_0002.pt: sha256 differs from the one recorded in metadata.json (file changed or truncated)\n"
        "  snapshots/snapshot_0004.pt: file is missing\n"
        "  snapshots/snapshot_0006.pt: header says agent fit, episode 4, timesteps 4, tensors ['psi', 'step']; "
        "metadata.json says agent fit, episode 6, timesteps 6, tensors ['psi', 'step']\n"
    )


def _snapshot_bytes_of(tmp_path: Path, config: dict[str, Any], episode: int) -> bytes:
    """The bytes of another run's snapshot of ``episode`` (same config: a well-formed file)."""
    train(config, tmp_path / "other", episodes=episode)
    return (folder(tmp_path / "other") / f"snapshots/snapshot_{episode:04d}.pt").read_bytes()


def test_a_snapshot_of_no_plain_data_ends_the_session_with_the_commits_intact(tmp_path: Path) -> None:
    config = snapshot_config()
    config["agents"]["fit"]["trainer"] = "tests.trainers:SnapshotsNumpy"
    with pytest.raises(TrainerFailedError) as raised:
        train(config, tmp_path, episodes=3)
    assert str(raised.value) == (
        "agents.fit: the snapshot after episode 2 cannot be written: the payload holds a ndarray, which "
        "weights_only loading refuses; the committed checkpoints are intact (--resume continues from the last)"
    )
    assert [entry.file for entry in read_metadata(folder(tmp_path) / "metadata.json").checkpoints] == ["episode_0001.pt"]
    assert not (folder(tmp_path) / "snapshots").exists()


def test_a_snapshot_method_that_returns_none_is_said_once(tmp_path: Path) -> None:
    config = snapshot_config()
    config["agents"]["fit"]["trainer"] = "tests.trainers:SnapshotsNothing"
    observer = train(config, tmp_path, episodes=4)
    assert observer.warnings == ["fit: the trainer returned no snapshot after episode 2; none is written"]
    assert committed(tmp_path) == [] and not (folder(tmp_path) / "snapshots").exists()


def test_prune_applies_a_tightened_snapshots_keep_to_an_existing_run(tmp_path: Path) -> None:
    train(snapshot_config(keep=None), tmp_path, episodes=6)
    assert committed(tmp_path) == [2, 4, 6]
    path = write_config(tmp_path / "exp.yaml", {**snapshot_config(keep=1), "checkpoints_dir": str(tmp_path)})
    result = runner.invoke(app, ["prune", "--config", str(path)])
    assert result.exit_code == 0, result.output
    # No train.keep: the checkpoints are not its business, and it says nothing of them.
    assert result.stdout == "fit: removed 2 snapshot(s): snapshots/snapshot_0002.pt, snapshots/snapshot_0004.pt\n"
    assert committed(tmp_path) == [6] and listing(folder(tmp_path) / "snapshots") == ["snapshot_0006.pt"]
    assert len(read_metadata(folder(tmp_path) / "metadata.json").checkpoints) == 6
    assert runner.invoke(app, ["verify", "--config", str(path)]).exit_code == 0
