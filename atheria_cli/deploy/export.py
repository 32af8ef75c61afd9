"""Export of a trained agent in one of several formats: an SB3 policy (raw observations in,
environment actions out) or the module a user's trainer returns from ``export_module``.

What is exported is the checkpoint's :class:`~atheria_cli.trainers.base.Deployable`, which its
trainer kind (named in the checkpoint's header) provides, as an
:class:`~atheria_cli.trainers.base.ExportSubject`. For SB3 (:mod:`atheria_cli.trainers.sb3.deploy`)
that is a module that does what ``model.predict(obs, deterministic=True)`` does *plus* what users
forget when they trace SB3 networks by hand (VecNormalize's observation normalization, the action
post-processing), checked against the policy's own deterministic actions on observations sampled
from the space and from real resets. For a user's trainer (:mod:`atheria_cli.trainers.custom_deploy`)
it is its ``export_module()``, checked against the eager module on inputs sampled around its
example inputs. Each format (``deploy/formats/``: torchscript, exported, aoti, onnx) captures the
module; a *model format* (``sb3``: SB3's own zip) is written by the trainer kind from its model.
Either way the result is loaded back and verified before anything is written.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from gymnasium import spaces

from atheria_cli import __version__
from atheria_cli.config import ExperimentConfig
from atheria_cli.deploy.formats import DEFAULT_FILES, MODEL_FORMATS, Program, export_format, loadable_format, model_format
from atheria_cli.deploy.sidecar import SIDECAR_SCHEMA_VERSION, sidecar_path
from atheria_cli.errors import ExportError, UsageError
from atheria_cli.run.atomic import atomic_write_bytes, atomic_write_json

if TYPE_CHECKING:
    from atheria_cli.trainers.base import Deployable, ExportSubject

TOLERANCE = 1e-5


@dataclass(frozen=True)
class Verification:
    """How an export compared with what it must reproduce.

    :param samples: how many samples it was run on (observations, or sampled input sets)
    :param counted: what a sample is, for messages ("observations", "sampled inputs")
    """

    samples: int
    max_abs_diff: float
    mismatches: int
    counted: str = "observations"


def verify(program: Program, subject: ExportSubject) -> Verification:
    """Run the export on every sample of ``subject`` and compare with its expected outputs:
    equal where ``subject.exact``, else within :data:`TOLERANCE` (NaN where both are NaN)."""
    largest, mismatches = 0.0, 0
    for inputs, expected in zip(subject.samples, subject.expected, strict=True):
        outputs = program(*inputs)
        if len(outputs) != len(expected):
            largest, mismatches = float("inf"), mismatches + 1
            continue
        for output, wanted in zip(outputs, expected, strict=True):
            difference = _difference(np.asarray(output), np.asarray(wanted))
            largest = max(largest, difference)
            mismatches += int(difference != 0) if subject.exact else int(difference > TOLERANCE)
    return Verification(samples=subject.sample_count, max_abs_diff=largest, mismatches=mismatches, counted=subject.sample_noun)


def _difference(output: np.ndarray, expected: np.ndarray) -> float:
    """The largest absolute difference; infinite when the shapes cannot match or one side is NaN alone."""
    if output.size != expected.size:
        return float("inf")
    output = output.reshape(expected.shape)  # a policy may return (n,) for (n, 1) actions
    wide = np.complex128 if np.iscomplexobj(output) or np.iscomplexobj(expected) else np.float64
    left, right = output.astype(wide), expected.astype(wide)
    if not left.size:
        return 0.0
    with np.errstate(invalid="ignore"):
        gap = np.abs(left - right)
    same = (left == right) | (np.isnan(left) & np.isnan(right))  # inf == inf, NaN where both are NaN
    gap = np.where(same, 0.0, gap)
    return float(np.max(np.where(np.isnan(gap), np.inf, gap)))


def space_description(space: spaces.Space) -> dict[str, Any]:
    """A JSON description of a space, compared to detect a checkpoint from another env."""
    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": str(space.dtype),
            "low": _jsonable(space.low),
            "high": _jsonable(space.high),
        }
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    return {"type": type(space).__name__, "repr": repr(space)}


def _jsonable(array: np.ndarray) -> list[Any]:
    return [
        value if np.isfinite(value) else ("inf" if value > 0 else "-inf")
        for value in np.asarray(array, dtype=np.float64).ravel().tolist()
    ]


def sidecar(
    deployed: Deployable,
    subject: ExportSubject,
    *,
    format_name: str,
    agent: str,
    file: Path,
    data: bytes,
    checkpoint: Path,
    checkpoint_sha256: str,
    verification: Verification | None,
    versions: dict[str, str],
    extra_files: dict[str, tuple[Path, bytes]] | None = None,
) -> dict[str, Any]:
    """The sidecar document (layout and reader: ``deploy/sidecar.py``, docs/file-layout.md);
    ``subject.description`` says what goes in and out."""
    return {
        "schema_version": SIDECAR_SCHEMA_VERSION,
        "format": format_name,
        "file": file.name,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "device": "cpu",
        "agent": agent,
        "algo": deployed.algo,
        **subject.description,
        "source_checkpoint": checkpoint.name,
        "source_sha256": checkpoint_sha256,
        "verification": None
        if verification is None
        else {
            "samples": verification.samples,
            "max_abs_diff": verification.max_abs_diff,
            "tolerance": TOLERANCE,
        },
        "versions": {**versions, "atheria": __version__},
        "exported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "extra_files": {
            role: {"file": path.name, "size": len(content), "sha256": hashlib.sha256(content).hexdigest()}
            for role, (path, content) in (extra_files or {}).items()
        },
    }


def write_export(
    path: Path, data: bytes, description: dict[str, Any], extra_files: dict[str, tuple[Path, bytes]] | None = None
) -> Path:
    """The exported file and its extra files, then its sidecar ``<stem>.json`` beside it (last:
    it vouches for the others); returns the sidecar path."""
    atomic_write_bytes(path, data)
    for extra, content in (extra_files or {}).values():
        atomic_write_bytes(extra, content)
    side = sidecar_path(path)
    atomic_write_json(side, description)
    return side


@dataclass(frozen=True)
class ExportResult:
    agent: str
    format: str
    path: Path
    sidecar: Path
    checkpoint: str
    verification: Verification | None


def export_agent(
    deployed: Deployable,
    *,
    format_name: str,
    agent: str,
    checkpoint: Path,
    checkpoint_sha256: str,
    output: Path,
    seed: int,
    check: bool,
    versions: dict[str, str],
    with_replay: bool = False,
) -> ExportResult:
    """Export, load the result back and verify it (unless told not to), then write it and its sidecar.

    The format writes into a temporary folder; nothing is written beside the run when verification
    fails. The caller has asked :meth:`Deployable.check_export` first.
    """
    loadable_format(format_name).require()
    subject = deployed.export_subject(seed)
    with tempfile.TemporaryDirectory(prefix="atheria-export-") as staging:
        staged = Path(staging) / output.name
        program, extras = _build(deployed, subject, format_name, staged, agent, with_replay=with_replay)
        verification = verify(program(), subject) if check else None
        data = staged.read_bytes()
        extra_files = {role: (output.with_name(path.name), path.read_bytes()) for role, path in extras.items()}
    if verification is not None and verification.mismatches:
        differ = "actions differ" if subject.what == "policy" else "outputs differ"
        unit = differ if subject.exact else f"max |difference| {verification.max_abs_diff:.3g} > {TOLERANCE}"
        raise ExportError(
            f"{agent}: the exported {format_name} {subject.what} disagrees with {subject.reference} on "
            f"{verification.samples} {verification.counted} ({unit}); nothing written"
        )
    description = sidecar(
        deployed,
        subject,
        format_name=format_name,
        agent=agent,
        file=output,
        data=data,
        checkpoint=checkpoint,
        checkpoint_sha256=checkpoint_sha256,
        verification=verification,
        versions=versions,
        extra_files=extra_files,
    )
    side = write_export(output, data, description, extra_files)
    if format_name in MODEL_FORMATS:
        # An extra file of an earlier export that this one did not write (--with-replay then
        # without) belongs to another checkpoint: the sidecar no longer vouches for it.
        for role, stale in model_format(format_name).extra_files(output).items():
            if role not in extra_files:
                stale.unlink(missing_ok=True)
    return ExportResult(
        agent=agent, format=format_name, path=output, sidecar=side, checkpoint=checkpoint.name, verification=verification
    )


def _build(
    deployed: Deployable, subject: ExportSubject, format_name: str, staged: Path, agent: str, *, with_replay: bool
) -> tuple[Callable[[], Program], dict[str, Path]]:
    """Write the format to ``staged``: a loader of what was written, and the extra files written beside."""
    if format_name in MODEL_FORMATS:
        extras = deployed.write_model_format(format_name, staged, with_replay=with_replay)

        def load_model_format() -> Program:
            policy = deployed.model_format_policy(format_name, staged)
            return lambda obs: (policy(obs),)

        return load_model_format, extras
    exporter = export_format(format_name)
    try:
        exporter.build(subject.capture, staged)
    except Exception as exc:  # torch.export, the tracer and the ONNX exporter raise many types for a module they cannot capture
        text = str(exc).strip()
        reason = text.splitlines()[0] if text else type(exc).__name__
        raise ExportError(
            f"{agent}: the {format_name} format cannot capture the {subject.what} ({type(exc).__name__}: {reason}); nothing written"
        ) from exc
    return (lambda: exporter.load(staged)), {}


def export_experiment(
    config: ExperimentConfig,
    agents: list[str],
    checkpoint_spec: str,
    output: Path | None,
    check: bool,
    formats: list[str],
    with_replay: bool = False,
) -> list[ExportResult]:
    """``atheria export`` / ``export-jit``: export each agent's selected checkpoint (all agents when none named).

    Each format in ``formats`` is written: to ``output`` for the first, beside it (``<stem>_<format>``)
    for the others, or to the format's default file in the agent's folder.
    """
    from atheria_cli.deploy.loading import read_trained_checkpoint
    from atheria_cli.deploy.selection import select_checkpoint
    from atheria_cli.run.layout import AgentLayout
    from atheria_cli.run.store import AgentStore
    from atheria_cli.training.planning import select_agents
    from atheria_cli.training.session import library_versions

    selected = select_agents(config, agents)
    if output is not None and len(selected) > 1:
        raise UsageError("--output names one file: give exactly one AGENT with it")
    for name in formats:
        loadable_format(name).require()
    if with_replay and formats != ["sb3"]:
        raise UsageError("--with-replay writes SB3's replay-buffer file: only with --format sb3")
    if output is not None and not output.parent.is_dir():
        raise UsageError(f"--output: folder {output.parent} does not exist")
    if with_replay:
        _check_replay_buffers(config, selected)
    plans = []
    for agent in selected:
        store = AgentStore(AgentLayout.of(config.run_dir, agent))
        entry = select_checkpoint(store, agent, checkpoint_spec, config)
        trained = read_trained_checkpoint(store.layout.root / entry.file)
        trained.require(agent, "export")
        deployed = trained.deployable()
        for name in formats:  # every agent's checks before the first file is written
            deployed.check_export(config, agent, entry.file, name)
        plans.append((agent, store, entry, trained, deployed))
    results = []
    for agent, store, entry, trained, deployed in plans:
        path = store.layout.root / entry.file
        for index, name in enumerate(formats):
            target = _target(store.layout.root, output, name, first=index == 0)
            results.append(
                export_agent(
                    deployed,
                    format_name=name,
                    agent=agent,
                    checkpoint=path,
                    checkpoint_sha256=entry.sha256,
                    output=target,
                    seed=config.seed,
                    check=check,
                    versions=library_versions(trained.kind.name),
                    with_replay=with_replay,
                )
            )
    return results


def _check_replay_buffers(config: ExperimentConfig, agents: list[str]) -> None:
    """--with-replay: every agent must have a replay buffer (checked before any agent is exported)."""
    from atheria_cli.trainers import kind_of

    for agent in agents:
        if not (kind := kind_of(config, agent)).has_replay_buffer(config, agent):
            raise UsageError(f"--with-replay: {agent} ({config.algo_of(agent)}) {kind.no_replay_buffer}")


def _target(agent_dir: Path, output: Path | None, format_name: str, *, first: bool) -> Path:
    if output is None:
        return agent_dir / DEFAULT_FILES[format_name]
    if first:
        return output
    suffix = Path(DEFAULT_FILES[format_name]).suffix
    return output.with_name(f"{output.stem.removesuffix('_jit')}_{format_name}{suffix}")


def check_same_spaces(
    agent: str, source: str, trained: tuple[spaces.Space, spaces.Space], env: tuple[spaces.Space, spaces.Space]
) -> None:
    """A policy trained on another environment cannot act in this one: ``trained`` and ``env`` are
    (observation space, action space) pairs."""
    for kind, theirs, ours in (("observation", trained[0], env[0]), ("action", trained[1], env[1])):
        if space_description(theirs) != space_description(ours):
            raise UsageError(f"{agent}: {source} was trained with {kind} space {theirs}, but the config's env has {ours}")
