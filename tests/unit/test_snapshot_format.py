"""The snapshots' formats without torch: their metadata.json entries, file names, header check,
what a trainer's snapshot() may return, and which snapshots ``keep`` keeps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from atheria_cli.errors import DamagedFileError
from atheria_cli.reports.runs import AgentRun, committed_snapshots
from atheria_cli.run.formats import Metadata, SnapshotEntry, read_metadata, write_document
from atheria_cli.run.layout import SNAPSHOT_PATTERN, snapshot_file
from atheria_cli.run.snapshots import check_snapshot_header, kept_snapshots, snapshot_due, snapshot_payload
from atheria_cli.run.store import RunState

SHA = "ab" * 32


def entry(number: int, **fields: Any) -> dict[str, Any]:
    return {
        "file": snapshot_file(number),
        "episode": number,
        "timesteps": number * 10,
        "size": 2100,
        "sha256": SHA,
        "created": "2026-12-06T07:00:00+00:00",
        "tensors": ["psi", "step"],
        **fields,
    }


def metadata(**fields: Any) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "agent": "fit",
        "algo": "torch",
        "policy": "tests.trainers:Snapshotter",
        "env_id": None,
        "experiment": "test",
        "last_episode": 4,
        "total_timesteps": 4,
        "device": "cpu",
        "hyperparams": {},
        "versions": {},
        "created": "2026-12-06T07:00:00+00:00",
        "updated": "2026-12-06T07:00:00+00:00",
        **fields,
    }


def test_snapshot_files_are_named_by_episode_in_their_folder() -> None:
    assert snapshot_file(4) == "snapshots/snapshot_0004.pt"
    assert snapshot_file(12345) == "snapshots/snapshot_12345.pt"  # wider past 9999, as checkpoints
    assert SNAPSHOT_PATTERN.match("snapshot_0004.pt") and not SNAPSHOT_PATTERN.match("episode_0004.pt")
    with pytest.raises(ValueError, match="episode numbers start at 1"):
        snapshot_file(0)


def test_snapshots_are_due_by_episode_number() -> None:
    assert [episode for episode in range(1, 8) if snapshot_due(3, episode)] == [3, 6]


def test_a_metadata_json_without_snapshots_reads_as_none_and_round_trips_with_them(tmp_path: Path) -> None:
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps(metadata()))
    assert read_metadata(path).snapshots == []  # written before snapshots existed
    document = Metadata.model_validate(metadata(snapshots=[entry(2), entry(4)]))
    write_document(path, document)
    raw = json.loads(path.read_text())
    assert raw["schema_version"] == 1 and raw["snapshots"][1] == entry(4)
    assert read_metadata(path).snapshots == document.snapshots


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"file": "snapshot_0004.pt"}, "should match pattern"),  # outside snapshots/
        ({"file": "snapshots/episode_0004.pt"}, "should match pattern"),
        ({"file": "snapshots/snapshot_0006.pt"}, "file 'snapshots/snapshot_0006.pt' does not name episode 4"),
        ({"episode": 0, "file": "snapshots/snapshot_0000.pt"}, "greater than or equal to 1"),
        ({"sha256": "not a digest"}, "should match pattern"),
        ({"size": -1}, "greater than or equal to 0"),
    ],
)
def test_a_damaged_snapshot_entry_is_refused(fields: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        SnapshotEntry.model_validate(entry(4, **fields))


def test_history_reads_the_snapshots_of_metadata_json_and_names_a_damaged_one(tmp_path: Path) -> None:
    def run(snapshots: Any) -> AgentRun:
        return AgentRun("fit", tmp_path, RunState.COMMITTED, snapshots=snapshots)

    assert committed_snapshots(run(None)) == [] == committed_snapshots(run([]))
    assert [item.episode for item in committed_snapshots(run([entry(2), entry(4)]))] == [2, 4]
    with pytest.raises(DamagedFileError) as raised:
        committed_snapshots(run([entry(2), entry(4, sha256="x")]))
    assert (
        str(raised.value) == f"{tmp_path / 'metadata.json'}: snapshots.1.sha256: String should match pattern '^[0-9a-f]{{64}}$'"
    )


def header(**fields: Any) -> dict[str, Any]:
    return {
        "format": "atheria-snapshot",
        "schema_version": 1,
        "trainer": "torch",
        "agent": "fit",
        "episode": 4,
        "num_timesteps": 4,
        "tensors": ["psi", "step"],
        "snapshot": {"psi": 0.5, "step": 4},
        **fields,
    }


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ([1, 2], "not an atheria snapshot"),
        (header(format="atheria-checkpoint"), "not an atheria snapshot"),
        (header(schema_version=2), "schema_version 2 is newer than this atheria supports (1); upgrade atheria"),
        ({key: value for key, value in header().items() if key != "episode"}, "snapshot lacks episode"),
        (header(tensors=["psi"]), "the snapshot's tensors differ from the names its header lists"),
    ],
)
def test_the_header_check_refuses_what_is_no_snapshot_of_this_version(payload: Any, problem: str) -> None:
    with pytest.raises(DamagedFileError) as raised:
        check_snapshot_header(payload, "snapshots/snapshot_0004.pt")
    assert str(raised.value) == f"snapshots/snapshot_0004.pt: {problem}"


def test_a_snapshot_payload_holds_the_header_and_the_trainers_values_in_order() -> None:
    payload = snapshot_payload({"step": 4, "psi": 0.5}, trainer="torch", agent="fit", episode=4, timesteps=4, created="now")
    check_snapshot_header(payload, "here")
    assert payload["tensors"] == ["step", "psi"] and payload["snapshot"] == {"step": 4, "psi": 0.5}


@pytest.mark.parametrize(
    ("returned", "problem"),
    [
        (None, "snapshot() must return a non-empty dict of tensors, got NoneType"),
        ([1.0], "snapshot() must return a non-empty dict of tensors, got list"),
        ({}, "snapshot() must return a non-empty dict of tensors, got an empty dict"),
        ({1: 2.0}, "snapshot() must return a dict with string keys, got keys [1]"),
    ],
)
def test_what_snapshot_may_return(returned: Any, problem: str) -> None:
    with pytest.raises(TypeError) as raised:
        snapshot_payload(returned, trainer="torch", agent="fit", episode=1, timesteps=1, created="now")
    assert str(raised.value) == problem


def test_keep_keeps_the_newest_snapshots_by_episode() -> None:
    committed = [SnapshotEntry.model_validate(entry(episode)) for episode in (6, 2, 4)]
    assert [item.episode for item in kept_snapshots(committed, 2)] == [4, 6]
    assert [item.episode for item in kept_snapshots(committed, None)] == [2, 4, 6]
    assert [item.episode for item in kept_snapshots(committed, 5)] == [2, 4, 6]
