"""``--backend ray``: Ray places and retries the jobs; atheria's store stays the source of truth.

Each (agent, seed) job runs as one Ray actor (Ray Core, no Tune), on the actor worker's main
thread. A job whose worker or node dies is run again in a new actor, as a ``--resume`` of its
newest intact commit, until the episode target fixed at planning (start episode + N): a retried
run equals one that never failed. Ray keeps SIGINT blocked in its workers and does not interrupt
a running sync actor task, so a stop travels through a small hub actor: a watcher thread in each
job polls it and sets the job's stop flag, and the step loop commits a checkpoint of that moment.
The same hub carries the jobs' observer events to the driver.

Storage: with a local Ray (no address) the workers see this machine's disk. With an address the
cluster may span machines, so the run must be on a filesystem every node sees
(``train.shared_storage: true``) or ``train.mirror`` is the store of record: each job trains in
node-local scratch, pulls the run from the mirror first and mirrors every commit.

This is the only module that imports ``ray`` (the 'ray' extra).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from atheria_cli.config import ExperimentConfig
from atheria_cli.errors import AtheriaError, UsageError
from atheria_cli.run.mirror import Mirror
from atheria_cli.training.events import Event, EventSender, dispatch, relabelled, run_label
from atheria_cli.training.jobs import Job, JobsOutcome, JobsPlan, _JobResult, _where, train_job
from atheria_cli.training.planning import plan_agent
from atheria_cli.training.session import AgentResult, TrainObserver
from atheria_cli.training.stopping import StopSignals, TimeBudget

NAMESPACE = "atheria"
POLL_SECONDS = 0.5
EXTRA = "--backend ray needs the 'ray' extra: pip install 'atheria-cli[ray]'"


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError(EXTRA) from None
    return ray


def is_remote(address: str | None) -> bool:
    """Any address may name a cluster spanning machines; only no address (or "local") is this machine."""
    return address not in (None, "local")


def check_ray(config: ExperimentConfig, address: str | None) -> None:
    """Bad input for the Ray backend, found before anything trains (exit 2)."""
    _ray()
    if is_remote(address) and not config.train.shared_storage and config.train.mirror is None:
        raise UsageError(
            f"--address {address} may place jobs on other machines, which must see the run: put checkpoints_dir on a "
            "filesystem every node mounts and set train.shared_storage: true, or set train.mirror.to to storage every "
            "node reaches (the mirror is then the store of record)"
        )


# --- the driver ---------------------------------------------------------------------------------


@dataclass
class _Running:
    job: Job
    actor: Any
    target: int | None  # the job's last episode, fixed at planning
    attempt: int = 0


def run_ray(plan: JobsPlan, observer: TrainObserver) -> JobsOutcome:
    ray = _ray()
    config = plan.plans[0].config
    started_here = not ray.is_initialized()
    if started_here:
        if is_remote(plan.address):
            ray.init(address=plan.address, namespace=NAMESPACE, log_to_driver=False)
        else:
            ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, namespace=NAMESPACE, log_to_driver=False)
    try:
        return _drive(ray, plan, observer, scratch=is_remote(plan.address) and not config.train.shared_storage)
    finally:
        if started_here:
            ray.shutdown()


def _drive(ray: Any, plan: JobsPlan, observer: TrainObserver, scratch: bool) -> JobsOutcome:
    hub_class, job_class = _classes(ray)
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    # The hub lives on the driver's node: a worker node's death must not take the events and the stop with it.
    here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
    hub = hub_class.options(num_cpus=0, scheduling_strategy=here).remote()
    for replicate, seed in zip(plan.plans, plan.seeds, strict=True):
        for notice in replicate.notices:
            observer.warn(notice if seed is None else f"seed_{seed}/{notice}")
    budget = TimeBudget(plan.plans[0].max_hours)
    pending = deque(plan.job_list())
    running: dict[Any, _Running] = {}
    results: dict[str, _JobResult] = {}
    outcome = JobsOutcome(results=[])
    max_retries = plan.plans[0].config.train.max_retries
    stop_sent = False
    with StopSignals() as signals:
        while pending or running:
            while pending and len(running) < plan.jobs and signals.received is None:
                job = pending.popleft()
                entry = _Running(job, None, target_episode(job))
                if _launch(ray, job_class, hub, entry, plan, budget, scratch, outcome):
                    running[entry.actor.run.remote(*_run_args(entry, hub, plan, budget, scratch))] = entry
            if signals.received is not None and not stop_sent:
                pending.clear()
                hub.stop.remote(signals.received)
                stop_sent = True
            ready, _ = ray.wait(list(running), num_returns=1, timeout=POLL_SECONDS) if running else ([], [])
            _forward(ray.get(hub.drain.remote()), observer)
            for ref in ready:
                entry = running.pop(ref)
                retried = _finish(ray, ref, entry, results, outcome, max_retries, observer)
                if retried and signals.received is None and _launch(ray, job_class, hub, entry, plan, budget, scratch, outcome):
                    running[entry.actor.run.remote(*_run_args(entry, hub, plan, budget, scratch))] = entry
        _forward(ray.get(hub.drain.remote()), observer)
        if signals.received is not None:
            outcome.stopped_by, outcome.exit_code = signals.name, signals.exit_code
    if outcome.failed and not outcome.exit_code:
        outcome.exit_code = 1
    if not outcome.stopped_by and any(result.stopped_by == "time budget" for result in results.values()):
        outcome.stopped_by = "time budget"
    for replicate, seed in zip(plan.plans, plan.seeds, strict=True):
        labels = [run_label(agent.name, seed) for agent in replicate.agents]
        done: list[AgentResult] = [results[label] for label in labels if label in results]
        outcome.results.append((replicate, done))
    outcome.committed = sum(1 for _, done in outcome.results for result in done if result.last_checkpoint)
    return outcome


def actor_name(job: Job, attempt: int) -> str:
    """One writer per job across the cluster: a second driver finds the name taken and refuses.
    A dead actor's name is not released at once, so a retry takes the next name."""
    name = f"{job.plan.config.experiment}/{job.label}"
    return name if attempt == 0 else f"{name}#retry{attempt}"


def _launch(
    ray: Any, job_class: Any, hub: Any, entry: _Running, plan: JobsPlan, budget: TimeBudget, scratch: bool, outcome: JobsOutcome
) -> bool:
    name = actor_name(entry.job, entry.attempt)
    try:
        ray.get_actor(name, namespace=NAMESPACE)
        outcome.failed.append(f"{entry.job.label}: another atheria is training it (the Ray actor {name!r} exists)")
        return False
    except ValueError:
        pass
    gpus = 1 if entry.job.plan.device.startswith("cuda") else 0
    try:
        entry.actor = job_class.options(
            name=name, namespace=NAMESPACE, num_cpus=plan.threads or 1, num_gpus=gpus, max_restarts=0, max_task_retries=0
        ).remote()
    except ValueError:  # created by another driver since the look-up
        outcome.failed.append(f"{entry.job.label}: another atheria is training it (the Ray actor {name!r} exists)")
        return False
    return True


def _run_args(entry: _Running, hub: Any, plan: JobsPlan, budget: TimeBudget, scratch: bool) -> tuple[Any, ...]:
    remaining = budget.remaining()
    return (entry.job, entry.target, entry.attempt, hub, plan.threads, remaining, scratch)


def _finish(
    ray: Any,
    ref: Any,
    entry: _Running,
    results: dict[str, _JobResult],
    outcome: JobsOutcome,
    max_retries: int,
    observer: TrainObserver,
) -> bool:
    """Record a job that ended; True when it should run again (its worker or node died)."""
    label = entry.job.label
    try:
        kind, payload = ray.get(ref)
    except ray.exceptions.RayActorError as exc:
        ray.kill(entry.actor, no_restart=True)
        if entry.attempt >= max_retries:
            outcome.failed.append(f"{label}: its Ray worker died {entry.attempt + 1} time(s) (train.max_retries: {max_retries})")
            return False
        entry.attempt += 1
        why = type(exc).__name__
        observer.warn(f"{label}: its Ray worker died ({why}); retry {entry.attempt} of {max_retries} resumes its newest commit")
        return True
    except ray.exceptions.RayError as exc:
        outcome.failed.append(f"{label}: {type(exc).__name__}: {exc}")
        return False
    ray.kill(entry.actor, no_restart=True)
    if kind == "done":
        results[label] = payload
    else:
        outcome.failed.append(f"{label}: {payload}")
    return False


def _forward(events: list[Event], observer: TrainObserver) -> None:
    for event in events:
        dispatch(event, observer)  # the job labelled it


def target_episode(job: Job) -> int | None:
    """The episode a job ends at: where it starts when planned, plus N. A retry trains only up to it."""
    if job.plan.episodes is None:
        return None
    agent, config = job.agent, job.plan.config
    start = 0
    if agent.resume_from is not None:
        start = agent.resume_from.episode
    elif agent.pull_mirror and config.train.mirror is not None:
        manifest = Mirror(config.train.mirror.to, config.experiment, agent.name).manifest()
        start = manifest.latest.episode if manifest is not None and manifest.latest is not None else 0
    elif agent.fork is not None:
        start = agent.fork.entry.episode
    return start + job.plan.episodes


# --- the workers --------------------------------------------------------------------------------


def _hub_observer(hub: Any, seed: int | None) -> EventSender:
    """A job's observer: each event goes to the hub labelled for the seed, fire-and-forget (one
    caller's calls stay in order)."""
    return EventSender(lambda event: hub.push.remote(relabelled(event, seed)))


def run_job(
    job: Job, target: int | None, attempt: int, hub: Any, threads: int | None, remaining: float | None, scratch: bool
) -> tuple[str, Any]:
    """The body of a job's actor: (re)plan when retried or in scratch, then train under the lock."""
    import ray
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    signals = StopSignals()  # never entered: the stop comes from the hub, not an OS signal
    watcher = threading.Thread(target=_watch, args=(ray, hub, signals), daemon=True)
    watcher.start()
    observer = _hub_observer(hub, job.seed)
    try:
        prepared = _prepare(job, target, attempt, scratch, observer)
        if prepared is None:  # an earlier attempt reached the target and died after its last commit
            result: Any = ("done", _JobResult(agent=job.agent.name))
        else:
            budget = TimeBudget(None if remaining is None else remaining / 3600.0)
            result = ("done", train_job(prepared, observer, signals, budget))
    except AtheriaError as exc:
        result = ("failed", exc.message)
    except Exception as exc:  # one job's crash must not stop the others
        result = ("failed", f"{type(exc).__name__}: {exc} ({_where(exc)})")
    finally:
        signals.received = signals.received or 0  # ends the watcher
    ray.get(hub.flush.remote())  # every event reaches the hub before the result reaches the driver
    return result


def _prepare(job: Job, target: int | None, attempt: int, scratch: bool, observer: TrainObserver) -> Job | None:
    """The job to run now: as planned, or (retry, scratch) planned again on this node as a resume."""
    config = job.plan.config
    if scratch:
        local = os.path.join(tempfile.gettempdir(), "atheria-ray", _node_id())
        assert config.train.mirror is not None
        config = config.model_copy(
            update={
                "checkpoints_dir": local,
                "train": config.train.model_copy(update={"mirror": config.train.mirror.model_copy(update={"every": 1})}),
            }
        )
        shutil.rmtree(os.path.join(str(config.run_dir), job.agent.name), ignore_errors=True)  # scratch is a cache
    if attempt == 0 and not scratch:
        return job
    resume = attempt > 0 or job.plan.resume
    fresh = attempt == 0 and (job.agent.move_aside or job.agent.move_mirror_aside)
    notices: list[str] = []
    agent = plan_agent(
        config, job.agent.name, resume=resume, fresh=fresh, allow_config_change=job.plan.allow_config_change, notices=notices
    )
    for notice in notices:
        observer.warn(notice)
    start = _start_episode(config, agent)
    if start == 0 and job.agent.fork is not None:
        agent = dataclasses.replace(agent, fork=job.agent.fork)
        start = job.agent.fork.entry.episode
    episodes = job.plan.episodes if target is None else target - start
    if episodes is not None and episodes <= 0:
        return None
    plan = dataclasses.replace(job.plan, config=config, episodes=episodes, resume=resume)
    return dataclasses.replace(job, plan=plan, agent=agent)


def _start_episode(config: ExperimentConfig, agent: Any) -> int:
    if agent.resume_from is not None:
        return int(agent.resume_from.episode)
    if agent.pull_mirror and config.train.mirror is not None:
        manifest = Mirror(config.train.mirror.to, config.experiment, agent.name).manifest()
        if manifest is not None and manifest.latest is not None:
            return int(manifest.latest.episode)
    return 0


def _node_id() -> str:
    import ray

    return str(ray.get_runtime_context().get_node_id())[:12]


def _watch(ray: Any, hub: Any, signals: StopSignals) -> None:
    while signals.received is None:
        stop = ray.get(hub.stopping.remote())
        if stop and signals.received is None:
            signals.received = stop
        threading.Event().wait(POLL_SECONDS)


def _classes(ray: Any) -> tuple[Any, Any]:
    class Hub:
        """Observer events on their way to the driver, and the driver's stop request."""

        def __init__(self) -> None:
            self.events: list[Event] = []
            self.signal = 0

        def push(self, event: Event) -> None:
            self.events.append(event)

        def drain(self) -> list[Event]:
            events, self.events = self.events, []
            return events

        def flush(self) -> None:
            pass

        def stop(self, signum: int) -> None:
            self.signal = signum

        def stopping(self) -> int:
            return self.signal

    class JobActor:
        def pid(self) -> int:
            return os.getpid()

        def run(self, *args: Any) -> tuple[str, Any]:
            return run_job(*args)

    return ray.remote(Hub), ray.remote(JobActor)
