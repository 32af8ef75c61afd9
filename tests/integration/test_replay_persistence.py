"""Replay buffers written incrementally: exact round trip, segment sizes, pruning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from atheria_cli.agents.loops import OffPolicyLoop
from atheria_cli.agents.registry import build_model
from atheria_cli.config import ExperimentConfig
from atheria_cli.envs.factory import make_vec_env
from atheria_cli.errors import DamagedFileError
from atheria_cli.run.formats import read_metadata
from atheria_cli.run.layout import AgentLayout
from atheria_cli.run.segments import Segment, decode_segment
from atheria_cli.run.store import AgentStore
from tests.conftest import TINY_AGENTS, tiny_config
from tests.integration.helpers import agent_dir, last_payload, train

pytestmark = pytest.mark.integration


def _sac_loop(buffer_size: int) -> OffPolicyLoop:
    hyperparams = {**TINY_AGENTS["SAC"]["hyperparams"], "buffer_size": buffer_size}
    config = ExperimentConfig.model_validate(tiny_config({"SAC": {"hyperparams": hyperparams}}))
    model = build_model(config, "SAC", make_vec_env(config.env), "cpu", 0)
    loop = OffPolicyLoop(model, 1000)
    loop.start_fresh()
    return loop


def test_segments_rebuild_the_exact_ring_buffer(tmp_path: Path) -> None:
    store = AgentStore(AgentLayout(tmp_path))
    source = _sac_loop(buffer_size=64)
    for episode, steps in enumerate((30, 30, 50, 10, 100), start=1):  # wraps the ring several times
        for _ in range(steps):
            source.step()
        pending = source.journal.pending(f"episode_{episode:04d}.pt")
        source.journal.saved(store.write_segment(*pending) if pending else None)
        state = source.journal.state_dict()

        target = _sac_loop(buffer_size=64)
        target.journal.load_state_dict(state, store.read_segment)
        a, b = source.model.replay_buffer, target.model.replay_buffer
        assert (a.pos, a.full) == (b.pos, b.full)
        valid = slice(None) if a.full else slice(0, a.pos + 1)
        for name in ("observations", "next_observations", "actions", "rewards", "dones", "timeouts"):
            assert np.array_equal(getattr(a, name)[valid], getattr(b, name)[valid]), (episode, name)
    # The last save added 100 rows to a 64-row ring: its segment holds only the 64 live ones,
    # and no older segment is needed any more.
    assert [(s.start, s.end) for s in source.journal.segments] == [(156, 220)]


def test_each_checkpoint_writes_only_the_new_rows(tmp_path: Path) -> None:
    train(tiny_config({"SAC": TINY_AGENTS["SAC"]}), tmp_path, episodes=3)
    folder = agent_dir(tmp_path, "SAC")
    for number in (1, 2, 3):
        start, end, arrays = decode_segment((folder / f"replay/episode_000{number}.npz").read_bytes())
        assert (start, end) == ((number - 1) * 50, number * 50)
        assert arrays["observations"].shape == (50, 1, 3)
    # The checkpoint itself holds no replay rows.
    assert "arrays" not in last_payload(tmp_path, "SAC")["buffer"]


def test_segments_no_checkpoint_needs_are_removed(tmp_path: Path) -> None:
    config = tiny_config({"SAC": {"hyperparams": {**TINY_AGENTS["SAC"]["hyperparams"], "buffer_size": 60}}})
    train(config, tmp_path, episodes=3)
    folder = agent_dir(tmp_path, "SAC")
    orphan = folder / "replay/episode_0099.npz"  # as left by a crash before its checkpoint committed
    orphan.write_bytes(b"partial")
    metadata = read_metadata(folder / "metadata.json")
    # The last checkpoint's 60-row ring spans episodes 2 and 3 only.
    assert metadata.checkpoints[-1].replay_rows == [90, 150]
    assert [s.file for s in metadata.replay_segments if s.needed_by(metadata.checkpoints[-1])] == [
        "replay/episode_0002.npz",
        "replay/episode_0003.npz",
    ]
    # Drop the first two checkpoints from the commit record, as a retention policy would.
    metadata.checkpoints = metadata.checkpoints[-1:]
    removed = AgentStore(AgentLayout(folder)).prune_replay(metadata)
    assert removed == ["replay/episode_0001.npz", "replay/episode_0099.npz"]
    assert [s.file for s in read_metadata(folder / "metadata.json").replay_segments] == [
        "replay/episode_0002.npz",
        "replay/episode_0003.npz",
    ]
    assert sorted(p.name for p in (folder / "replay").iterdir()) == ["episode_0002.npz", "episode_0003.npz"]


def test_a_damaged_segment_is_refused(tmp_path: Path) -> None:
    train(tiny_config({"SAC": TINY_AGENTS["SAC"]}), tmp_path, episodes=1)
    folder = agent_dir(tmp_path, "SAC")
    segment = Segment.from_dict(last_payload(tmp_path, "SAC")["buffer"]["segments"][0])
    (folder / segment.file).write_bytes((folder / segment.file).read_bytes()[:-10])
    with pytest.raises(DamagedFileError, match="sha256 differs"):
        AgentStore(AgentLayout(folder)).read_segment(segment)


def test_schedules_continue_where_they_were(tmp_path: Path) -> None:
    hyperparams = {
        **TINY_AGENTS["PPO"]["hyperparams"],
        "learning_rate": {"schedule": "linear", "start": 0.003, "end": 0.0001},
    }
    config = tiny_config({"PPO": {"hyperparams": hyperparams}}, train={"episodes": 1, "save_every": 1, "schedule_timesteps": 400})
    train(config, tmp_path / "one_go", episodes=4)
    train(config, tmp_path / "resumed", episodes=2)
    train(config, tmp_path / "resumed", episodes=2, resume=True)
    rates, generators = [], []
    for run in ("one_go", "resumed"):
        payload = last_payload(tmp_path / run, "PPO")
        rates.append(payload["model"]["state_dicts"]["policy.optimizer"]["param_groups"][0]["lr"])
        # The last update (6th rollout of 32 steps) used progress 1 - 192/400.
        assert payload["model"]["counters"]["_current_progress_remaining"] == pytest.approx(1 - 192 / 400)
        generators.append(payload["rng"]["torch"])
    assert rates[0] == rates[1] == pytest.approx(0.003 + (0.0001 - 0.003) * (192 / 400))
    # The resumed run drew exactly as many random numbers as the uninterrupted one.
    assert torch.equal(generators[0], generators[1])
