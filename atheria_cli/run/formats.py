"""On-disk JSON formats of a run: ``history.json``, ``metadata.json`` and ``config.json``.

Each document carries ``schema_version``. Readers accept every version up to the current one
and refuse newer ones with a clear message. Torch-free. (``episode_XXXX.pt`` is defined in
:mod:`atheria_cli.agents.checkpoint`.)

Versioning policy: a field added with a default that means "absent" (as the ones noted below)
keeps the version, since older files still read correctly and older readers keep unknown keys
(``extra="allow"``). A change that an older file cannot satisfy bumps the version and ships, in
the same commit, a migration from the previous version that :func:`read_document` applies. Every
schema is still at version 1, so no migration exists yet.

history.json (schema 1)::

    {"schema_version": 1, "agent": "PPO", "total_episodes": 10,
     "trainings": [{"session_timestamp", "start_episode", "end_episode", "episodes_count",
                    "device", "duration_seconds", "start_timesteps", "end_timesteps",
                    "resumed_from", "atheria_version", "eval_seconds",
                    "forked_from": null | {"run_id", "agent", "file", "sha256", "episode", "timesteps"},
                    "adopted_from": null | {"file", "sha256", "num_timesteps"}, "exact": true | false}],
     "episodes_file": "episodes.jsonl", "episodes_bytes": 1234,
     "evaluations": [{"episode", "timesteps", "episodes", "seeds", "deterministic", "seconds",
                      "reward": {"mean", "std"}, "length": {"mean", "std"},
                      "metrics": {name: {"mean", "std"}}}]}

``eval_seconds``, ``forked_from`` and ``evaluations`` were added within schema 1 (absent: 0, null, []),
and so were ``adopted_from`` and ``exact`` (absent: null, true): the first session of a run adopted
from an SB3 zip (``train --from-sb3``) names the zip and is not exact (the zip holds no RNG, env or
buffer state); its later sessions are exact again.
An evaluation is written in the same history.json as the checkpoint it evaluates, so it is
committed by that checkpoint's metadata.json; readers keep only evaluations up to the newest
committed checkpoint (history.json may run one commit ahead after a crash).

episodes.jsonl: one JSON object per line and episode, appended at each commit, never rewritten:
``{"episode", "timesteps", "reward", "length", "seconds", "metrics": {name: value}}``. Only its
first ``episodes_bytes`` bytes are committed (lines appended by a session that died before its
commit are ignored by readers and cut off by the next commit).

metadata.json (schema 1): agent, algo, policy, env_id, experiment, last_episode, total_timesteps,
device, hyperparams (resolved, with SB3's defaults), versions, run_id, created, updated and
``checkpoints: [{file, episode, partial, timesteps, size, sha256, created, replay_rows}]`` and
``replay_segments: [{file, start, end, sha256, size}]`` (each written segment once), and
``adopted_from`` (added within schema 1, absent: null) for a run adopted from an SB3 zip, and
``resume_exactness`` (added within schema 1, absent: null): the last ``atheria verify
--resume-exactness`` of the agent, ``{verdict, exact, episodes, split, repeat, difference, checked,
atheria_version}``; an older atheria keeps it as an unknown field, and so is ``snapshots``
(added within schema 1, absent: []): ``[{file, episode, timesteps, size, sha256, created,
tensors}]``, the committed snapshots of ``train.snapshots``, oldest first. It is
written last: a checkpoint (or a snapshot) exists for atheria only once its entry is here.

config.json (schema 1): ``{"schema_version": 1, "config": <the resolved experiment config>}``.
"""

from __future__ import annotations

import functools
import json
import uuid
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from pydantic_core import from_json

from atheria_cli.errors import DamagedFileError
from atheria_cli.run.atomic import atomic_write_json

# A snapshot's file, relative to the agent's folder (atheria_cli.run.layout.snapshot_file).
SNAPSHOT_FILE_PATTERN = r"^snapshots/snapshot_\d{4,}\.pt$"
HISTORY_SCHEMA_VERSION = 1
METADATA_SCHEMA_VERSION = 1
RUN_CONFIG_SCHEMA_VERSION = 1


class Document(BaseModel):
    # Unknown keys are kept: a file touched by hand or by a newer minor version stays readable.
    model_config = ConfigDict(extra="allow", defer_build=True)  # built on first use: fast start-up


class EpisodeRecord(Document):
    episode: int = Field(ge=1)
    timesteps: int = Field(ge=0)
    reward: float | None
    length: int = Field(ge=0)
    seconds: float = Field(ge=0)
    metrics: dict[str, float | None] = Field(default_factory=dict)


class SessionRecord(Document):
    session_timestamp: str
    start_episode: int = Field(ge=1)
    end_episode: int = Field(ge=0)
    episodes_count: int = Field(ge=0)
    device: str
    duration_seconds: float = Field(ge=0)
    start_timesteps: int = Field(default=0, ge=0)
    end_timesteps: int = Field(default=0, ge=0)
    resumed_from: str | None = None
    atheria_version: str | None = None
    threads: int | None = Field(default=None, ge=1)  # torch threads; float results may depend on them
    eval_seconds: float = Field(default=0.0, ge=0)  # part of duration_seconds spent evaluating
    forked_from: ForkOrigin | None = None  # the first session of a fork: where it came from
    resources: ResourceSummary | None = None  # what the monitor read (train.monitor_every), when it ran
    adopted_from: AdoptOrigin | None = None  # the first session of an adopted run (--from-sb3, a foreign checkpoint)
    exact: bool = True  # False: this session did not start from a complete training state (adoption)


class ResourceSummary(Document):
    """The resource monitor's readings of one session, folded as they come (peaks and means)."""

    readings: int = Field(ge=1)
    peak_rss_bytes: int = Field(ge=0)
    mean_cpu_percent: float = Field(ge=0)
    mean_gpu_utilization: float | None = None  # percent, where NVML answered
    peak_gpu_memory_used: int | None = None
    gpu_memory_total: int | None = None
    last: str  # the last line the monitor printed


class ForkOrigin(Document):
    """The checkpoint a forked run started from (``train --from-checkpoint``)."""

    run_id: str
    agent: str
    file: str  # as given: RUN/AGENT/episode_XXXX.pt
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    episode: int = Field(ge=0)
    timesteps: int = Field(ge=0)


class AdoptOrigin(Document):
    """Another program's saved model an adopted run started from: an SB3 zip (``train
    --from-sb3``), or a trainer's checkpoint file written outside atheria (``train
    --from-checkpoint FILE.pth`` of a trainer agent)."""

    file: str  # as given
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    # The zip's num_timesteps, or the file's episode (a trainer's clock counts episodes): where
    # the adopted run's timesteps go on from.
    num_timesteps: int = Field(ge=0)


class ExactnessVerdict(Document):
    """The last ``atheria verify --resume-exactness`` of the agent's config (metadata.json)."""

    verdict: str  # "exact", "not exact", "resume lost state" or "not deterministic"
    exact: bool
    episodes: int = Field(ge=2)  # T, trained uninterrupted
    split: int = Field(ge=1)  # N, then a resume for T - N in a fresh process
    repeat: bool  # whether a second uninterrupted run was compared too
    difference: str | None = None  # the first difference found, e.g. "episode 3: loss 0.25 != 0.26"
    checked: str
    atheria_version: str
    # The fingerprint of the settings it checked (config.training_settings_sha256); absent (None)
    # in a verdict recorded before it existed. A verdict holds for those settings only.
    settings_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class Stat(Document):
    mean: float | None
    std: float | None


class EvaluationRecord(Document):
    """One evaluation during training (``train.eval``), committed with the checkpoint it evaluates."""

    episode: int = Field(ge=0)  # the checkpoint's episode
    timesteps: int = Field(ge=0)
    episodes: int = Field(ge=1)
    seeds: list[int]
    deterministic: bool = True
    seconds: float = Field(ge=0)
    reward: Stat
    length: Stat
    metrics: dict[str, Stat] = Field(default_factory=dict)


class History(Document):
    schema_version: int = HISTORY_SCHEMA_VERSION
    agent: str
    total_episodes: int = Field(default=0, ge=0)
    trainings: list[SessionRecord] = Field(default_factory=list)
    episodes_file: str = "episodes.jsonl"
    episodes_bytes: int = Field(default=0, ge=0)
    evaluations: list[EvaluationRecord] = Field(default_factory=list)


class CheckpointEntry(Document):
    file: str
    episode: int = Field(ge=0)  # episodes completed when it was taken
    partial: bool = False  # taken in the middle of an episode (signal, save_every_steps)
    timesteps: int = Field(ge=0)
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    created: str
    # Off-policy agents: the rows [first, end) of the replay stream its buffer holds; the
    # segments overlapping them (Metadata.replay_segments) are what it is rebuilt from.
    replay_rows: list[int] | None = None


class SegmentEntry(Document):
    file: str
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)

    def needed_by(self, entry: CheckpointEntry) -> bool:
        return entry.replay_rows is not None and self.end > entry.replay_rows[0] and self.start < entry.replay_rows[1]


class SnapshotEntry(Document):
    """A committed snapshot (``train.snapshots``): the trainer's ``snapshot()`` after ``episode``.

    Listed in metadata.json by the checkpoint commit that follows its episode, so a snapshot
    never names an episode that no checkpoint has committed."""

    file: str = Field(pattern=SNAPSHOT_FILE_PATTERN)  # snapshots/snapshot_0004.pt
    episode: int = Field(ge=1)
    timesteps: int = Field(ge=0)
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    created: str
    tensors: list[str] = Field(default_factory=list)  # the names snapshot() returned, in its order

    @model_validator(mode="after")
    def _file_names_its_episode(self) -> SnapshotEntry:
        if int(self.file.rsplit("_", 1)[1].removesuffix(".pt")) != self.episode:
            raise ValueError(f"file {self.file!r} does not name episode {self.episode}")
        return self


class Metadata(Document):
    schema_version: int = METADATA_SCHEMA_VERSION
    agent: str
    algo: str
    policy: str
    env_id: str | None  # None for a trainer agent (no env)
    experiment: str
    last_episode: int = Field(ge=0)
    total_timesteps: int = Field(ge=0)
    device: str
    hyperparams: dict[str, Any]
    versions: dict[str, str]
    # Which run this is (a mirror or a folder may hold another run of the same agent).
    run_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    created: str
    updated: str
    checkpoints: list[CheckpointEntry] = Field(default_factory=list)
    replay_segments: list[SegmentEntry] = Field(default_factory=list)
    adopted_from: AdoptOrigin | None = None  # a run started from an SB3 zip or a trainer's foreign checkpoint
    resume_exactness: ExactnessVerdict | None = None  # the last verify --resume-exactness (absent: never checked)
    snapshots: list[SnapshotEntry] = Field(default_factory=list)  # train.snapshots, oldest first (absent: none)

    @property
    def latest(self) -> CheckpointEntry | None:
        return max(self.checkpoints, key=lambda entry: (entry.timesteps, entry.episode), default=None)


class RunConfig(Document):
    schema_version: int = RUN_CONFIG_SCHEMA_VERSION
    config: dict[str, Any]


Doc = TypeVar("Doc", bound=Document)


def read_document(path: Path, model: type[Doc], current_version: int) -> Doc:
    """Read and validate a JSON document; a damaged one raises :class:`DamagedFileError`."""
    try:
        raw = _parse_json(Path(path))
    except FileNotFoundError:
        raise DamagedFileError(path, "file is missing") from None
    except UnicodeDecodeError:
        raise DamagedFileError(path, "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise DamagedFileError(path, f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except OSError as exc:
        raise DamagedFileError(path, f"cannot be read: {exc.strerror}") from None
    if not isinstance(raw, dict):
        raise DamagedFileError(path, f"expected a JSON object, found {type(raw).__name__}")
    check_schema_version(raw.get("schema_version"), current_version, path)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise DamagedFileError(path, f"{where}: {first['msg']}") from None


def _parse_json(path: Path) -> Any:
    """The file's JSON value. pydantic_core's parser takes half the time of :func:`json.loads`
    on a long run's metadata.json (one entry per checkpoint); it accepts no document that
    json refuses, and one it refuses is read again by json, whose exception (and its line and
    column) is what the caller reports."""
    try:
        return from_json(path.read_bytes())
    except ValueError:
        return json.loads(path.read_text(encoding="utf-8"))


def check_schema_version(version: object, current: int, path: object) -> None:
    """A reader accepts versions 1..current; a newer file needs a newer atheria."""
    if not isinstance(version, int) or version < 1:
        raise DamagedFileError(path, f"missing or invalid schema_version: {version!r}")
    if version > current:
        raise DamagedFileError(path, f"schema_version {version} is newer than this atheria supports ({current}); upgrade atheria")


def write_document(path: Path, document: Document) -> None:
    atomic_write_json(path, document.model_dump(mode="json"))


def encode_episodes(records: list[EpisodeRecord]) -> bytes:
    """JSON Lines, one record per line."""
    lines = (json.dumps(record.model_dump(mode="json"), ensure_ascii=False, allow_nan=False) for record in records)
    return "".join(line + "\n" for line in lines).encode("utf-8")


def read_episodes(path: Path, committed_bytes: int, expected: int | None = None) -> list[EpisodeRecord]:
    """The committed episode records of ``episodes.jsonl`` (its first ``committed_bytes`` bytes)."""
    if committed_bytes == 0:
        return []
    try:
        with open(path, "rb") as handle:
            data = handle.read(committed_bytes)
    except FileNotFoundError:
        raise DamagedFileError(path, "file is missing") from None
    except OSError as exc:
        raise DamagedFileError(path, f"cannot be read: {exc.strerror or exc}") from None
    if len(data) < committed_bytes:
        raise DamagedFileError(path, f"holds {len(data)} bytes, history.json records {committed_bytes}")
    lines = data.splitlines()
    try:
        # One validation call for the whole file: a long run has tens of thousands of lines, and
        # `atheria history` must answer at once. A damaged file takes the line-by-line path below,
        # which names the line.
        records = _episode_list().validate_json(b"[" + b",".join(lines) + b"]")
    except ValidationError:
        records = _episodes_line_by_line(path, lines)
    if expected is not None and len(records) != expected:
        raise DamagedFileError(path, f"holds {len(records)} committed episodes, history.json records {expected}")
    return records


@functools.cache
def _episode_list() -> TypeAdapter[list[EpisodeRecord]]:
    return TypeAdapter(list[EpisodeRecord])


def _episodes_line_by_line(path: Path, lines: list[bytes]) -> list[EpisodeRecord]:
    records = []
    for number, raw in enumerate(lines, start=1):
        line = raw.decode("utf-8", errors="replace")
        try:
            records.append(EpisodeRecord.model_validate_json(line))
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(part) for part in first["loc"])
            raise DamagedFileError(path, f"line {number}: {where + ': ' if where else ''}{first['msg']}") from None
    return records


def read_history(path: Path) -> History:
    return read_document(path, History, HISTORY_SCHEMA_VERSION)


def read_metadata(path: Path) -> Metadata:
    return read_document(path, Metadata, METADATA_SCHEMA_VERSION)


def read_run_config(path: Path) -> RunConfig:
    return read_document(path, RunConfig, RUN_CONFIG_SCHEMA_VERSION)
