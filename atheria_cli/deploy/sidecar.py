"""The JSON sidecar beside every exported policy file, read and checked without torch.

``<file stem>.json`` (schema 3) describes an export: its ``format``, the exported ``file`` with
its ``size`` and ``sha256``, what goes in and out (a policy's spaces; every input and output),
the source checkpoint, the verification and the library versions. Readers refuse a missing,
unreadable or newer sidecar and a file whose sha256 differs from the recorded one, each as one
line naming the file (exit 2). Schema 3 lets a module exported from a user's trainer (no env)
leave ``observation_space`` and ``action_space`` null; schema 2 differs in nothing else and is
read as it is. Schema 1 (``export-jit`` before formats existed: TorchScript only, no hash of the
exported file) is migrated on read; its file cannot be hash-checked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from atheria_cli.errors import DamagedFileError
from atheria_cli.run.store import file_sha256

SIDECAR_SCHEMA_VERSION = 3
FormatName = Literal["torchscript", "exported", "aoti", "onnx", "sb3"]
FORMAT_NAMES: tuple[str, ...] = ("torchscript", "exported", "aoti", "onnx", "sb3")


class Verification(BaseModel):
    model_config = ConfigDict(extra="allow")
    samples: int = Field(ge=1)
    max_abs_diff: float
    tolerance: float


class ExtraFile(BaseModel):
    """A file written with the export, beside it (the sb3 format's replay buffer and VecNormalize)."""

    model_config = ConfigDict(extra="allow")
    file: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class TensorSpec(BaseModel):
    """One input or output of the exported module: its name, dtype and shape (``"batch"`` for a
    dynamic batch dimension)."""

    model_config = ConfigDict(extra="allow")
    name: str
    dtype: str
    shape: list[int | str]


class ExportSidecar(BaseModel):
    # Unknown keys are kept: a sidecar from a newer minor version stays readable.
    model_config = ConfigDict(extra="allow", defer_build=True)
    schema_version: int = SIDECAR_SCHEMA_VERSION
    format: FormatName
    file: str | None  # None only for migrated schema-1 sidecars
    size: int | None = Field(ge=0)
    sha256: str | None = Field(pattern=r"^[0-9a-f]{64}$")
    device: str = "cpu"
    agent: str
    algo: str
    # None (schema 3): a trainer's module, which acts in no env.
    observation_space: dict[str, Any] | None
    action_space: dict[str, Any] | None
    input: dict[str, Any]  # the first input's dtype and shape (every input: ``inputs``)
    observation_normalization: bool
    source_checkpoint: str
    source_sha256: str
    verification: Verification | None
    versions: dict[str, str]
    exported: str
    # Added within schema 2 (absent: none): role ("replay_buffer", "vec_normalize") -> file beside.
    extra_files: dict[str, ExtraFile] = Field(default_factory=dict)
    # Added in schema 3 (absent in older sidecars: not recorded).
    inputs: list[TensorSpec] = Field(default_factory=list)
    outputs: list[TensorSpec] = Field(default_factory=list)
    trainer: str | None = None  # the user's trainer class ("package.module:Class") a module came from


def sidecar_path(exported_file: Path) -> Path:
    return exported_file.with_suffix(".json")


def read_sidecar(exported_file: Path) -> ExportSidecar:
    """The validated sidecar of ``exported_file``; the file itself must match its recorded sha256."""
    side = sidecar_path(exported_file)
    if not side.is_file():
        raise DamagedFileError(
            side, f"not found: {exported_file.name} has no sidecar (atheria export writes it beside the file); re-export it"
        )
    try:
        document = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DamagedFileError(
            side, f"not a readable JSON sidecar ({_first_line(exc)}); re-export {exported_file.name}"
        ) from None
    described = parse_sidecar(document, side)
    check_file_matches(exported_file, described)
    return described


def parse_sidecar(document: Any, side: Path) -> ExportSidecar:
    if not isinstance(document, dict):
        raise DamagedFileError(side, "not an export sidecar (expected a JSON object)")
    version = document.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise DamagedFileError(side, "not an export sidecar (no integer schema_version)")
    if version > SIDECAR_SCHEMA_VERSION:
        raise DamagedFileError(
            side, f"schema_version {version} is newer than this atheria reads ({SIDECAR_SCHEMA_VERSION}); upgrade atheria"
        )
    if version == 1:
        document = _migrate_v1(document)
    elif version == 2:
        document = {**document, "schema_version": SIDECAR_SCHEMA_VERSION}  # schema 3 only adds what it may omit
    try:
        return ExportSidecar.model_validate(document)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "document"
        raise DamagedFileError(side, f"does not match the export sidecar schema ({where}: {error['msg']})") from None


def check_file_matches(exported_file: Path, described: ExportSidecar) -> None:
    """The exported file and every extra file beside it hash as the sidecar recorded."""
    if described.sha256 is None:
        return  # schema 1 recorded no hash of the exported file
    expected = [(exported_file, described.sha256)]
    expected += [(exported_file.with_name(extra.file), extra.sha256) for extra in described.extra_files.values()]
    for path, sha256 in expected:
        if not path.is_file():
            raise DamagedFileError(
                path, f"not found: {sidecar_path(exported_file).name} lists it; re-export {exported_file.name}"
            )
        if file_sha256(path) != sha256:
            raise DamagedFileError(
                path,
                f"sha256 differs from the one in {sidecar_path(exported_file).name}: the file changed after export; re-export it",
            )


def _migrate_v1(document: dict[str, Any]) -> dict[str, Any]:
    if document.get("format") != "atheria-jit":
        return document  # let validation name the problem
    return {
        **document,
        "schema_version": SIDECAR_SCHEMA_VERSION,
        "format": "torchscript",
        "file": None,
        "size": None,
        "sha256": None,
    }


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
