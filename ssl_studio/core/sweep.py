"""A sweep: the Train page's settings, the methods to try, one or two settings to vary and a number of seeds,
expanded to runs that train one after another from a queue file in the workspace.

Every run's settings are checked before anything runs, so a bad value is refused naming the setting. The queue
(``QUEUE``, one JSON file: each job's run folder name, settings, state and the reason when it failed) is changed
only under a lock file beside it (filelock: the operating system releases the lock of a process that dies), so two
processes or app windows never take the same job; a job left running by a process that is gone goes back to the
queue. Runs with the same data folder, seed and baseline settings share one supervised baseline, untrained network
and pixel space (pipeline.baseline_key): the first trains them, the others link them in.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import socket
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

from .atomic import write_json_atomic
from .augment import Recipe
from .cancel import CancelToken, Cancelled
from .config import TrainConfig
from .errors import UserError, error_text
from .events import StageStarted
from .folder_defaults import Given
from .methods import default_recipe, method_class, method_names
from .pipeline import baseline_key, run_pipeline
from .runs import RunFolder, holds_run_files, is_run_folder
from .schema import field_types, fields_by_name, info
from .transfer import TransferConfig
from .workspace import summarize

QUEUE = "sweep.json"  # the workspace's queue, beside its run folders and summary.json
FORMAT = "ssl_studio.sweep/1"
MAX_VARIED = 2
LOCK_TIMEOUT_S = 30.0  # a lock is held for a read and a write of a small file; longer means a stuck file system
NOT_VARIED = {"method": "choose the methods instead", "seed": "give a number of seeds instead"}


class SweepError(UserError):
    """A sweep cannot be planned or its queue cannot be read or written."""



@dataclass(frozen=True)
class Vary:
    """One setting to vary: its name as the settings files spell it (``lr``, ``params.temperature``,
    ``recipe.crop_scale``) and its values."""

    setting: str
    values: tuple

    @property
    def short(self) -> str:
        return self.setting.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Sweep:
    """What to train. ``config`` is the Train page's settings (its params apply to its own method); ``params``
    are method settings given for every method that has them; ``recipe`` one recipe for every method (None: each
    method's own), with ``recipe_changes`` on top; ``transfer`` None skips the transfer stage. ``given``: what the
    person chose (core/folder_defaults.py): every run takes the folder's choice for the other settings, as
    `ssl-studio run` does, and a varied setting counts as chosen; None: every run has the settings as they are."""

    data_dir: Path
    config: TrainConfig
    methods: tuple[str, ...]
    vary: tuple[Vary, ...] = ()
    seeds: int = 1
    params: dict = field(default_factory=dict)
    recipe: Recipe | None = None
    recipe_changes: dict = field(default_factory=dict)
    transfer: TransferConfig | None = field(default_factory=TransferConfig)
    use_umap: bool = True
    given: Given | None = None


@dataclass(frozen=True)
class PlannedRun:
    name: str  # its run folder, inside the workspace
    config: TrainConfig
    recipe: Recipe
    varied: dict  # setting -> value, as this run has it (the method too)
    baselines: str  # pipeline.baseline_key: runs with the same one share their baselines
    given: Given | None = None  # the settings the folder's choice leaves as they are; None: all of them


@dataclass(frozen=True)
class Estimate:
    runs: int
    ssl_trainings: int
    baseline_trainings: int  # supervised baselines, one per distinct baseline key (on a labeled folder)
    seconds: float | None  # training time from the budgets; None when a budget counts epochs or steps
    labeled: bool | None  # whether the folder has classes (a supervised baseline); None: not known yet
    transfer: bool = True  # each run has a transfer stage

    def text(self) -> str:
        shared = (f"{self.baseline_trainings} supervised baseline(s), each shared by the runs of its seed and "
                  "settings" if self.labeled is not False else "no supervised baseline (an unlabeled folder)")
        if self.seconds is None:
            time = "the time depends on the speed (a budget in epochs)"
        else:
            time = f"about {_duration(self.seconds)} of training from the budgets"
        extra = "embedding, maps and the transfer stage" if self.transfer else "embedding and maps"
        return (f"{self.runs} run(s): {self.ssl_trainings} self-supervised trainings and {shared}; the untrained "
                f"network and pixel space are shared too. {time[0].upper()}{time[1:]}, plus {extra} for each run.")


def _duration(seconds: float) -> str:
    minutes = seconds / 60
    if minutes < 2:
        return f"{seconds:.0f} s"
    return f"{minutes:.1f}".rstrip("0").rstrip(".") + " min" if minutes < 120 else f"{minutes / 60:.1f} h"


# --- settings ----------------------------------------------------------------------------------------------------


def settings_names(methods: tuple[str, ...]) -> list[str]:
    """Every setting a sweep of ``methods`` can vary, as ``resolve_setting`` accepts them."""
    general = [name for name in fields_by_name(TrainConfig) if name not in NOT_VARIED]
    params = sorted({f"params.{name}" for m in methods for name in fields_by_name(method_class(m).Params)})
    return general + params + [f"recipe.{name}" for name in fields_by_name(Recipe)]


def resolve_setting(name: str, methods: tuple[str, ...]) -> str:
    """The setting's full name (``lr``, ``params.temperature``, ``recipe.crop_scale``): a bare name is looked up
    among the training settings, the methods' own and the recipe's; refused naming it when it is none or several."""
    name = name.strip()
    if name in NOT_VARIED:
        raise SweepError(f"'{name}' is not varied with --vary: {NOT_VARIED[name]}")
    known = settings_names(methods)
    if name in known:
        return name
    found = [full for full in known if full.rsplit(".", 1)[-1] == name]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise SweepError(f"'{name}' is ambiguous: say {' or '.join(found)}")
    raise SweepError(f"unknown setting '{name}' for the methods {', '.join(methods)} (choose from "
                     f"{', '.join(known)})")


def _owner(full: str, methods: tuple[str, ...]) -> type:
    """The settings class a full setting name belongs to."""
    kind, _, name = full.rpartition(".")
    if kind == "recipe":
        return Recipe
    if kind == "params":
        return next(method_class(m).Params for m in methods if name in fields_by_name(method_class(m).Params))
    return TrainConfig


def _setting_type(full: str, methods: tuple[str, ...]) -> type:
    return field_types(_owner(full, methods))[full.rpartition(".")[2]]


def setting_title(full: str, methods: tuple[str, ...]) -> str:
    """'Learning rate (lr)', 'Temperature (params.temperature)': a setting as a list of them shows it."""
    return f"{info(fields_by_name(_owner(full, methods))[full.rpartition('.')[2]]).title} ({full})"


def parse_vary(text: str, methods: tuple[str, ...]) -> Vary:
    """``SETTING=v1,v2``: values separated by commas (a pair's two numbers by a colon, crop_scale=0.2:1,0.5:1)."""
    setting, sep, values = text.partition("=")
    if not sep or not values.strip():
        raise SweepError(f"--vary {text!r}: write SETTING=v1,v2")
    full = resolve_setting(setting, methods)
    kind = _setting_type(full, methods)
    parsed = []
    for value in (v.strip() for v in values.split(",")):
        try:
            parsed.append(_parse_value(value, kind))
        except ValueError:
            raise SweepError(f"{full}={value}: not a {_type_name(kind)}") from None
    if len(set(map(repr, parsed))) != len(parsed):
        raise SweepError(f"{full}: a value is given twice")
    return Vary(full, tuple(parsed))


def _parse_value(text: str, kind):
    if typing.get_origin(kind) is tuple:
        each = typing.get_args(kind)[0]
        return tuple(each(part) for part in text.split(":"))
    if kind is bool:
        if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(text)
        return text.lower() in ("true", "1", "yes")
    if kind is int:
        return int(text)
    return kind(text)


def _type_name(kind) -> str:
    if typing.get_origin(kind) is tuple:
        return "pair of numbers written MIN:MAX"
    return {int: "whole number", float: "number", bool: "true or false", str: "text"}[kind]


def _shown(value) -> str:
    if isinstance(value, tuple):
        return ":".join(_shown(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


# --- expansion ---------------------------------------------------------------------------------------------------


def expand(sweep: Sweep) -> list[PlannedRun]:
    """Every run of the sweep, each one's settings checked: a bad one is refused naming the setting and value."""
    if not sweep.methods:
        raise SweepError("choose at least one method")
    known = method_names(self_supervised=True)
    for method in sweep.methods:
        if method not in known:
            raise SweepError(f"unknown method '{method}' (choose from {', '.join(known)})")
    if len(set(sweep.methods)) != len(sweep.methods):
        raise SweepError("a method is named twice")
    if len(sweep.vary) > MAX_VARIED:
        raise SweepError(f"vary at most {MAX_VARIED} settings (a grid of more is hard to read)")
    if len({v.setting for v in sweep.vary}) != len(sweep.vary):
        raise SweepError("a setting is varied twice")
    if not isinstance(sweep.seeds, int) or not 1 <= sweep.seeds <= 100:
        raise SweepError(f"the number of seeds must be a whole number from 1 to 100 (got {sweep.seeds})")
    for name in sweep.params:
        if not any(name in fields_by_name(method_class(m).Params) for m in sweep.methods):
            raise SweepError(f"the method setting '{name}' belongs to none of {', '.join(sweep.methods)}")
    for vary in sweep.vary:
        kind, _, name = vary.setting.rpartition(".")
        missing = [m for m in sweep.methods if kind == "params" and name not in fields_by_name(method_class(m).Params)]
        if missing:
            raise SweepError(f"{vary.setting} is not a setting of {', '.join(missing)}: sweep those methods "
                             "separately")
    runs = []
    for seed in range(sweep.config.seed, sweep.config.seed + sweep.seeds):
        for method in sweep.methods:
            for values in itertools.product(*(v.values for v in sweep.vary)):
                changes = dict(zip((v.setting for v in sweep.vary), values))
                config, recipe = _settings(sweep, method, seed, changes)
                name = "-".join([method, *(f"{v.short}{_shown(x)}" for v, x in zip(sweep.vary, values)),
                                 f"seed{seed}"])
                runs.append(PlannedRun(re.sub(r"[^A-Za-z0-9._-]", "_", name), config, recipe,
                                       {"method": method, **changes}, baseline_key(sweep.data_dir, config),
                                       _given(sweep.given, changes)))
    return runs


def _given(given: Given | None, changes: dict) -> Given | None:
    """``given`` and the varied settings: what the folder's choice must leave as the sweep sets it."""
    if given is None:
        return None
    varied = [full.rpartition(".") for full in changes]
    return Given(given.train | {name for kind, _, name in varied if not kind},
                 given.recipe | {name for kind, _, name in varied if kind == "recipe"}, given.whole_recipe)


def _settings(sweep: Sweep, method: str, seed: int, changes: dict) -> tuple[TrainConfig, Recipe]:
    where = ", ".join(f"{k}={_shown(v)}" for k, v in changes.items())
    try:
        config = sweep.config.replace(method=method, seed=seed)
        own = fields_by_name(config.params)
        params = {**config.params.to_dict(), **{k: v for k, v in sweep.params.items() if k in own}}
        recipe = (sweep.recipe or default_recipe(method)).replace(**sweep.recipe_changes)
        for full, value in changes.items():
            kind, _, name = full.rpartition(".")
            if kind == "params":
                params[name] = value
            elif kind == "recipe":
                recipe = recipe.replace(**{name: value})
            elif name in ("epochs", "time_budget"):  # the budget varied: its unit is the one varied
                config = config.replace(**{"epochs": None, "time_budget": None, name: value})
            else:
                config = config.replace(**{name: value})
        config = config.replace(params=config.params.from_dict(params, f"{method} method"))
    except ValueError as exc:
        raise SweepError(f"{method}" + (f" with {where}" if where else "") + f": {exc}") from exc
    return config, recipe


def estimate(runs: list[PlannedRun], sweep: Sweep, labeled: bool | None = None) -> Estimate:
    keys = {run.baselines for run in runs}
    baselines = 0 if labeled is False else len(keys)
    seconds: float | None = 0.0
    for run in runs:
        if run.config.time_budget is None:
            seconds = None
            break
        seconds += run.config.time_budget
    if seconds is not None:
        by_key = {run.baselines: run.config.time_budget for run in runs}
        seconds += sum(by_key.values()) if baselines else 0.0
        if sweep.transfer is not None and sweep.transfer.finetune_budget is not None:
            fine = sweep.transfer.finetune_budget
            per_run = 2 * sum(fine if len(fine) > 1 else fine * len(sweep.transfer.finetune_fractions))
            seconds += per_run * len(runs)  # from SSL and from scratch, each fraction
    return Estimate(len(runs), len(runs), baselines, seconds, labeled, sweep.transfer is not None)


# --- the queue ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One run of the queue, as the queue file holds it."""

    name: str
    data: str
    config: dict
    recipe: dict
    transfer: dict | None
    use_umap: bool
    baselines: str
    given: dict | None = None  # PlannedRun.given as JSON (lists of names)
    state: str = "queued"  # queued, running, finished, failed
    reason: str | None = None
    pid: int | None = None
    host: str | None = None
    started: str | None = None  # the taking process's start time, so a reused pid is not taken for it

    def to_dict(self) -> dict:
        return dict(vars(self))


STATES = ("queued", "running", "finished", "failed")


def _process_start(pid: int) -> str | None:
    """The process's start time as the kernel counts it (Linux), or None where it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    now = _process_start(pid)
    return started is None or now is None or now == started


class Queue:
    """The workspace's queue file, read and changed under its lock."""

    def __init__(self, workspace: str | Path) -> None:
        self.workspace = Path(workspace)
        self.path = self.workspace / QUEUE
        self._lock = FileLock(str(self.path) + ".lock", timeout=LOCK_TIMEOUT_S)

    @classmethod
    def exists(cls, workspace: str | Path) -> bool:
        return (Path(workspace) / QUEUE).is_file()

    def add(self, sweep: Sweep, runs: list[PlannedRun]) -> list[Job]:
        """Queue the runs, each renamed where a folder or job of its name exists; refused while the workspace has
        unfinished jobs of an earlier sweep (resume or finish them first)."""
        try:
            self.workspace.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SweepError(f"cannot make the workspace {self.workspace}: {exc.strerror or exc}") from exc
        with self._locked():
            jobs = self._read() if self.path.exists() else []
            waiting = [j for j in jobs if j.state in ("queued", "running")]
            if waiting:
                raise SweepError(f"{self.workspace} still has {len(waiting)} unfinished run(s) of an earlier sweep: "
                                 "resume them, or give another workspace")
            taken = {j.name for j in jobs}
            added = []
            for run in runs:
                name, k = run.name, 2
                while name in taken or (self.workspace / name).exists():
                    name, k = f"{run.name}-{k}", k + 1
                taken.add(name)
                added.append(Job(name, str(Path(sweep.data_dir).resolve()), run.config.to_dict(),
                                 run.recipe.to_dict(), sweep.transfer.to_dict() if sweep.transfer else None,
                                 sweep.use_umap, run.baselines, run.given.to_dict() if run.given else None))
            self._write(jobs + added)
        return added

    def jobs(self) -> list[Job]:
        with self._locked():
            return self._read()

    def take(self) -> Job | None:
        """The first queued job, marked running by this process; None when none is left. Jobs left running by a
        process of this host that has ended go back to the queue first."""
        with self._locked():
            jobs = self._read()
            host = socket.gethostname()
            for k, job in enumerate(jobs):
                if job.state == "running" and job.host == host and not _alive(job.pid, job.started):
                    jobs[k] = _with(job, state="queued", pid=None, host=None, started=None,
                                    reason=f"its process ({job.pid}) ended before it finished; taken again")
            k = next((k for k, job in enumerate(jobs) if job.state == "queued"), None)
            if k is not None:
                jobs[k] = _with(jobs[k], state="running", pid=os.getpid(), host=host,
                                started=_process_start(os.getpid()))
            self._write(jobs)
            return jobs[k] if k is not None else None

    def end(self, name: str, state: str, reason: str | None = None) -> None:
        """``state``: finished, failed (with the reason) or queued again (a cancelled run, resumed later)."""
        with self._locked():
            jobs = self._read()
            jobs = [_with(j, state=state, reason=reason, pid=None, host=None, started=None) if j.name == name else j
                    for j in jobs]
            self._write(jobs)

    def baseline_source(self, job: Job) -> RunFolder | None:
        """A finished run of the queue with the same baselines, whose folder this job may take them from."""
        for other in self.jobs():
            if other.name != job.name and other.baselines == job.baselines and other.state == "finished" \
                    and is_run_folder(self.workspace / other.name):
                return RunFolder(self.workspace / other.name)
        return None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self._lock.acquire()
        except Timeout:
            raise SweepError(f"{self.path.name}.lock in {self.workspace} stayed locked for {LOCK_TIMEOUT_S:.0f} s: "
                             "another process holds the queue") from None
        try:
            yield
        finally:
            self._lock.release()

    def _read(self) -> list[Job]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SweepError(f"{self.workspace} has no sweep queue ({QUEUE})") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SweepError(f"{QUEUE} in {self.workspace} is not valid JSON ({exc})") from exc
        try:
            if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("jobs"), list):
                raise ValueError(f"it needs the format tag {FORMAT} and a list of jobs")
            jobs = [_job(j) for j in data["jobs"]]
        except (TypeError, ValueError) as exc:
            raise SweepError(f"{QUEUE} in {self.workspace} is not valid: {exc}") from exc
        if len({j.name for j in jobs}) != len(jobs):
            raise SweepError(f"{QUEUE} in {self.workspace} is not valid: two jobs have one name")
        return jobs

    def _write(self, jobs: list[Job]) -> None:
        try:
            write_json_atomic(self.path, {"format": FORMAT, "jobs": [j.to_dict() for j in jobs]})
        except OSError as exc:
            raise SweepError(f"cannot write {QUEUE} in {self.workspace}: {exc.strerror or exc}") from exc


def _with(job: Job, **changes) -> Job:
    return Job(**{**job.to_dict(), **changes})


def _job(data) -> Job:
    if not isinstance(data, dict):
        raise ValueError("a job must be an object")
    job = Job(**data)  # an unknown or missing key: TypeError, naming it
    if not isinstance(job.name, str) or not re.fullmatch(r"[A-Za-z0-9._-]+", job.name) or job.name.startswith("."):
        raise ValueError(f"job name {job.name!r} is not a folder name")
    kinds = {"data": str, "config": dict, "recipe": dict, "transfer": (dict, type(None)), "use_umap": bool,
             "baselines": str, "given": (dict, type(None)), "reason": (str, type(None)), "pid": (int, type(None)),
             "host": (str, type(None)), "started": (str, type(None))}
    wrong = [key for key, kind in kinds.items() if not isinstance(getattr(job, key), kind)]
    if wrong:
        raise ValueError(f"job {job.name}: {', '.join(wrong)} of the wrong type")
    given = job.given
    names = lambda key: isinstance(given[key], list) and all(isinstance(n, str) for n in given[key])  # noqa: E731
    if given is not None and (set(given) != {"train", "recipe", "whole_recipe"} or not names("train")
                              or not names("recipe") or not isinstance(given["whole_recipe"], bool)):
        raise ValueError(f"job {job.name}: given must hold lists of names (train, recipe) and whole_recipe")
    if job.state not in STATES:
        raise ValueError(f"job {job.name}: state {job.state!r} is not one of {', '.join(STATES)}")
    return job


# --- running -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunStarted:
    """A job of the queue begins (or continues from its checkpoint)."""

    name: str
    number: int  # of the jobs this process has taken, from 1
    left: int  # queued after it
    resumed: bool


@dataclass(frozen=True)
class RunEnded:
    name: str
    state: str  # finished, failed, or queued (cancelled: it continues on resume)
    reason: str | None = None


@dataclass(frozen=True)
class SweepFinished:
    workspace: Path
    summary: dict  # workspace.summarize's: groups and verdict


def run_queue(workspace: str | Path, *, cancel: CancelToken | None = None) -> Iterator:
    """Train the queue's jobs one after another until none is left, then summarize the workspace. A run that
    fails is marked failed with its reason and the next one starts; a cancel stops the current run at its
    checkpoint and puts it back in the queue."""
    cancel = cancel or CancelToken()
    queue = Queue(workspace)
    number = 0
    while not cancel.cancelled:
        job = queue.take()
        if job is None:
            break
        number += 1
        folder = queue.workspace / job.name
        resumed = holds_run_files(folder)
        left = sum(j.state == "queued" for j in queue.jobs())
        yield RunStarted(job.name, number, left, resumed)
        try:
            config, recipe = TrainConfig.from_dict(job.config), Recipe.from_dict(job.recipe)
            transfer = TransferConfig.from_dict(job.transfer) if job.transfer is not None else None
            given = Given.from_dict(job.given) if job.given is not None else None
            yield from run_pipeline(job.data, folder, config, recipe, cancel=cancel, resume=resumed,
                                    use_umap=job.use_umap, transfer=transfer,
                                    skip=("transfer",) if transfer is None else (), given=given,
                                    baselines=queue.baseline_source(job))
        except Cancelled:
            pass
        except Exception as exc:  # noqa: BLE001 - one run's failure, whatever it is, must not stop the others
            reason = error_text(exc)
            queue.end(job.name, "failed", reason or type(exc).__name__)
            yield RunEnded(job.name, "failed", reason)
            continue
        if cancel.cancelled:
            queue.end(job.name, "queued", "cancelled; resuming continues it from its checkpoint")
            yield RunEnded(job.name, "queued", "cancelled")
            raise Cancelled()
        queue.end(job.name, "finished")
        yield RunEnded(job.name, "finished")
    if cancel.cancelled:
        raise Cancelled()
    yield StageStarted("summary", f"Summarizing the runs of {queue.workspace}")
    _, summary = summarize(queue.workspace)
    finished = SweepFinished(queue.workspace, summary)
    yield finished
    return finished
