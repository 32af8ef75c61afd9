"""What atheria does for SB3 agents, done for a user's own trainer (the ``torch`` kind): seeds
under ``--jobs``, the Ray backend, the mirror and ``--resume`` from it, forks, the trackers,
``--max-hours`` and ``atheria tune``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from atheria_cli.cli import app
from atheria_cli.run.formats import read_history, read_metadata
from tests.conftest import TINY_AGENTS, tiny_config, write_config
from tests.integration.helpers import REPOSITORY, agent_dir, assert_same_tree, episodes, last_payload, train
from tests.integration.test_jobs import train_jobs

pytestmark = pytest.mark.integration

runner = CliRunner()
METRICS = [{"name": "loss", "goal": "min"}, "lr"]
SHUFFLER = {"trainer": "tests.trainers:Shuffler", "kwargs": {"hidden": 8, "samples": 24}, "metrics": METRICS}


def trainer_config(**overrides: Any) -> dict[str, Any]:
    """One agent ``fit``: the test suite's Shuffler on a tiny dataset."""
    config: dict[str, Any] = {
        "experiment": "test",
        "checkpoints_dir": "checkpoints",
        "seed": 7,
        "device": "cpu",
        "agents": {"fit": dict(SHUFFLER)},
        "train": {"allow_import": True, "threads": 1},
    }
    config.update(overrides)
    return config


def records(root: Path, agent: str = "fit") -> list[dict[str, Any]]:
    return [record.model_dump(exclude={"seconds"}) for record in episodes(root, agent)]


def assert_same_trainer_run(left: Path, right: Path, agent: str = "fit", right_agent: str | None = None) -> None:
    """Every episode record but its wall time, and every tensor of the last checkpoint's state and RNGs."""
    right_agent = right_agent or agent
    assert records(left, agent) == records(right, right_agent)
    first, second = last_payload(left, agent), last_payload(right, right_agent)
    assert first["episode"] == second["episode"] == len(records(left, agent))
    assert_same_tree(first["state"], second["state"], f"{agent}.state")
    assert_same_tree(first["rng"], second["rng"], f"{agent}.rng")


def invoke(folder: Path, *args: str, config: str = "exp.yaml") -> Any:
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        return runner.invoke(app, [*args, "--config", config])


# --- seeds and --jobs ------------------------------------------------------------------------


def test_seeds_of_a_trainer_under_two_jobs_write_the_same_bits_as_one_job(tmp_path: Path) -> None:
    config = trainer_config(seeds=[0, 1])
    sequential, _ = train_jobs(config, tmp_path / "sequential", episodes=3, jobs=1)
    parallel, observer = train_jobs(config, tmp_path / "parallel", episodes=3, jobs=2)
    assert (sequential.exit_code, parallel.exit_code, parallel.failed) == (0, 0, [])
    for seed in (0, 1):
        assert_same_trainer_run(tmp_path / "sequential", tmp_path / "parallel", f"seed_{seed}/fit")
    assert records(tmp_path / "parallel", "seed_0/fit") != records(tmp_path / "parallel", "seed_1/fit")
    assert sorted(agent for agent, _ in observer.episodes) == ["seed_0/fit"] * 3 + ["seed_1/fit"] * 3
    assert observer.warnings == []

    write_config(tmp_path / "exp.yaml", {**config, "checkpoints_dir": str(tmp_path / "parallel")})
    compare = invoke(tmp_path, "compare")
    assert compare.exit_code == 0, compare.output
    title, *_ = compare.stdout.splitlines()
    assert title == "test: loss (min), mean of the last 10 episode(s) per seed; seeds 0, 1"
    assert "best: fit (lowest mean over seeds" in compare.stdout


# --- the mirror ------------------------------------------------------------------------------


@pytest.fixture
def memory() -> Any:
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.store.clear()
    fs.pseudo_dirs[:] = [""]
    yield fs
    fs.store.clear()
    fs.pseudo_dirs[:] = [""]


def test_a_trainer_run_lost_locally_resumes_from_its_mirror_exactly(tmp_path: Path, memory: Any) -> None:
    mirrored = trainer_config()
    mirrored["train"] = {**mirrored["train"], "keep": {"last": 2}, "mirror": {"to": "memory://drive/atheria", "every": 1}}
    train(mirrored, tmp_path / "runs", episodes=3)
    local = agent_dir(tmp_path / "runs", "fit")
    held = sorted(path.removeprefix("/drive/atheria/test/fit/") for path in memory.find("/drive/atheria/test/fit"))
    assert held == sorted(str(path.relative_to(local)) for path in local.rglob("*") if path.is_file())
    assert "episode_0003.pt" in held and "episode_0001.pt" not in held

    shutil.rmtree(tmp_path / "runs")  # the machine is gone
    observer = train(mirrored, tmp_path / "runs", episodes=2, resume=True)
    assert observer.outcome.exit_code == 0
    train(trainer_config(), tmp_path / "one_go", episodes=5)
    assert_same_trainer_run(tmp_path / "one_go", tmp_path / "runs")


# --- forks -----------------------------------------------------------------------------------

FORK_AGENTS: dict[str, dict[str, Any]] = {
    "fit": SHUFFLER,
    "Same": SHUFFLER,
    "Slower": {**SHUFFLER, "kwargs": {**SHUFFLER["kwargs"], "lr": 0.01}},
    "Wider": {**SHUFFLER, "kwargs": {**SHUFFLER["kwargs"], "hidden": 16}},
    "Forgetful": {**SHUFFLER, "trainer": "tests.trainers:ForgetsPsi"},
}
TRAINER_SOURCE = "test/fit/episode_0002.pt"
SB3_SOURCE = "sb3/A2C/episode_0001.pt"


@pytest.fixture
def fork_root(tmp_path: Path) -> Path:
    """fit trained 4 episodes (``exp.yaml``, experiment test), and A2C 1 (``sb3.yaml``, experiment
    sb3), both in ``checkpoints``."""
    write_config(tmp_path / "exp.yaml", trainer_config(agents=FORK_AGENTS))
    write_config(tmp_path / "sb3.yaml", tiny_config({"A2C": TINY_AGENTS["A2C"]}, experiment="sb3"))
    assert invoke(tmp_path, "train", "--agent", "fit", "--episodes", "4").exit_code == 0
    assert invoke(tmp_path, "train", "--episodes", "1", config="sb3.yaml").exit_code == 0
    return tmp_path


def test_a_fork_of_a_trainer_run_continues_from_its_checkpoint_and_names_its_origin(fork_root: Path) -> None:
    checkpoints = fork_root / "checkpoints"
    result = invoke(fork_root, "train", "--from-checkpoint", TRAINER_SOURCE, "--agent", "Same", "--episodes", "2")
    assert result.exit_code == 0, result.output
    # Same class and kwargs: episodes 3-4 of the fork are the source's, bit for bit.
    assert_same_trainer_run(checkpoints, checkpoints, "fit", "Same")
    (session,) = read_history(agent_dir(checkpoints, "Same") / "history.json").trainings
    origin = session.forked_from
    assert origin is not None and (origin.file, origin.episode, session.start_episode) == (TRAINER_SOURCE, 2, 3)
    assert origin.run_id == read_metadata(agent_dir(checkpoints, "fit") / "metadata.json").run_id


def test_a_fork_into_other_kwargs_runs_them_from_the_checkpoint_s_state(fork_root: Path) -> None:
    # The kwargs reach __init__, then load_state_dict restores the state: what the state holds
    # (here the optimizer's learning rate) continues; the fork is a new run that names its origin.
    result = invoke(fork_root, "train", "--from-checkpoint", TRAINER_SOURCE, "--agent", "Slower", "--episodes", "1")
    assert result.exit_code == 0, result.output
    payload = last_payload(fork_root / "checkpoints", "Slower")
    assert payload["episode"] == 3 and payload["state"]["optimizer"]["param_groups"][0]["initial_lr"] == 0.05


@pytest.mark.parametrize(
    ("agent", "source", "config", "message"),
    [
        (
            "Forgetful",
            TRAINER_SOURCE,
            "exp.yaml",
            "atheria: error: Forgetful: trainer 'tests.trainers:ForgetsPsi' differs from the checkpoint's "
            "'tests.trainers:Shuffler'; the training state cannot follow that change (another class cannot load its "
            "state; a fork of a trainer may change its kwargs)",
        ),
        (
            "Wider",
            TRAINER_SOURCE,
            "exp.yaml",
            "atheria: error: Wider: episode_0002.pt cannot be restored into this config (Error(s) in loading state_dict "
            "for Sequential:); fork into an agent whose settings the state fits",
        ),
        (
            "A2C",
            TRAINER_SOURCE,
            "sb3.yaml",
            "atheria: error: A2C: algo A2C differs from the checkpoint's torch; a fork keeps the algorithm",
        ),
        (
            "Same",
            SB3_SOURCE,
            "exp.yaml",
            "atheria: error: Same: algo torch differs from the checkpoint's A2C; a fork keeps the algorithm",
        ),
    ],
)
def test_a_fork_the_trainer_s_state_cannot_follow_is_refused(
    fork_root: Path, agent: str, source: str, config: str, message: str
) -> None:
    before = sorted(str(path.relative_to(fork_root)) for path in fork_root.rglob("*"))
    result = invoke(fork_root, "train", "--from-checkpoint", source, "--agent", agent, "--episodes", "1", config=config)
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(message), line
    assert sorted(str(path.relative_to(fork_root)) for path in fork_root.rglob("*")) == before  # nothing written


def test_a_refused_fork_with_fresh_leaves_the_target_s_own_run_where_it_was(fork_root: Path) -> None:
    # The state was restored after --fresh had moved Wider's own run aside: refused, yet moved.
    assert invoke(fork_root, "train", "--agent", "Wider", "--episodes", "1").exit_code == 0
    before = sorted(str(path.relative_to(fork_root)) for path in fork_root.rglob("*"))
    result = invoke(fork_root, "train", "--from-checkpoint", TRAINER_SOURCE, "--agent", "Wider", "--episodes", "1", "--fresh")
    assert result.exit_code == 2, result.output
    assert "Wider: episode_0002.pt cannot be restored into this config" in result.stderr
    assert sorted(str(path.relative_to(fork_root)) for path in fork_root.rglob("*")) == before  # nothing moved


# --- trackers --------------------------------------------------------------------------------


def _tracked_twice(root: Path, **tracker: Any) -> None:
    """3 episodes, then a resume of 2, tracked."""
    config = trainer_config()
    config["train"] = {**config["train"], **tracker}
    assert train(config, root, episodes=3).outcome.exit_code == 0
    assert train(config, root, episodes=2, resume=True).outcome.exit_code == 0


def _assert_episode_steps(steps: dict[str, list[int]]) -> None:
    for key in ("episode/loss", "episode/lr"):
        assert sorted(steps[key]) == [1, 2, 3, 4, 5], key  # steps = episodes, each once
    for key, logged in steps.items():
        assert len(logged) == len(set(logged)), f"{key}: a step logged twice"


def test_tensorboard_shows_a_trainer_s_episode_metrics_once_per_episode_through_a_resume(tmp_path: Path) -> None:
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    _tracked_twice(tmp_path, tensorboard=True)
    events = accumulator.EventAccumulator(str(agent_dir(tmp_path, "fit") / "tensorboard"), size_guidance={accumulator.SCALARS: 0})
    events.Reload()
    _assert_episode_steps({tag: [event.step for event in events.Scalars(tag)] for tag in events.Tags()[accumulator.SCALARS]})


def test_wandb_offline_logs_a_trainer_s_episode_metrics_once_per_episode_through_a_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("wandb")
    from atheria_cli.tracking.wandb_adapter import read_offline_history

    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_MODE", "offline")
    _tracked_twice(tmp_path / "checkpoints", wandb={"project": "atheria-test", "mode": "offline"})
    run_id = read_metadata(agent_dir(tmp_path / "checkpoints", "fit") / "metadata.json").run_id
    steps: dict[str, list[int]] = {}
    files = sorted(tmp_path.glob(f"wandb/offline-run-*-{run_id}/run-{run_id}.wandb"))
    assert files
    for path in files:
        for step, values in read_offline_history(path):
            for key in values:
                steps.setdefault(key, []).append(step)
    _assert_episode_steps(steps)


def test_mlflow_logs_a_trainer_s_episode_metrics_once_per_episode_through_a_resume(tmp_path: Path) -> None:
    tracking = pytest.importorskip("mlflow.tracking")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _tracked_twice(tmp_path / "checkpoints", mlflow={"tracking_uri": uri})
    client = tracking.MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    _assert_episode_steps(
        {key: [metric.step for metric in client.get_metric_history(run.info.run_id, key)] for key in run.data.metrics}
    )
    assert run.data.params["config.agents.fit.trainer"] == "tests.trainers:Shuffler"


# --- --max-hours -----------------------------------------------------------------------------


def test_max_hours_stops_a_trainer_before_an_episode_that_would_not_end_in_time(tmp_path: Path) -> None:
    config = trainer_config()
    config["agents"]["fit"] = {**SHUFFLER, "kwargs": {"samples": 2400}}  # ~0.3 s an episode
    import torch

    # The first Adam of a process imports torch._dynamo (~2 s on a cold machine): inside the budget,
    # it would leave room for a single episode.
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    budget, began = 3.0, time.monotonic()
    observer = train(config, tmp_path, episodes=10_000, max_hours=budget / 3600)
    elapsed = time.monotonic() - began
    assert observer.outcome.exit_code == 0 and observer.outcome.stopped_by == "time budget"
    done = episodes(tmp_path, "fit")
    assert 2 <= len(done) < 10_000
    assert observer.warnings == [f"fit: stopping before the time budget runs out (after episode {len(done)})"]
    # It stopped because the next episode (estimated as the slowest recent one, + 10%) would not
    # end in time, and not much later than the deadline (an episode may run slower than estimated).
    slowest = max(record.seconds for record in done[-5:])
    assert budget - elapsed < 1.1 * slowest
    assert elapsed <= budget + slowest + 1.0
    metadata = read_metadata(agent_dir(tmp_path, "fit") / "metadata.json")
    assert metadata.latest is not None and metadata.latest.episode == len(done)  # everything committed
    assert read_history(agent_dir(tmp_path, "fit") / "history.json").total_episodes == len(done)


# --- the Ray backend -------------------------------------------------------------------------


def test_a_trainer_from_the_config_s_folder_trains_on_ray_as_it_does_locally(tmp_path: Path) -> None:
    # The user's module sits beside the config, not on PYTHONPATH: `python -m atheria_cli` finds it
    # in the current folder, and so must Ray's workers.
    pytest.importorskip("ray", reason="the Ray backend needs the 'ray' extra: pip install 'atheria-cli[ray]'")
    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copy(REPOSITORY / "tests" / "trainers.py", folder / "usertrainer.py")
    config = trainer_config(agents={"fit": {**SHUFFLER, "trainer": "usertrainer:Shuffler"}})
    write_config(folder / "exp.yaml", config)
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    done = subprocess.run(
        [sys.executable, "-m", "atheria_cli", "train", "--config", "exp.yaml", "--backend", "ray", "--episodes", "3"],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(folder))
        train(config, tmp_path / "local", episodes=3)
    assert_same_trainer_run(tmp_path / "local", folder / "checkpoints")


# --- atheria tune ----------------------------------------------------------------------------

STUDY_DIR = Path("checkpoints/test/tune/lr")


def study_config() -> dict[str, Any]:
    """3 random trials of fit's ``lr`` (``kwargs.lr``), 2 episodes each, scored by the loss of their evaluations."""
    config = trainer_config()
    config["train"] = {**config["train"], "eval": {"every": 1, "episodes": 1, "seed": 1000}}
    config["tune"] = {
        "study": "lr",
        "agent": "fit",
        "trials": 3,
        "episodes": 2,
        "seeds": [0],
        "objective": {"metric": "loss", "window": 1},
        "sampler": {"name": "random", "seed": 0},
        "pruner": {"name": "none"},
        "space": {"kwargs.lr": {"float": [0.01, 0.1], "log": True}},
    }
    return config


def test_a_trial_of_a_trainer_s_study_trains_the_sampled_kwargs(tmp_path: Path) -> None:
    from atheria_cli.config import ExperimentConfig
    from atheria_cli.tune.layout import StudyLayout
    from atheria_cli.tune.trials import trial_config

    config = ExperimentConfig.model_validate({**study_config(), "checkpoints_dir": str(tmp_path)})
    trial = trial_config(config, StudyLayout.of(tmp_path, "test", "lr"), 1, {"kwargs.lr": 0.02})
    assert trial.agents["fit"].kwargs == {"hidden": 8, "samples": 24, "lr": 0.02}
    assert trial.agents["fit"].trainer == "tests.trainers:Shuffler" and trial.agents["fit"].hyperparams == {}


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (
            "lr",
            "tune.space.lr: agents.fit is a trainer (tests.trainers:Shuffler): its settings are kwargs; name the path kwargs.lr",
        ),
        (
            "kwargs.lrr",
            "tune.space.kwargs.lrr: tests.trainers:Shuffler does not accept 'lrr' (did you mean 'lr'? accepted: batch, "
            "hidden, lr, samples)",
        ),
    ],
)
def test_a_trainer_s_tune_space_names_its_kwargs(tmp_path: Path, path: str, message: str) -> None:
    config = study_config()
    config["tune"]["space"] = {path: {"float": [0.01, 0.1], "log": True}}
    write_config(tmp_path / "exp.yaml", config)
    result = invoke(tmp_path, "tune")
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [f"atheria: error: {message}"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["exp.yaml"]  # nothing written


def test_a_study_of_a_trainer_without_evaluate_is_refused(tmp_path: Path) -> None:
    config = study_config()
    config["agents"]["fit"].update(trainer="tests.trainers:Minimal", kwargs={})
    write_config(tmp_path / "exp.yaml", config)
    result = invoke(tmp_path, "tune")
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        "atheria: error: tune.agent: fit: a study's objective reads evaluations (train.eval), and tests.trainers:Minimal "
        "has no evaluate(episodes, seed) method to evaluate it with (docs/trainers.md)"
    ]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["exp.yaml"]  # nothing written


def test_a_random_study_over_a_trainer_s_kwargs_scores_its_main_metric(tmp_path: Path) -> None:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from atheria_cli.run.layout import AgentLayout
    from atheria_cli.run.store import AgentStore

    write_config(tmp_path / "exp.yaml", study_config())
    result = invoke(tmp_path, "tune")
    assert result.exit_code == 0, result.output
    storage = JournalStorage(JournalFileBackend(str(tmp_path / STUDY_DIR / "journal.log")))
    trials = optuna.load_study(study_name="lr", storage=storage).get_trials()
    assert len(trials) == 3 and all(trial.state.name == "COMPLETE" for trial in trials)
    for trial in trials:
        store = AgentStore(AgentLayout.of(tmp_path / STUDY_DIR / f"trial_{trial.user_attrs['index']:04d}" / "seed_0", "fit"))
        assert store.metadata().hyperparams["lr"] == trial.params["kwargs.lr"]  # the trainer's kwargs
        last = store.history().evaluations[-1]
        assert trial.value == last.metrics["loss"].mean  # the main metric, window 1
