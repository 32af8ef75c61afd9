"""``--backend ray``: Ray places and retries the jobs; atheria's store stays the source of truth.

Each (agent, seed) job runs as one Ray actor (Ray Core, no Tune), on the actor worker's main
thread. A job whose worker or node dies is run again in a new actor, as a ``--resume`` of its
newest intact commit, until the episode target fixed at planning (start episode + N): a retried
run equals one that never failed. Ray keeps SIGINT blocked in its workers and does not interrupt
a running sync actor task, so a stop travels through a small hub actor: a watcher thread in each
job polls it and sets the job's stop flag, and the step loop commits a checkpoint of that moment.
The same hub carries the jobs' observer events (typed values, ``training.events``) to the driver.
A hub whose process dies is restarted by Ray (up to ``train.max_retries`` times) and costs the
jobs nothing: the driver's next poll hands it the stop again, each job resends its numbered events
to the new hub, and the driver shows each event once and in order.

A Ray failure that still ends the run is one line for the user (exit 1, ``--resume`` continues);
its traceback, and Ray's own driver log lines (shown on the terminal only with ``--verbose``),
go to ``<checkpoints_dir>/<experiment>/ray-driver.log``.

Storage: with a local Ray (no address) the workers see this machine's disk. With an address the
cluster may span machines, so the run must be on a filesystem every node sees
(``train.shared_storage: true``) or ``train.mirror`` is the store of record: each job trains in
node-local scratch, pulls the run from the mirror first and mirrors every commit.

This is the only module that imports ``ray`` (the 'ray' extra).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from atheria_cli.config import ExperimentConfig
from atheria_cli.errors import AtheriaError, ClusterError, TrainingDivergedError, UsageError
from atheria_cli.run.layout import RAY_DRIVER_LOG
from atheria_cli.run.mirror import Mirror
from atheria_cli.training.events import Event, EventSender, dispatch, relabelled
from atheria_cli.training.job import Job, JobResult, JobsOutcome, failure_line, finish_outcome, train_job
from atheria_cli.training.jobs import JobsPlan
from atheria_cli.training.planning import plan_agent
from atheria_cli.training.session import TrainObserver
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

    @property
    def key(self) -> tuple[str, int]:
        return self.job.label, self.attempt


class _Lost(Exception):
    """A part of Ray the run needs is gone for good; ``what`` names it for the user."""

    def __init__(self, what: str, cause: BaseException) -> None:
        super().__init__(what)
        self.what, self.cause = what, cause


def run_ray(plan: JobsPlan, observer: TrainObserver) -> JobsOutcome:
    """Run the plan's jobs as Ray actors. A Ray failure that ends the run is one :class:`ClusterError`
    (exit 1); Ray's own log lines and the failure's detail go to ``<run_dir>/ray-driver.log``."""
    ray = _ray()
    config = plan.plans[0].config
    log = Path(config.run_dir) / RAY_DRIVER_LOG
    with _ray_logging(log, plan.verbose):
        started_here = _connect_or_fail(ray, plan.address, plan.verbose, log)
        try:
            return _drive(ray, plan, observer, log, scratch=is_remote(plan.address) and not config.train.shared_storage)
        except _Lost as lost:
            raise _failure(log, lost.what, lost.cause) from None
        except (ray.exceptions.RayError, ConnectionError) as exc:
            raise _failure(log, "Ray failed", exc) from None
        finally:
            if started_here:
                ray.shutdown()


@contextmanager
def ray_session(address: str | None, verbose: bool, log: Path) -> Iterator[None]:
    """Ray started (or joined) once for many :func:`run_ray` calls, which find it up and leave it
    so: ``atheria tune`` trains a study's segments in one Ray instead of starting one per segment
    (about 10 s each). Ray's start-up log lines and a failure to start go to ``log``."""
    ray = _ray()
    with _ray_logging(log, verbose):
        started_here = _connect_or_fail(ray, address, verbose, log)
        try:
            yield
        finally:
            if started_here:
                ray.shutdown()


def _connect_or_fail(ray: Any, address: str | None, verbose: bool, log: Path) -> bool:
    try:
        return _connect(ray, address, verbose)
    except Exception as exc:  # ray.init raises ConnectionError, RuntimeError, ValueError, ...
        where = f"connect to the Ray cluster at {address}" if is_remote(address) else "start a local Ray"
        raise _failure(log, f"could not {where}", exc, then="nothing trained") from None


def _connect(ray: Any, address: str | None, verbose: bool) -> bool:
    """Start (or join) Ray; True when this call started it, so it also shuts it down."""
    if ray.is_initialized():
        return False
    shown = verbose  # else the actors' own output stays in Ray's session logs
    if is_remote(address):
        assert address is not None
        _check_answers(address)
        ray.init(address=address, namespace=NAMESPACE, log_to_driver=shown)
    else:
        ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, namespace=NAMESPACE, log_to_driver=shown)
    return True


def _check_answers(address: str, seconds: float = 10.0) -> None:
    """Something listens at a ``host:port`` address (``ray://`` or a GCS address). Without this
    check ``ray.init`` retries an address where nothing answers for ever, printing its core's
    retries on the terminal; ``auto`` (a cluster this machine started) is left to Ray.

    :raises ConnectionError: nothing answers at the address within ``seconds``
    """
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=seconds).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConnectionError(f"nothing answers at {host}:{port} ({reason})") from None


@contextmanager
def _ray_logging(log: Path, verbose: bool) -> Iterator[None]:
    """Ray's driver-side log lines (its token-authentication warning, "Started a local Ray
    instance", unhandled task errors) go to ``log``, and to the terminal only when ``verbose``."""
    ray_logger = logging.getLogger("ray")  # ray sets its stderr handler on import
    previous = list(ray_logger.handlers)
    log.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(log, delay=True)
    to_file.setFormatter(logging.Formatter("%(asctime)s\t%(levelname)s %(filename)s:%(lineno)s -- %(message)s"))
    ray_logger.handlers = [*previous, to_file] if verbose else [to_file]
    try:
        yield
    finally:
        ray_logger.handlers = previous
        to_file.close()


def _failure(
    log: Path, what: str, exc: BaseException, then: str = "every committed checkpoint is intact: continue with --resume"
) -> ClusterError:
    """The one line the user sees; the traceback goes to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as file:
        file.write(f"{datetime.now(timezone.utc).isoformat(timespec='seconds')} atheria: the run ended: {what}\n")
        traceback.print_exception(exc, file=file)
    return ClusterError(f"{what} ({_first_line(exc)}); {then} (Ray's report: {log})")


def _first_line(exc: BaseException) -> str:
    """``ActorDiedError: The actor died ...``: Ray's messages run to many lines and embed tracebacks."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0].rstrip('.')}" if lines else type(exc).__name__


@dataclass
class _Driver:
    """The driver's state between polls: what runs, what is done, what the user has been shown."""

    ray: Any
    plan: JobsPlan
    observer: TrainObserver
    log: Path
    scratch: bool
    budget: TimeBudget
    inbox: _Inbox
    hub: Any = None
    job_class: Any = None
    running: dict[Any, _Running] = dataclasses.field(default_factory=dict)
    results: dict[str, JobResult] = dataclasses.field(default_factory=dict)
    outcome: JobsOutcome = dataclasses.field(default_factory=lambda: JobsOutcome(results=[]))
    hub_incarnation: str | None = None
    names: list[str] = dataclasses.field(default_factory=list)  # of the actors this run created

    @property
    def max_retries(self) -> int:
        return self.plan.plans[0].config.train.max_retries


def _drive(ray: Any, plan: JobsPlan, observer: TrainObserver, log: Path, scratch: bool) -> JobsOutcome:
    driver = _Driver(ray, plan, observer, log, scratch, TimeBudget(plan.plans[0].max_hours), _Inbox(observer))
    hub_class, driver.job_class = _classes(ray)
    driver.hub = _start_hub(ray, hub_class, driver.max_retries)
    for replicate, seed in zip(plan.plans, plan.seeds, strict=True):
        for notice in replicate.notices:
            observer.warn(notice if seed is None else f"seed_{seed}/{notice}")
    pending = deque(plan.job_list())
    running, outcome = driver.running, driver.outcome
    with StopSignals() as signals:
        while pending or running:
            while pending and len(running) < plan.jobs and signals.received is None:
                job = pending.popleft()
                _launch(driver, _Running(job, None, target_episode(job)))
            if signals.received is not None:
                pending.clear()
            ready, _ = ray.wait(list(running), num_returns=1, timeout=POLL_SECONDS) if running else ([], [])
            _drain(driver, signals.received)
            for ref in ready:
                entry = running.pop(ref)
                if _finish(driver, ref, entry) and signals.received is None:
                    _launch(driver, entry)
        _drain(driver, signals.received)
        if signals.received is not None:
            outcome.stopped_by, outcome.exit_code = signals.name, signals.exit_code
    _await_released(ray, driver.names)
    return finish_outcome(outcome, plan.plans, plan.seeds, driver.results)


def _await_released(ray: Any, names: list[str], seconds: float = 10.0) -> None:
    """Return once the Ray cluster has let go of the names of this run's (killed) actors, so a
    next run on the same cluster (``atheria tune``'s next segment) can take them: a killed
    actor's name stays taken for a moment."""
    deadline = time.monotonic() + seconds
    for name in names:
        while time.monotonic() < deadline:
            try:
                ray.get_actor(name, namespace=NAMESPACE)
            except ValueError:
                break
            time.sleep(0.01)


def _start_hub(ray: Any, hub_class: Any, max_retries: int) -> Any:
    """The hub lives on the driver's node: a worker node's death must not take the events and the stop with it.
    Ray restarts a hub whose process died (up to ``train.max_retries`` times) and retries the calls
    made to it meanwhile; the hub's contents are rebuilt (:class:`_HubLink`, :func:`_drain`)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
    return hub_class.options(num_cpus=0, scheduling_strategy=here, max_restarts=max_retries, max_task_retries=-1).remote()


def _drain(driver: _Driver, stop: int | None) -> None:
    """Hand the hub's events to the observer, and the driver's stop (if any) to the hub: every poll
    carries it, so a restarted hub learns it again at once."""
    try:
        incarnation, batches = driver.ray.get(driver.hub.drain.remote(stop or 0))
    except driver.ray.exceptions.RayActorError as exc:
        what = (
            "the Ray hub actor (ray::Hub, the jobs' progress and stop channel) died, and "
            f"train.max_retries ({driver.max_retries}) allows no more restarts"
        )
        raise _Lost(what, exc) from exc
    if driver.hub_incarnation not in (None, incarnation):
        driver.observer.warn("the Ray hub actor (ray::Hub) died and was restarted; the jobs resend their progress to it")
    driver.hub_incarnation = incarnation
    for key, first, events in batches:
        driver.inbox.take(key, first, events)


class _Inbox:
    """Each job attempt's events reach the observer in order and exactly once, although a
    restarted hub lost what it held (its jobs resend everything, and a job's result carries all
    its events) and Ray may run a retried push twice."""

    def __init__(self, observer: TrainObserver) -> None:
        self.observer = observer
        self.next: dict[tuple[str, int], int] = {}  # the index of the next event to show
        self.held: dict[tuple[str, int], dict[int, Event]] = {}  # arrived ahead of a gap

    def take(self, key: tuple[str, int], first: int, events: list[Event]) -> None:
        shown, held = self.next.get(key, 0), self.held.setdefault(key, {})
        for index, event in enumerate(events, first):
            if index >= shown:
                held[index] = event
        while shown in held:
            dispatch(held.pop(shown), self.observer)
            shown += 1
        self.next[key] = shown


def actor_name(job: Job, attempt: int) -> str:
    """One writer per job across the cluster: a second driver finds the name taken and refuses.
    A dead actor's name is not released at once, so a retry takes the next name."""
    name = f"{job.plan.config.experiment}/{job.label}"
    return name if attempt == 0 else f"{name}#retry{attempt}"


def _launch(driver: _Driver, entry: _Running) -> None:
    """Create the job's actor and start its run; a name already taken is another driver's job."""
    ray, job = driver.ray, entry.job
    name = actor_name(job, entry.attempt)
    taken = f"{job.label}: another atheria is training it (the Ray actor {name!r} exists)"
    try:
        ray.get_actor(name, namespace=NAMESPACE)
        driver.outcome.failed.append(taken)
        return
    except ValueError:
        pass
    gpus = 1 if job.plan.device.startswith("cuda") else 0
    try:
        entry.actor = driver.job_class.options(
            name=name, namespace=NAMESPACE, num_cpus=driver.plan.threads or 1, num_gpus=gpus, max_restarts=0, max_task_retries=0
        ).remote()
    except ValueError:  # created by another driver since the look-up
        driver.outcome.failed.append(taken)
        return
    driver.names.append(name)
    args = (job, entry.target, entry.attempt, driver.hub, driver.plan.threads, driver.budget.remaining(), driver.scratch)
    driver.running[entry.actor.run.remote(*args)] = entry


def _finish(driver: _Driver, ref: Any, entry: _Running) -> bool:
    """Record a job that ended; True when it should run again (its worker or node died)."""
    ray, label, max_retries = driver.ray, entry.job.label, driver.max_retries
    try:
        kind, payload, events = ray.get(ref)
    except ray.exceptions.RayActorError as exc:
        ray.kill(entry.actor, no_restart=True)
        if entry.attempt >= max_retries:
            driver.outcome.failed.append(
                f"{label}: its Ray worker died {entry.attempt + 1} time(s) (train.max_retries: {max_retries})"
            )
            return False
        entry.attempt += 1
        why = type(exc).__name__
        driver.observer.warn(
            f"{label}: its Ray worker died ({why}); retry {entry.attempt} of {max_retries} resumes its newest commit"
        )
        return True
    except ray.exceptions.RayError as exc:
        _failure(driver.log, f"job {label}", exc)  # the detail, for the log
        driver.outcome.failed.append(f"{label}: {_first_line(exc)} (Ray's report: {driver.log})")
        return False
    ray.kill(entry.actor, no_restart=True)
    driver.inbox.take(entry.key, 0, events)  # whatever a restarted hub lost on the way
    if kind == "done":
        driver.results[label] = payload
    else:
        driver.outcome.failed.append(f"{label}: {payload}")
        if kind == "diverged":
            driver.outcome.diverged[label] = payload
    return False


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


class _HubLink:
    """A job attempt's end of the hub: its events, labelled and numbered, each pushed once
    (fire-and-forget: one caller's calls stay in order), and all pushed again to a hub that
    restarted, which lost what it held. The driver's :class:`_Inbox` drops what it has shown."""

    def __init__(self, hub: Any, key: tuple[str, int], seed: int | None) -> None:
        self.hub, self.key, self.seed = hub, key, seed
        self.sent: list[Event] = []
        self._lock = threading.Lock()  # the job's thread sends, the watcher resends

    def send(self, event: Event) -> None:
        with self._lock:
            self.sent.append(relabelled(event, self.seed))
            self.hub.push.remote(self.key, len(self.sent) - 1, self.sent[-1:])

    def resend(self) -> None:
        with self._lock:
            self.hub.push.remote(self.key, 0, list(self.sent))

    def everything(self) -> list[Event]:
        with self._lock:
            return list(self.sent)


def run_job(
    job: Job, target: int | None, attempt: int, hub: Any, threads: int | None, remaining: float | None, scratch: bool
) -> tuple[str, Any, list[Event]]:
    """The body of a job's actor: (re)plan when retried or in scratch, then train under the lock.
    The result carries every event of the attempt, so none is lost with a hub that died."""
    import ray
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    signals = StopSignals()  # never entered: the stop comes from the hub, not an OS signal
    link = _HubLink(hub, (job.label, attempt), job.seed)
    _, incarnation = ray.get(hub.stopping.remote())
    watcher = threading.Thread(target=_watch, args=(ray, hub, signals, link, incarnation), daemon=True)
    watcher.start()
    observer = EventSender(link.send)
    try:
        prepared = _prepare(job, target, attempt, scratch, observer)
        if prepared is None:  # an earlier attempt reached the target and died after its last commit
            result: tuple[str, Any] = ("done", JobResult(agent=job.agent.name))
        else:
            budget = TimeBudget(None if remaining is None else remaining / 3600.0)
            result = ("done", train_job(prepared, observer, signals, budget))
    except TrainingDivergedError as exc:
        result = ("diverged", exc.message)
    except AtheriaError as exc:
        result = ("failed", exc.message)
    except Exception as exc:  # one job's crash must not stop the others
        result = ("failed", failure_line(exc))
    finally:
        signals.received = signals.received or 0  # ends the watcher
    return (*result, link.everything())


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


def _watch(ray: Any, hub: Any, signals: StopSignals, link: _HubLink, incarnation: str) -> None:
    """Poll the hub for the driver's stop; resend the job's events when the hub was restarted."""
    while signals.received is None:
        try:
            stop, current = ray.get(hub.stopping.remote())
        except ray.exceptions.RayError:  # the hub is gone for good: the driver ends the run
            return
        if current != incarnation:
            incarnation = current
            link.resend()
        if stop and signals.received is None:
            signals.received = stop
        threading.Event().wait(POLL_SECONDS)


def _classes(ray: Any) -> tuple[Any, Any]:
    class Hub:
        """Observer events on their way to the driver, and the driver's stop request. Ray restarts
        it after a crash, empty: the jobs resend their events, the driver its stop."""

        def __init__(self) -> None:
            self.batches: list[tuple[tuple[str, int], int, list[Event]]] = []  # (job attempt, first index, events)
            self.signal = 0
            self.incarnation = uuid.uuid4().hex  # a new one after every restart

        def push(self, key: tuple[str, int], first: int, events: list[Event]) -> None:
            self.batches.append((key, first, events))

        def drain(self, signal: int) -> tuple[str, list[tuple[tuple[str, int], int, list[Event]]]]:
            self.signal = self.signal or signal
            batches, self.batches = self.batches, []
            return self.incarnation, batches

        def stopping(self) -> tuple[int, str]:
            return self.signal, self.incarnation

    class JobActor:
        def pid(self) -> int:
            return os.getpid()

        def run(self, *args: Any) -> tuple[str, Any, list[Event]]:
            return run_job(*args)

    return ray.remote(Hub), ray.remote(JobActor)
