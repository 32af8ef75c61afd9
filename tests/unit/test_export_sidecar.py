"""The export sidecar: schema, migration, and the checks that refuse a damaged export (torch-free)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from atheria_cli.deploy.sidecar import SIDECAR_SCHEMA_VERSION, read_sidecar
from atheria_cli.errors import DamagedFileError

EXPORTED_BYTES = b"pretend exported policy"


def document(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "schema_version": SIDECAR_SCHEMA_VERSION,
        "format": "exported",
        "file": "model_exported.pt2",
        "size": len(EXPORTED_BYTES),
        "sha256": hashlib.sha256(EXPORTED_BYTES).hexdigest(),
        "device": "cpu",
        "agent": "PPO",
        "algo": "PPO",
        "observation_space": {"type": "Box", "shape": [3], "dtype": "float32", "low": [-1.0] * 3, "high": [1.0] * 3},
        "action_space": {"type": "Discrete", "n": 2, "start": 0},
        "input": {"dtype": "float32", "shape": ["batch", 3]},
        "observation_normalization": False,
        "source_checkpoint": "episode_0002.pt",
        "source_sha256": "0" * 64,
        "verification": {"samples": 256, "max_abs_diff": 0.0, "tolerance": 1e-5},
        "versions": {"torch": "2.13.0", "atheria": "0.1.0"},
        "exported": "2026-11-23T21:00:00+00:00",
    }
    base.update(changes)
    return base


def export_files(folder: Path, sidecar: dict[str, Any] | str | None, data: bytes = EXPORTED_BYTES) -> Path:
    exported = folder / "model_exported.pt2"
    exported.write_bytes(data)
    if sidecar is not None:
        text = sidecar if isinstance(sidecar, str) else json.dumps(sidecar)
        (folder / "model_exported.json").write_text(text, encoding="utf-8")
    return exported


def problem(exported: Path) -> str:
    with pytest.raises(DamagedFileError) as caught:
        read_sidecar(exported)
    assert "\n" not in str(caught.value)
    return str(caught.value)


def test_a_complete_sidecar_reads_back(tmp_path: Path) -> None:
    described = read_sidecar(export_files(tmp_path, document()))
    assert described.format == "exported" and described.sha256 == hashlib.sha256(EXPORTED_BYTES).hexdigest()
    assert described.verification is not None and described.verification.samples == 256


def test_missing_sidecar_names_it(tmp_path: Path) -> None:
    exported = export_files(tmp_path, None)
    assert problem(exported) == (
        f"{tmp_path / 'model_exported.json'}: not found: model_exported.pt2 has no sidecar "
        "(atheria export writes it beside the file); re-export it"
    )


def test_truncated_sidecar_is_damaged(tmp_path: Path) -> None:
    text = json.dumps(document())
    exported = export_files(tmp_path, text[: len(text) // 2])
    assert problem(exported).startswith(f"{tmp_path / 'model_exported.json'}: not a readable JSON sidecar (")
    assert problem(exported).endswith("); re-export model_exported.pt2")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"schema_version": 4}, "schema_version 4 is newer than this atheria reads (3); upgrade atheria"),
        ({"schema_version": "2"}, "not an export sidecar (no integer schema_version)"),
        (
            {"format": "pickle"},
            "does not match the export sidecar schema (format: Input should be 'torchscript', 'exported', 'aoti', 'onnx' or 'sb3')",
        ),
        ({"sha256": "abc"}, "does not match the export sidecar schema (sha256: String should match pattern '^[0-9a-f]{64}$')"),
        ({"agent": None}, "does not match the export sidecar schema (agent: Input should be a valid string)"),
    ],
)
def test_wrong_schema_is_damaged(tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    assert problem(export_files(tmp_path, document(**changes))) == f"{tmp_path / 'model_exported.json'}: {message}"


def test_missing_field_is_damaged(tmp_path: Path) -> None:
    incomplete = document()
    del incomplete["source_sha256"]
    assert problem(export_files(tmp_path, incomplete)) == (
        f"{tmp_path / 'model_exported.json'}: does not match the export sidecar schema (source_sha256: Field required)"
    )


def test_file_changed_after_export_is_refused(tmp_path: Path) -> None:
    exported = export_files(tmp_path, document(), data=EXPORTED_BYTES + b"!")
    assert problem(exported) == (
        f"{exported}: sha256 differs from the one in model_exported.json: the file changed after export; re-export it"
    )


def test_schema_1_torchscript_sidecar_is_migrated(tmp_path: Path) -> None:
    old = document(schema_version=1, format="atheria-jit")
    for key in ("file", "size", "sha256", "device"):
        del old[key]
    described = read_sidecar(export_files(tmp_path, old, data=b"anything: schema 1 recorded no hash"))
    assert (described.schema_version, described.format, described.sha256) == (3, "torchscript", None)


def test_schema_2_sidecar_reads_as_schema_3(tmp_path: Path) -> None:
    described = read_sidecar(export_files(tmp_path, document(schema_version=2)))
    assert (described.schema_version, described.inputs, described.outputs, described.trainer) == (3, [], [], None)
    assert described.observation_space is not None and described.observation_space["type"] == "Box"


def test_a_trainer_module_sidecar_has_no_spaces(tmp_path: Path) -> None:
    module = {
        "algo": "torch",
        "observation_space": None,
        "action_space": None,
        "input": {"dtype": "float32", "shape": [1, 4, 8, 8]},
        "inputs": [{"name": "x", "dtype": "float32", "shape": [1, 4, 8, 8]}],
        "outputs": [{"name": "output", "dtype": "float32", "shape": [1, 4, 8, 8]}],
        "trainer": "package.module:Trainer",
    }
    described = read_sidecar(export_files(tmp_path, document(**module)))
    assert (described.observation_space, described.action_space, described.trainer) == (None, None, "package.module:Trainer")
    assert [(spec.name, spec.shape) for spec in described.inputs + described.outputs] == [
        ("x", [1, 4, 8, 8]),
        ("output", [1, 4, 8, 8]),
    ]
    # A schema-2 reader took every sidecar to have spaces: a module's sidecar names schema 3.
    assert SIDECAR_SCHEMA_VERSION == 3


def test_sidecar_reader_imports_without_torch() -> None:
    code = (
        "import sys, atheria_cli.deploy.sidecar, atheria_cli.deploy.formats\n"
        "print(','.join(sorted(m for m in ('torch', 'stable_baselines3', 'gymnasium', 'numpy') if m in sys.modules)))\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == ""


def test_the_extra_files_a_sidecar_lists_are_checked_too(tmp_path: Path) -> None:
    statistics = b"pretend VecNormalize statistics"
    extra = {
        "vec_normalize": {"file": "model_exported_vecnormalize.pkl", "size": 31, "sha256": hashlib.sha256(statistics).hexdigest()}
    }
    exported = export_files(tmp_path, document(extra_files=extra))
    listed = tmp_path / "model_exported_vecnormalize.pkl"
    assert problem(exported) == f"{listed}: not found: model_exported.json lists it; re-export model_exported.pt2"
    listed.write_bytes(statistics + b"!")
    assert problem(exported) == (
        f"{listed}: sha256 differs from the one in model_exported.json: the file changed after export; re-export it"
    )
    listed.write_bytes(statistics)
    assert read_sidecar(exported).extra_files["vec_normalize"].file == listed.name
    assert read_sidecar(export_files(tmp_path, document())).extra_files == {}  # absent before the sb3 format
