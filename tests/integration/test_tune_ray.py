"""`atheria tune --backend ray` on a real local Ray: the same study as with the local backend."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_config
from tests.integration.helpers import REPOSITORY
from tests.integration.test_tune import STUDY, STUDY_DIR, _episodes, _invoke, _run, _trials

pytest.importorskip("ray", reason="the Ray backend needs the 'ray' extra: pip install 'atheria-cli[ray]'")

pytestmark = pytest.mark.integration


def test_a_study_on_ray_ends_as_the_same_study_on_the_local_backend(tmp_path: Path) -> None:
    config = copy.deepcopy(STUDY)
    config["tune"].update(trials=2, final=None)
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    write_config(local / "exp.yaml", config)
    write_config(on_ray / "exp.yaml", config)
    reference = _invoke(local, "--jobs", "2", "--checkpoints-dir", str(local / "checkpoints"))
    assert reference.exit_code == 0, reference.output
    # In its own process: Ray's workers import tests.envs through PYTHONPATH, and one Ray serves
    # the study's 4 segments (2 trials of 2 evaluations).
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, "-m", "atheria_cli", "tune", "--config", "exp.yaml", "--backend", "ray", "--jobs", "2"],
        cwd=on_ray,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    # One Ray for the whole study, started once; its own lines go to the study's driver log, not
    # to the terminal (only with --verbose).
    assert "Started a local Ray instance" not in done.stderr
    assert (on_ray / STUDY_DIR / "ray-driver.log").read_text(encoding="utf-8").count("Started a local Ray instance") == 1
    assert not (local / STUDY_DIR / "ray-driver.log").exists()
    trials = _trials(on_ray)
    assert trials == _trials(local)  # same parameters, states, values and intermediate values
    assert sorted(trials) == [0, 1] and all(trial["state"] == "COMPLETE" for trial in trials.values())
    for index in trials:
        for seed in (0, 1):
            assert _episodes(_run(on_ray, index, seed)) == _episodes(_run(local, index, seed))
