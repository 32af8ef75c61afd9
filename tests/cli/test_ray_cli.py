"""`atheria train --backend ray`: bad input exits 2 with one line, before anything is written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from atheria_cli.cli import app
from tests.conftest import tiny_config, write_config

runner = CliRunner()


def test_a_remote_address_without_shared_storage_or_mirror_exits_2(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="the Ray backend needs the 'ray' extra: pip install 'atheria-cli[ray]'")
    path = write_config(tmp_path / "exp.yaml", tiny_config(checkpoints_dir=str(tmp_path / "ck")))
    result = runner.invoke(app, ["train", "--config", str(path), "--backend", "ray", "--address", "ray://127.0.0.1:10001"])
    assert result.exit_code == 2
    assert result.stderr == (
        "atheria: error: --address ray://127.0.0.1:10001 may place jobs on other machines, which must see the run: "
        "put checkpoints_dir on a filesystem every node mounts and set train.shared_storage: true, or set train.mirror.to "
        "to storage every node reaches (the mirror is then the store of record)\n"
    )
    assert not (tmp_path / "ck").exists()


def test_the_ray_backend_without_the_extra_exits_2_naming_it(tmp_path: Path) -> None:
    path = write_config(tmp_path / "exp.yaml", tiny_config(checkpoints_dir=str(tmp_path / "ck")))
    code = "import sys; sys.modules['ray'] = None; from atheria_cli.cli import main; sys.argv[0] = 'atheria'; main()"
    done = subprocess.run(
        [sys.executable, "-c", code, "train", "--config", str(path), "--backend", "ray"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr == "atheria: error: --backend ray needs the 'ray' extra: pip install 'atheria-cli[ray]'\n"
    assert not (tmp_path / "ck").exists()
