"""The agent store's commit protocol, without training (torch-free)."""

from __future__ import annotations

from pathlib import Path

from atheria_cli.run.formats import EpisodeRecord, History, Metadata, SessionRecord
from atheria_cli.run.layout import AgentLayout
from atheria_cli.run.store import AgentStore, RunState


def _record(episode: int) -> EpisodeRecord:
    return EpisodeRecord(episode=episode, timesteps=10 * episode, reward=float(episode), length=10, seconds=0.1)


def _metadata() -> Metadata:
    return Metadata(
        agent="A",
        algo="PPO",
        policy="MlpPolicy",
        env_id="E",
        experiment="x",
        last_episode=0,
        total_timesteps=0,
        device="cpu",
        hyperparams={},
        versions={},
        created="t",
        updated="t",
    )


def _commit(store: AgentStore, history: History, metadata: Metadata, episodes: list[int]) -> None:
    history.total_episodes = episodes[-1]
    session = history.trainings[-1]
    session.end_episode, session.episodes_count = episodes[-1], episodes[-1] - session.start_episode + 1
    store.commit(
        checkpoint_bytes=b"x" * episodes[-1],
        entry_episode=episodes[-1],
        timesteps=10 * episodes[-1],
        history=history,
        new_episodes=[_record(e) for e in episodes],
        metadata=metadata,
        run_config=None,
    )


def _new_session(history: History, start: int) -> None:
    history.trainings.append(
        SessionRecord(
            session_timestamp="t",
            start_episode=start,
            end_episode=start - 1,
            episodes_count=0,
            device="cpu",
            duration_seconds=0.0,
            start_timesteps=10 * (start - 1),
            end_timesteps=10 * (start - 1),
        )
    )


def test_commits_append_episodes_and_cut_uncommitted_lines(tmp_path: Path) -> None:
    store = AgentStore(AgentLayout(tmp_path / "A"))
    assert store.state() is RunState.EMPTY
    history, metadata = History(agent="A"), _metadata()
    _new_session(history, 1)
    _commit(store, history, metadata, [1, 2])
    assert store.state() is RunState.COMMITTED
    committed = (tmp_path / "A/episodes.jsonl").read_bytes()
    # A session that died after appending but before its commit left a line behind.
    with open(tmp_path / "A/episodes.jsonl", "ab") as handle:
        handle.write(b'{"episode": 3, "tim')
    history = store.history()
    assert [r.episode for r in store.episodes(history)] == [1, 2]
    _new_session(history, 3)
    _commit(store, history, store.metadata(), [3])
    assert (tmp_path / "A/episodes.jsonl").read_bytes().startswith(committed)
    assert [r.episode for r in store.episodes(store.history())] == [1, 2, 3]
    assert [c.file for c in store.metadata().checkpoints] == ["episode_0002.pt", "episode_0003.pt"]


def test_history_written_before_a_crash_is_cut_back_to_the_checkpoint(tmp_path: Path) -> None:
    store = AgentStore(AgentLayout(tmp_path / "A"))
    history, metadata = History(agent="A"), _metadata()
    _new_session(history, 1)
    _commit(store, history, metadata, [1, 2])
    _new_session(history, 3)
    _commit(store, history, metadata, [3, 4])
    # As if the process died after writing history.json for episode 4 but before metadata.json.
    back = store.history_up_to(store.history(), 2, 20)
    assert back.total_episodes == 2 and [s.end_episode for s in back.trainings] == [2]
    assert [r.episode for r in store.episodes(back)] == [1, 2]


def test_a_session_that_committed_nothing_durable_is_dropped(tmp_path: Path) -> None:
    store = AgentStore(AgentLayout(tmp_path / "A"))
    history, metadata = History(agent="A"), _metadata()
    _new_session(history, 1)
    _commit(store, history, metadata, [1, 2])
    # A resumed session whose only commit (a mid-episode one, no new episode) lost its metadata.json.
    _new_session(history, 3)
    history.trainings[-1].end_timesteps = 27
    back = store.history_up_to(history, 2, 20)
    assert [(s.start_episode, s.end_episode) for s in back.trainings] == [(1, 2)]


def test_evaluations_past_the_resumed_checkpoint_are_dropped(tmp_path: Path) -> None:
    from atheria_cli.run.formats import EvaluationRecord, Stat

    def evaluation(episode: int) -> EvaluationRecord:
        stat = Stat(mean=1.0, std=0.0)
        return EvaluationRecord(
            episode=episode, timesteps=10 * episode, episodes=1, seeds=[0], seconds=0.1, reward=stat, length=stat
        )

    store = AgentStore(AgentLayout(tmp_path / "A"))
    history, metadata = History(agent="A"), _metadata()
    _new_session(history, 1)
    history.evaluations = [evaluation(2), evaluation(4)]
    _commit(store, history, metadata, [1, 2, 3, 4])
    back = store.history_up_to(store.history(), 2, 20)
    assert [item.episode for item in back.evaluations] == [2]
