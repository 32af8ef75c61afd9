"""Jobs: one (agent, seed) run each, trained one after another or several at once.

``--jobs 1`` is the plain session in this process. ``--jobs N`` runs up to N jobs at once,
each in its own process (forked from a server that imported torch and SB3 once, see
:mod:`.job_server`) that takes its own agent lock (a flock belongs to an open file, so the
parent must not hold it), re-checks that the disk is as planned, trains, and commits through
the store. Planning stays in the parent, so bad input exits 2 before anything
trains. Each child sends its observer events through its own pipe (one pipe per job: a child
killed with ``kill -9`` cannot leave a shared queue's lock held); the parent hands them to the
caller's observer, which renders them.

Signals: the parent forwards SIGINT and SIGTERM to every running child; each commits a
checkpoint of that moment and exits, and the parent returns once all have. A child leaves the
command's process group as it starts, so a terminal's Ctrl-C (sent to the foreground group)
reaches it once, through the parent: a second signal a child receives is a second Ctrl-C, and
exits it at once. (Deduplicating the group's copy and the parent's by a time window instead
lost a job's commit when the copies came further apart than the window on a loaded machine.)
"""

from __future__ import annotations

import dataclasses
import functools
import os
import signal
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from types import FrameType
from typing import Any, cast

import torch

from atheria_cli.config import ExperimentConfig
from atheria_cli.errors import AtheriaError, TrainingDivergedError, UsageError
from atheria_cli.run.locking import AgentLock
from atheria_cli.run.seeds import replicates
from atheria_cli.trainers import kind_of
from atheria_cli.training.events import Event, EventSender, dispatch, labelled, relabelled, run_label
from atheria_cli.training.job import Job, JobResult, JobsOutcome, failure_line, finish_outcome, train_job
from atheria_cli.training.job_server import job_context
from atheria_cli.training.memory import available_memory, check_fits
from atheria_cli.training.planning import TrainPlan, plan_training, select_agents
from atheria_cli.training.session import TrainObserver, run_training
from atheria_cli.training.stopping import EXIT_CODES, StopSignals, TimeBudget
from atheria_cli.training.threads import devices_for_jobs, threads_per_job


@dataclass(frozen=True)
class JobsPlan:
    plans: tuple[TrainPlan, ...]  # one per seed (one in all without seeds)
    seeds: tuple[int | None, ...]
    jobs: int
    threads: int | None
    backend: str = "local"  # "ray": training.ray_backend places the jobs on a Ray cluster
    address: str | None = None  # --address of the Ray cluster; None starts a local one
    verbose: bool = False  # Ray's own log lines on the terminal too (else only in its driver log)

    def job_list(self) -> list[Job]:
        devices = devices_for_jobs(self.plans[0].device, sum(len(plan.agents) for plan in self.plans), _gpu_count())
        listed = [
            Job(run_label(agent.name, seed), seed, plan, agent)
            for seed, plan in zip(self.seeds, self.plans, strict=True)
            for agent in plan.agents
        ]
        return [
            dataclasses.replace(job, plan=dataclasses.replace(job.plan, device=device))
            for job, device in zip(listed, devices, strict=True)
        ]


def plan_jobs(
    config: ExperimentConfig,
    *,
    jobs: int | None = None,
    backend: str | None = None,
    address: str | None = None,
    verbose: bool = False,
    **request: Any,
) -> JobsPlan:
    """Plan every replicate (each seed) before anything trains; ``request`` as :func:`plan_training`."""
    count = config.train.jobs if jobs is None else jobs
    if count < 1:
        raise UsageError(f"--jobs must be at least 1 (got {count})")
    backend, address = checked_backend(config, backend, address)
    if backend == "ray" and request.get("from_sb3") is not None:
        raise UsageError("--from-sb3 adopts a zip in this machine's processes: not with --backend ray")
    if address is None:  # the jobs share this machine's memory (a cluster's nodes have their own)
        _check_memory(config, select_agents(config, request.get("agents", ())), count)  # before planning builds the models
    seeds, plans = [], []
    for seed, replicate in replicates(config):
        seeds.append(seed)
        plans.append(plan_training(replicate, **request))
    threads = threads_per_job(config.train.threads, count)
    return JobsPlan(
        plans=tuple(plans), seeds=tuple(seeds), jobs=count, threads=threads, backend=backend, address=address, verbose=verbose
    )


def checked_backend(config: ExperimentConfig, backend: str | None, address: str | None) -> tuple[str, str | None]:
    """The backend and address (the options, else ``train.backend`` / ``train.address``), checked
    before anything is written: exit 2 for an unknown backend, or Ray without its extra."""
    backend = backend or config.train.backend
    address = address or config.train.address
    if backend == "ray":
        from atheria_cli.training.ray_backend import check_ray

        check_ray(config, address)
    elif backend != "local":
        raise UsageError(f"unknown --backend {backend!r}: use local or ray")
    return backend, address


def _check_memory(config: ExperimentConfig, agents: Sequence[str], jobs: int) -> None:
    """The replay buffers of the jobs that can run at once must fit in the memory available.
    Each buffer is sized on its agent's own env (a per-agent ``frame_stack`` multiplies the
    observation); an agent without a replay buffer asks for no spaces, so it builds no env here."""
    spaces: dict[str, tuple[Any, Any]] = {}  # one throwaway env per distinct agent env setting

    def spaces_of(agent: str) -> tuple[Any, Any]:
        from atheria_cli.envs.factory import make_vec_env  # gymnasium and SB3: not for a run of trainers

        settings = config.env_of(agent)
        if (key := settings.model_dump_json()) not in spaces:
            env = make_vec_env(settings, gamma=config.gamma_of(agent))
            try:
                spaces[key] = env.observation_space, env.action_space
            finally:
                env.close()
        return spaces[key]

    per_agent = []
    for agent in agents:
        if estimate := kind_of(config, agent).estimate_memory(config, agent, functools.partial(spaces_of, agent)):
            per_agent.append(estimate)
    estimates = per_agent * len(config.seeds or (None,))
    check_fits(estimates, jobs, available_memory())


def run_jobs(plan: JobsPlan, observer: TrainObserver) -> JobsOutcome:
    if plan.backend == "ray":
        from atheria_cli.training.ray_backend import run_ray

        return run_ray(plan, observer)
    with _torch_threads(plan.threads if plan.jobs == 1 else None):
        if plan.jobs == 1:
            return _run_sequential(plan, observer)
        return _run_parallel(plan, observer)


# --- one after another, in this process ------------------------------------------------------


def _run_sequential(plan: JobsPlan, observer: TrainObserver) -> JobsOutcome:
    outcome = JobsOutcome(results=[])
    budget = TimeBudget(plan.plans[0].max_hours)
    with StopSignals() as between:  # a signal between two seeds' sessions
        for seed, replicate in zip(plan.seeds, plan.plans, strict=True):
            if between.received is not None:
                outcome.stopped_by, outcome.exit_code = between.name, between.exit_code
                break
            remaining = budget.remaining()
            if remaining is not None and remaining <= 0:
                outcome.stopped_by = "time budget"
                break
            hours = None if remaining is None else remaining / 3600.0
            session = run_training(dataclasses.replace(replicate, max_hours=hours), labelled(observer, seed))
            outcome.results.append((replicate, session.results))
            outcome.committed += sum(1 for result in session.results if result.last_checkpoint)
            if session.stopped_by:
                outcome.stopped_by, outcome.exit_code = session.stopped_by, session.exit_code
                break
    return outcome


@contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# --- several at once, one spawned process each ------------------------------------------------


@dataclass
class _Running:
    job: Job
    process: Any  # a ForkServerProcess (a SpawnProcess where there is no forkserver)
    done: bool = False


def _run_parallel(plan: JobsPlan, observer: TrainObserver) -> JobsOutcome:
    jobs = plan.job_list()
    _probe_locks(jobs)  # a run locked by another atheria exits 2 here, before anything trains
    for replicate, seed in zip(plan.plans, plan.seeds, strict=True):
        for notice in replicate.notices:
            observer.warn(notice if seed is None else f"seed_{seed}/{notice}")
    context = job_context()
    budget = TimeBudget(plan.plans[0].max_hours)
    pending = deque(jobs)
    running: dict[Any, _Running] = {}
    results: dict[str, JobResult] = {}
    outcome = JobsOutcome(results=[])
    skipped = False  # jobs not started: the deadline had passed
    with _Forwarding(lambda: [entry.process for entry in running.values()]) as signals:
        while pending or running:
            if pending and not budget.allows_another_episode():
                for job in pending:
                    observer.warn(f"{job.label}: the time budget ran out before this job started; nothing trained")
                pending.clear()
                skipped = True
            while pending and len(running) < plan.jobs and signals.received is None:
                job = pending.popleft()
                reader, writer = context.Pipe(duplex=False)
                process = context.Process(
                    target=job_main,
                    name=job.label,
                    args=(job, writer, budget.deadline, budget.started, plan.threads),
                )
                process.start()
                writer.close()  # the child holds the only write end: its death is our EOF
                running[reader] = _Running(job, process)
            if signals.received is not None:
                pending.clear()
            for reader in cast(list[Connection], wait(list(running), timeout=0.5)):
                if _receive(reader, running[reader], observer, results, outcome):
                    continue
                entry = running.pop(reader)
                entry.process.join()
                if not entry.done:
                    outcome.failed.append(f"{entry.job.label}: {_death(entry.process.exitcode, signals.received)}")
                    if _killed(entry.process.exitcode, signals.received):
                        outcome.killed.append(entry.job.label)
        if signals.received is not None:
            outcome.stopped_by, outcome.exit_code = signals.name, signals.exit_code
    return finish_outcome(outcome, plan.plans, plan.seeds, results, skipped=skipped)


def _receive(
    reader: Connection, entry: _Running, observer: TrainObserver, results: dict[str, JobResult], outcome: JobsOutcome
) -> bool:
    """Handle one message; False when the child closed its pipe (it ended)."""
    try:
        message = reader.recv()
    except (EOFError, OSError):
        reader.close()
        return False
    kind, payload = message
    label = entry.job.label
    if kind == "event":
        dispatch(payload, observer)  # the child labelled it
    elif kind == "done":
        entry.done = True
        results[label] = payload
    elif kind in ("failed", "diverged"):
        entry.done = True
        outcome.failed.append(f"{label}: {payload}")
        if kind == "diverged":
            outcome.diverged[label] = payload
    return True


def _death(exitcode: int | None, signalled: int | None) -> str:
    if _stopped(exitcode, signalled):
        return "stopped before it started training (nothing written)"
    if exitcode is not None and exitcode < 0:
        return f"the job process was killed by {signal.Signals(-exitcode).name}"
    return f"the job process ended with exit code {exitcode} before reporting"


def _stopped(exitcode: int | None, signalled: int | None) -> bool:
    """The job ended by the run's own stop signal (forwarded to it before it could report)."""
    return signalled is not None and exitcode in (-signalled, EXIT_CODES.get(signal.Signals(signalled)))


def _killed(exitcode: int | None, signalled: int | None) -> bool:
    """A signal killed the job's process (kill -9, the OOM killer) and it was not the run's own
    stop signal: the run is intact at its newest commit."""
    return exitcode is not None and exitcode < 0 and not _stopped(exitcode, signalled)


def _probe_locks(jobs: Sequence[Job]) -> None:
    for job in jobs:
        lock = AgentLock(job.plan.config.run_dir, job.agent.name)
        lock.acquire()
        lock.release()


class _Forwarding(StopSignals):
    """The parent's handler: remember the first signal, pass every one on to the children."""

    def __init__(self, children: Any) -> None:
        super().__init__()
        self._children = children

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum
        for process in self._children():
            if process.pid is not None and process.exitcode is None:
                try:
                    os.kill(process.pid, signum)
                except ProcessLookupError:
                    pass


def _pipe_observer(conn: Connection, signals: StopSignals, parent: int, seed: int | None) -> EventSender:
    """The child's observer: every event goes to the parent, labelled for the seed. A parent that
    died stops the job as a SIGTERM would (commit, then exit)."""

    def send(event: Event) -> None:
        if os.getppid() != parent and signals.received is None:
            signals.received = signal.SIGTERM
        try:
            conn.send(("event", relabelled(event, seed)))
        except (BrokenPipeError, OSError):
            if signals.received is None:
                signals.received = signal.SIGTERM

    return EventSender(send)


def job_main(job: Job, conn: Connection, deadline: float | None, started: float, threads: int | None) -> None:
    """The child process: lock, re-check, train one agent, report ("done", "failed" or
    "diverged"). Exits 1 on failure."""
    # The process that started this one: the command itself, or the forkserver, which exits when
    # the command dies. Either way this pid changes (to init's) once the command is gone.
    parent = os.getppid()
    with StopSignals() as signals:
        if hasattr(os, "setpgrp"):  # POSIX: out of the terminal's foreground group, so signals come through the parent
            os.setpgrp()
        try:
            if threads is not None:
                torch.set_num_threads(threads)
            result = _train_locked(job, conn, signals, deadline, started, parent)
            conn.send(("done", result))
        except TrainingDivergedError as exc:  # a failure the caller may tell apart (atheria tune prunes the trial)
            conn.send(("diverged", exc.message))
            raise SystemExit(1) from None
        except AtheriaError as exc:
            conn.send(("failed", exc.message))
            raise SystemExit(1) from None
        except Exception as exc:  # a crash of one job must not stop the others: report it, exit 1
            conn.send(("failed", failure_line(exc)))
            raise SystemExit(1) from None
        finally:
            conn.close()


def _train_locked(
    job: Job, conn: Connection, signals: StopSignals, deadline: float | None, started: float, parent: int
) -> JobResult:
    budget = TimeBudget(None, started)
    budget.deadline = deadline
    return train_job(job, _pipe_observer(conn, signals, parent, job.seed), signals, budget)


def _gpu_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0
