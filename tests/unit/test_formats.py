"""history.json / metadata.json / config.json and the checkpoint header (torch-free)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from atheria_cli.agents.checkpoint import CHECKPOINT_SCHEMA_VERSION, check_checkpoint_header
from atheria_cli.errors import DamagedFileError
from atheria_cli.run.formats import (
    EpisodeRecord,
    History,
    Metadata,
    SessionRecord,
    _parse_json,
    encode_episodes,
    read_episodes,
    read_history,
    read_metadata,
    write_document,
)

SEED_HISTORY = {  # the seed's history.json (seed 001), plus the schema version
    "schema_version": 1,
    "agent": "PPO",
    "total_episodes": 10,
    "trainings": [
        {
            "session_timestamp": "2026-01-24T20:33:32",
            "start_episode": 1,
            "end_episode": 5,
            "episodes_count": 5,
            "device": "cuda",
            "duration_seconds": 2.5,
        },
        {
            "session_timestamp": "2026-01-24T20:33:46",
            "start_episode": 6,
            "end_episode": 10,
            "episodes_count": 5,
            "device": "cuda",
            "duration_seconds": 2.5,
        },
    ],
}


def _metadata() -> Metadata:
    return Metadata(
        agent="SAC",
        algo="SAC",
        policy="MlpPolicy",
        env_id="Pendulum-v1",
        experiment="e",
        last_episode=1,
        total_timesteps=200,
        device="cpu",
        hyperparams={"gamma": 0.99},
        versions={"torch": "2.13.0"},
        created="t",
        updated="t",
        checkpoints=[{"file": "episode_0001.pt", "episode": 1, "timesteps": 200, "size": 10, "sha256": "a" * 64, "created": "t"}],
    )


def _record(episode: int) -> EpisodeRecord:
    return EpisodeRecord(episode=episode, timesteps=200 * episode, reward=-1.5, length=200, seconds=0.5, metrics={"co2_kg": 3.0})


def test_history_round_trip(tmp_path: Path) -> None:
    history = History(agent="SAC", total_episodes=1, episodes_bytes=10)
    history.trainings.append(
        SessionRecord(session_timestamp="t", start_episode=1, end_episode=1, episodes_count=1, device="cpu", duration_seconds=1.0)
    )
    write_document(tmp_path / "history.json", history)
    raw = json.loads((tmp_path / "history.json").read_text())
    assert raw["schema_version"] == 1 and raw["episodes_file"] == "episodes.jsonl" and raw["episodes_bytes"] == 10
    assert read_history(tmp_path / "history.json") == history


def test_episode_lines_round_trip_and_uncommitted_tail_is_ignored(tmp_path: Path) -> None:
    committed = encode_episodes([_record(1), _record(2)])
    path = tmp_path / "episodes.jsonl"
    path.write_bytes(committed + encode_episodes([_record(3)])[:17])  # a torn line after a crash
    assert read_episodes(path, len(committed), expected=2) == [_record(1), _record(2)]
    assert json.loads(committed.decode().splitlines()[0])["metrics"] == {"co2_kg": 3.0}


def test_damaged_episode_lines_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "episodes.jsonl"
    path.write_bytes(encode_episodes([_record(1)]) + b'{"episode": 2}\n')
    with pytest.raises(DamagedFileError, match="line 2: timesteps: Field required"):
        read_episodes(path, path.stat().st_size)

    two = encode_episodes([_record(1), _record(2)])
    path.write_bytes(two)
    with pytest.raises(DamagedFileError, match="holds 2 committed episodes, history.json records 5"):
        read_episodes(path, len(two), expected=5)
    with pytest.raises(DamagedFileError, match=f"holds {len(two)} bytes, history.json records 9999"):
        read_episodes(path, 9999)


def test_the_seed_history_keys_are_readable(tmp_path: Path) -> None:
    (tmp_path / "history.json").write_text(json.dumps(SEED_HISTORY))
    history = read_history(tmp_path / "history.json")
    assert history.total_episodes == 10 and [s.end_episode for s in history.trainings] == [5, 10]


def test_metadata_round_trip_and_latest(tmp_path: Path) -> None:
    write_document(tmp_path / "metadata.json", _metadata())
    metadata = read_metadata(tmp_path / "metadata.json")
    assert metadata.latest is not None and metadata.latest.file == "episode_0001.pt"
    assert json.loads((tmp_path / "metadata.json").read_text())["schema_version"] == 1


@pytest.mark.parametrize(
    "content, problem",
    [
        ("{", "invalid JSON at line 1, column 2"),
        ("[]", "expected a JSON object, found list"),
        ('{"agent": "x"}', "missing or invalid schema_version: None"),
        ('{"schema_version": 99, "agent": "x"}', "schema_version 99 is newer than this atheria supports (1); upgrade atheria"),
        (
            '{"schema_version": 1, "agent": "x", "total_episodes": -1}',
            "total_episodes: Input should be greater than or equal to 0",
        ),
        (
            '{"schema_version": 1, "agent": "x", "trainings": [{"start_episode": 1}]}',
            "trainings.0.session_timestamp: Field required",
        ),
    ],
)
def test_damaged_history_is_reported_with_path(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "history.json"
    path.write_text(content)
    with pytest.raises(DamagedFileError) as caught:
        read_history(path)
    assert str(caught.value).startswith(f"{path}: {problem}")


@pytest.mark.parametrize(
    "content",
    [
        b'{"a": 1, "a": 2, "b": [NaN, Infinity, -1e400, 1.0000000000000002, 123456789012345678901234567890]}',
        b'{"a": "\\u00e9 \\ud800"}',  # a lone surrogate: json takes it, pydantic_core does not
        b'{"a":\r\n 1,\r "b": 2}',
        b"\xef\xbb\xbf{}",
        b"[01]",
        b"[1,]",
        b'{"a": 1} x',
        b'{"a": "tab\tinside"}',
        b'{"a":\r\r 1 x}',  # json's line number counts the lone CRs that text mode turned into newlines
        b"\xff\xfe",
    ],
)
def test_documents_parse_as_json_parses_them(tmp_path: Path, content: bytes) -> None:
    """The fast parser gives json's value, or json's own error (line and column included)."""
    path = tmp_path / "doc.json"
    path.write_bytes(content)

    def outcome(parse: Callable[[], Any]) -> tuple[str, str]:
        try:
            return "value", repr(parse())
        except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            return type(error).__name__, str(error)

    assert outcome(lambda: _parse_json(path)) == outcome(lambda: json.loads(path.read_text(encoding="utf-8")))


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(DamagedFileError, match="file is missing"):
        read_metadata(tmp_path / "metadata.json")
    (tmp_path / "metadata.json").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(DamagedFileError, match="not UTF-8"):
        read_metadata(tmp_path / "metadata.json")


def test_bad_sha_in_metadata_is_refused(tmp_path: Path) -> None:
    document = _metadata().model_dump(mode="json")
    document["checkpoints"][0]["sha256"] = "xyz"
    (tmp_path / "metadata.json").write_text(json.dumps(document))
    with pytest.raises(DamagedFileError, match="checkpoints.0.sha256"):
        read_metadata(tmp_path / "metadata.json")


def test_unknown_keys_are_kept(tmp_path: Path) -> None:
    (tmp_path / "history.json").write_text(json.dumps({**SEED_HISTORY, "note": "by hand"}))
    history = read_history(tmp_path / "history.json")
    write_document(tmp_path / "again.json", history)
    assert json.loads((tmp_path / "again.json").read_text())["note"] == "by hand"


def _header(**changes: object) -> dict:
    payload = {
        "format": "atheria-checkpoint",
        "schema_version": CHECKPOINT_SCHEMA_VERSION,
        "trainer": "sb3",
        "agent": "A",
        "algo": "PPO",
        "episode": 1,
        "num_timesteps": 1,
        "run_config": "{}",
        "model": {},
        "loop": {},
        "buffer": None,
        "env": {},
        "rng": {},
    }
    payload.update(changes)
    return payload


def test_checkpoint_header_checks() -> None:
    check_checkpoint_header(_header(), "p")
    with pytest.raises(DamagedFileError, match="not an atheria checkpoint"):
        check_checkpoint_header({"state_dict": {}}, "p")
    with pytest.raises(DamagedFileError, match="newer than this atheria supports"):
        check_checkpoint_header(_header(schema_version=CHECKPOINT_SCHEMA_VERSION + 1), "p")
    incomplete = _header()
    del incomplete["rng"]
    with pytest.raises(DamagedFileError, match="checkpoint lacks rng"):
        check_checkpoint_header(incomplete, "p")


def test_history_with_evaluations_and_fork_origin_round_trips_and_old_files_read_as_empty(tmp_path: Path) -> None:
    from atheria_cli.run.formats import EvaluationRecord, ForkOrigin, Stat

    evaluation = EvaluationRecord(
        episode=4,
        timesteps=200,
        episodes=2,
        seeds=[7, 8],
        seconds=0.25,
        reward=Stat(mean=-3.0, std=0.5),
        length=Stat(mean=50.0, std=0.0),
        metrics={"co2_kg": Stat(mean=None, std=None)},
    )
    origin = ForkOrigin(run_id="r" * 32, agent="SAC", file="test/SAC/episode_0004.pt", sha256="b" * 64, episode=4, timesteps=200)
    history = History(agent="SAC", total_episodes=4, evaluations=[evaluation])
    history.trainings.append(
        SessionRecord(
            session_timestamp="t",
            start_episode=5,
            end_episode=4,
            episodes_count=0,
            device="cpu",
            duration_seconds=1.0,
            eval_seconds=0.25,
            forked_from=origin,
        )
    )
    write_document(tmp_path / "history.json", history)
    raw = json.loads((tmp_path / "history.json").read_text())
    assert raw["evaluations"][0]["reward"] == {"mean": -3.0, "std": 0.5} and raw["evaluations"][0]["seeds"] == [7, 8]
    assert raw["trainings"][0]["forked_from"]["file"] == "test/SAC/episode_0004.pt"
    assert read_history(tmp_path / "history.json") == history
    (tmp_path / "old.json").write_text(json.dumps(SEED_HISTORY))
    old = read_history(tmp_path / "old.json")
    assert old.evaluations == [] and old.trainings[0].eval_seconds == 0.0 and old.trainings[0].forked_from is None


def test_a_damaged_evaluation_is_reported_with_its_field(tmp_path: Path) -> None:
    document = {
        **SEED_HISTORY,
        "evaluations": [
            {
                "episode": 2,
                "timesteps": 10,
                "episodes": 0,
                "seeds": [],
                "seconds": 0,
                "reward": {"mean": 1, "std": 0},
                "length": {"mean": 1, "std": 0},
            }
        ],
    }
    (tmp_path / "history.json").write_text(json.dumps(document))
    with pytest.raises(DamagedFileError, match="evaluations.0.episodes: Input should be greater than or equal to 1"):
        read_history(tmp_path / "history.json")


def test_an_adopted_session_and_run_round_trip_and_old_files_read_as_exact(tmp_path: Path) -> None:
    from atheria_cli.run.formats import AdoptOrigin

    origin = AdoptOrigin(file="sac_checkpoint_300000.zip", sha256="c" * 64, num_timesteps=300000)
    history = History(agent="SAC", total_episodes=0)
    history.trainings.append(
        SessionRecord(
            session_timestamp="t",
            start_episode=1,
            end_episode=0,
            episodes_count=0,
            device="cpu",
            duration_seconds=1.0,
            start_timesteps=300000,
            end_timesteps=300000,
            adopted_from=origin,
            exact=False,
        )
    )
    write_document(tmp_path / "history.json", history)
    raw = json.loads((tmp_path / "history.json").read_text())
    assert raw["trainings"][0]["adopted_from"] == {
        "file": "sac_checkpoint_300000.zip",
        "sha256": "c" * 64,
        "num_timesteps": 300000,
    }
    assert raw["trainings"][0]["exact"] is False
    assert read_history(tmp_path / "history.json") == history
    (tmp_path / "old.json").write_text(json.dumps(SEED_HISTORY))
    old = read_history(tmp_path / "old.json").trainings[0]
    assert old.adopted_from is None and old.exact is True
    write_document(tmp_path / "metadata.json", _metadata())
    assert read_metadata(tmp_path / "metadata.json").adopted_from is None
    adopted = _metadata()
    adopted.adopted_from = origin
    write_document(tmp_path / "adopted.json", adopted)
    assert read_metadata(tmp_path / "adopted.json").adopted_from == origin
