"""The JSON sidecar beside every exported policy file, read and checked without torch.

``<file stem>.json`` (schema 2) describes an export: its ``format``, the exported ``file`` with
its ``size`` and ``sha256``, the spaces it was exported for, the source checkpoint, the
verification against ``model.predict`` and the library versions. Readers refuse a missing,
unreadable or newer sidecar and a file whose sha256 differs from the recorded one, each as one
line naming the file (exit 2). Schema 1 (``export-jit`` before formats existed: TorchScript only,
no hash of the exported file) is migrated on read; its file cannot be hash-checked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from atheria_cli.errors import DamagedFileError
from atheria_cli.run.store import file_sha256

SIDECAR_SCHEMA_VERSION = 2
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
    observation_space: dict[str, Any]
    action_space: dict[str, Any]
    input: dict[str, Any]
    observation_normalization: bool
    source_checkpoint: str
    source_sha256: str
    verification: Verification | None
    versions: dict[str, str]
    exported: str
    # Added within schema 2 (absent: none): role ("replay_buffer", "vec_normalize") -> file beside.
    extra_files: dict[str, ExtraFile] = Field(default_factory=dict)


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
