"""Statistics over seeds (IQM, bootstrap intervals, probability of improvement), the multi-seed
compare report, seeds in the config and on the command line, and the job helpers. Torch-free."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from atheria_cli.config import ExperimentConfig, load_config
from atheria_cli.errors import ConfigError, UsageError
from atheria_cli.reports.compare import compare_report
from atheria_cli.reports.seeds import seeds_compare_report
from atheria_cli.reports.statistics import bootstrap_interval, iqm, probability_of_improvement, sample_std, seed_statistics
from atheria_cli.run.formats import write_document
from atheria_cli.run.seeds import config_for_seed, parse_seeds, seed_config
from atheria_cli.training.threads import devices_for_jobs, threads_per_job
from tests.conftest import write_config
from tests.unit.test_evaluations import evaluation
from tests.unit.test_reports import commit_sessions, experiment, record


def test_iqm_drops_a_quarter_at_each_end() -> None:
    assert iqm([5.0, 1.0, 3.0, 2.0, 4.0]) == 3.0  # n=5: drops 1 each end -> mean(2, 3, 4)
    assert iqm([1.0, 2.0, 3.0, 100.0]) == 2.5  # n=4: mean(2, 3)
    assert iqm([1.0, 2.0, 9.0]) == 4.0  # n=3: int(0.75) = 0, nothing dropped
    assert iqm([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 80.0]) == 4.5  # n=8: drops 2 each end -> mean(3..6)


def test_sample_std_and_standard_error() -> None:
    values = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]  # mean 5, squared deviations sum to 32
    assert sample_std(values) == pytest.approx(math.sqrt(32 / 7))
    stats = seed_statistics(values)
    assert (stats.seeds, stats.mean, stats.minimum, stats.maximum) == (8, 5.0, 2.0, 9.0)
    assert stats.sem == pytest.approx(math.sqrt(32 / 7) / math.sqrt(8))
    assert sample_std([3.0]) is None


def test_bootstrap_interval_is_reproducible_and_hand_checkable() -> None:
    # Two seeds: a resample's mean is 0, 5 or 10 with probability 1/4, 1/2, 1/4, so the 2.5th
    # and 97.5th percentiles of 2000 resamples are 0 and 10.
    assert bootstrap_interval([0.0, 10.0], "mean") == (0.0, 10.0)
    assert bootstrap_interval([3.0, 3.0, 3.0], "iqm") == (3.0, 3.0)
    assert bootstrap_interval([3.0], "mean") is None
    values = [1.0, 2.0, 3.0, 4.0, 10.0]
    low, high = bootstrap_interval(values, "mean")
    assert (low, high) == bootstrap_interval(values, "mean")  # a seeded generator: same answer every time
    assert 1.0 <= low < 4.0 < high <= 10.0
    iqm_low, iqm_high = bootstrap_interval(values, "iqm")
    assert 1.0 <= iqm_low <= iqm([1.0, 2.0, 3.0, 4.0, 10.0]) <= iqm_high <= 10.0


def test_probability_of_improvement_counts_ties_as_half() -> None:
    # 3 beats 2, loses to 4; 4 beats 2, ties 4; 5 beats both: (1 + 0 + 1 + .5 + 1 + 1) / 6
    assert probability_of_improvement([3.0, 4.0, 5.0], [2.0, 4.0], "max") == pytest.approx(4.5 / 6)
    assert probability_of_improvement([3.0, 4.0, 5.0], [2.0, 4.0], "min") == pytest.approx(1.5 / 6)
    assert probability_of_improvement([1.0], [1.0], "max") == 0.5


def test_compare_over_seeds_scores_each_seed_and_compares_agents(tmp_path: Path) -> None:
    config = experiment(tmp_path, seeds=[0, 1, 2], baseline={"co2_kg": 100})
    # Score = mean co2 of the last 2 episodes; PPO's seeds score 60, 70, 80, SAC's 90, 95, 100.
    for seed, (ppo, sac) in enumerate([(60.0, 90.0), (70.0, 95.0), (80.0, 100.0)]):
        replicate = seed_config(config, seed)
        commit_sessions(replicate, "PPO", [[record(1, -1.0, 500.0), record(2, -1.0, ppo - 5), record(3, -1.0, ppo + 5)]])
        commit_sessions(replicate, "SAC", [[record(1, -1.0, sac), record(2, -1.0, sac), record(3, -1.0, sac)]])
    report = seeds_compare_report(config, window=2)
    assert report.seeds == [0, 1, 2] and report.few_seeds
    ppo, sac = report.agents
    assert [seed.score for seed in ppo.seeds] == [60.0, 70.0, 80.0]
    assert ppo.statistics is not None and sac.statistics is not None
    assert (ppo.statistics.mean, ppo.statistics.std, ppo.statistics.iqm) == (70.0, 10.0, 70.0)
    assert ppo.statistics.sem == pytest.approx(10.0 / math.sqrt(3))
    assert (ppo.improvement, ppo.verdict) == (30.0, "better")  # co2 goal min: 100 -> 70
    assert report.best_agent == "PPO"  # lower co2
    assert sac.beats_best == 0.0 and ppo.beats_best == 0.5  # every SAC seed emits more than every PPO seed


def test_compare_over_seeds_breaks_a_tie_like_the_single_run_compare(tmp_path: Path) -> None:
    # Equal means over seeds: the later agent in config order is best, the rule of
    # atheria_cli.reports.compare.best_agent and of episodes (atheria_cli.metrics.rank).
    config = experiment(tmp_path, seeds=[0, 1])
    for seed in (0, 1):
        replicate = seed_config(config, seed)
        for agent in ("PPO", "SAC"):
            commit_sessions(replicate, agent, [[record(1, -1.0, 50.0 + seed)]])
    report = seeds_compare_report(config, window=1)
    assert [row.agent for row in report.agents] == ["PPO", "SAC"]
    assert report.best_agent == "SAC"
    assert compare_report(seed_config(config, 0)).best_agent == "SAC"


def test_compare_over_seeds_scores_a_seed_by_its_evaluations_like_the_single_run_compare(tmp_path: Path) -> None:
    # Seed 0 was evaluated at episodes 2 and 3 (co2 means 10 and 30, 2 episodes each); seed 1
    # never: its last 2 training episodes score it (co2 60).
    config = experiment(tmp_path, seeds=[0, 1], baseline={"co2_kg": 100})
    episodes = [record(1, -1.0, 500.0), record(2, -1.0, 55.0), record(3, -1.0, 65.0)]
    evaluated = commit_sessions(seed_config(config, 0), "PPO", [episodes])
    history = evaluated.history()
    history.evaluations = [evaluation(2, 10.0), evaluation(3, 30.0)]
    write_document(evaluated.layout.history, history)
    commit_sessions(seed_config(config, 1), "PPO", [episodes])
    for eval_window, evaluation_score in ((1, 30.0), (2, 20.0)):
        report = seeds_compare_report(config, window=2, eval_window=eval_window)
        ppo = report.agents[0]
        assert [(seed.score, seed.source, seed.evaluations) for seed in ppo.seeds] == [
            (evaluation_score, "evaluation", eval_window),
            (60.0, "episodes", 0),
        ]
        assert [seed.episodes for seed in ppo.seeds] == [2 * eval_window, 2]
        assert report.eval_window == eval_window
        for seed in ppo.seeds:
            single = compare_report(seed_config(config, seed.seed), window=2, eval_window=eval_window).agents[0]
            assert (single.mean, single.source, single.episodes) == (seed.score, seed.source, seed.episodes)
    with pytest.raises(UsageError, match=r"^--eval-window must be at least 1 \(got 0\)$"):
        seeds_compare_report(config, eval_window=0)


def test_seeds_in_the_config_and_on_the_command_line(tmp_path: Path) -> None:
    assert parse_seeds("0-4") == (0, 1, 2, 3, 4)
    assert parse_seeds("0,3") == (0, 3)
    assert parse_seeds("1,5-6") == (1, 5, 6)
    for bad in ("4-0", "a", "1,1", "-1", ""):
        with pytest.raises(UsageError):
            parse_seeds(bad)
    base = {"env": {"id": "Pendulum-v1"}, "agents": {"PPO": {}}}
    path = write_config(tmp_path / "exp.yaml", {**base, "seeds": [2, 0]})
    config = load_config(path)
    assert config.seeds == (0, 2)
    assert seed_config(config, 2).run_dir == Path("checkpoints/default/seed_2") and seed_config(config, 2).seed == 2
    with pytest.raises(ConfigError, match="agents.PPO.seed cannot be combined with seeds"):
        load_config(write_config(tmp_path / "bad.yaml", {**base, "seeds": [0], "agents": {"PPO": {"seed": 1}}}))
    with pytest.raises(ConfigError, match="seeds must be distinct"):
        load_config(write_config(tmp_path / "dup.yaml", {**base, "seeds": [0, 0]}))


def test_a_multi_seed_run_needs_its_seed_named(tmp_path: Path) -> None:
    document = {"env": {"id": "Pendulum-v1"}, "agents": {"PPO": {}}, "seeds": [0, 3], "checkpoints_dir": str(tmp_path)}
    config = ExperimentConfig.model_validate(document)
    with pytest.raises(UsageError, match=r"^default has several seeds \(0, 3\): pick one with --seed S$"):
        config_for_seed(config, None)
    with pytest.raises(UsageError, match=r"^--seed 1: default has no run for seed 1; its seeds are 0, 3$"):
        config_for_seed(config, 1)
    assert config_for_seed(config, 3).experiment == "default/seed_3"
    single = config.model_copy(update={"seeds": None})
    assert config_for_seed(single, None) is single


def test_threads_and_devices_per_job() -> None:
    assert threads_per_job(None, 1, cores=8) is None  # sequential: torch's own default
    assert threads_per_job(None, 3, cores=8) == 2
    assert threads_per_job(None, 16, cores=8) == 1
    assert threads_per_job(4, 3, cores=8) == 4  # train.threads wins
    assert devices_for_jobs("cuda", 5, gpus=2) == ["cuda:0", "cuda:1", "cuda:0", "cuda:1", "cuda:0"]
    assert devices_for_jobs("cuda", 2, gpus=1) == ["cuda", "cuda"]
    assert devices_for_jobs("cuda:1", 2, gpus=4) == ["cuda:1", "cuda:1"]
    assert devices_for_jobs("cpu", 3, gpus=2) == ["cpu"] * 3


def test_replay_memory_estimate_refuses_what_does_not_fit() -> None:
    from gymnasium import spaces

    from atheria_cli.training.memory import BufferEstimate, buffer_estimate, check_fits, transition_bytes

    box = spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32)
    action = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
    assert transition_bytes(box, action, optimize_memory_usage=False) == 2 * 12 + 4 + 12
    assert transition_bytes(box, action, optimize_memory_usage=True) == 12 + 4 + 12
    assert transition_bytes(spaces.Box(0, 255, shape=(84, 84), dtype=np.uint8), spaces.Discrete(4), False) == 2 * 7056 + 8 + 12
    agents = {"SAC": {"hyperparams": {"buffer_size": 1000}}, "PPO": {}}
    config = ExperimentConfig.model_validate({"env": {"id": "Pendulum-v1"}, "agents": agents})
    assert buffer_estimate(config, "SAC", box, action, default_size=1_000_000) == BufferEstimate("SAC", 1000, 40_000)
    assert buffer_estimate(config, "PPO", box, action, default_size=None) is None
    estimates = [BufferEstimate("SAC", 1000, 4 * 10**9), BufferEstimate("TD3", 1000, 3 * 10**9), BufferEstimate("DQN", 10, 10**9)]
    check_fits(estimates, jobs=2, available=7 * 10**9)  # the two largest, 7 GB, just fit
    with pytest.raises(UsageError) as refused:
        check_fits(estimates, jobs=3, available=7 * 10**9)
    assert refused.value.message == (
        "the replay buffers of 3 job(s) at once need about 8.0 GB but 7.0 GB of memory is available; "
        "lower agents.SAC.hyperparams.buffer_size (1,000, 4.0 GB), or --jobs (now 3), or set optimize_memory_usage: true"
    )
