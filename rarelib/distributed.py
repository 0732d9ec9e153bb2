"""The Dask runner: replica sets and direct-sampling batches as independent tasks, in-process or on a cluster.

A :class:`Plan` names a model (anything :func:`rarelib.models.load` reads), a prompt, a completion
length, an observable and the work: ``n_sets`` replica sets — each a whole parallel-tempering ladder
(:func:`rarelib.tps.run_tempering`, swaps inside the task) with its own seed — and ``n_direct``
i.i.d. completions (:func:`rarelib.direct.sample`) in tasks of ``direct_per_task``. Each task is a
pure function of (plan, index): it writes its checkpoint and its result into the run folder, which every
worker must see (a shared file system on a cluster), and returns only the path. :func:`run` with
``client=None`` (default) runs the tasks in this process, in order; with a ``dask.distributed.Client`` it
submits them. :func:`load_runs` gathers the results for one MBAR analysis
(:func:`rarelib.reweighting.analyze`).

Seeds: task ``i`` of kind ``k`` (0: replica sets, 1: direct batches) gets the first 63 bits of
``numpy.random.SeedSequence(plan.seed, spawn_key=(k, i))`` (:func:`task_seed`), i.e. of
``SeedSequence(plan.seed).spawn(…)`` children keyed by kind and index: independent streams whatever the
number of tasks, so the same plan gives bit-identical results wherever it runs on the same kind of machine
with the same torch thread count (Dask's workers, and :func:`make_client`'s, run one).

Run folder: ``manifest.json`` (the plan, the model's fingerprint, the library version and the folder
format; a folder written otherwise is refused), ``tempering_<i>.npz`` (checkpoint) and
``tempering_<i>.nc`` (result, netCDF), ``direct_<i>/`` (resumable ``.npz`` batches), and
``<task>.attempts.jsonl`` (one line per start of a task: where it ran and how far it had got before), and a
``.lock`` file per task.

Faults: arguments are checked here, before anything is submitted, so a bad model, prompt or observable
fails at once with the library's own message, and tasks run with ``retries=0``. A worker that dies
mid-task is not a user error: the scheduler reschedules its task (up to ``distributed.scheduler.
allowed-failures`` times, default 3), and the task resumes from its checkpoint, giving the result an
uninterrupted run gives.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rarelib import __version__, direct, models, storage, tps, workflow
from rarelib import observables as obs
from rarelib.generation import check_completion_length, check_positive_int, check_seed, prompt_token_ids

__all__ = [
    "check_plan",
    "CLUSTER_FORMS",
    "direct_task",
    "DIRECT",
    "FOLDER_FORMAT",
    "load_runs",
    "make_client",
    "manifest",
    "MANIFEST",
    "open_folder",
    "parse_spec",
    "Plan",
    "run",
    "SLURM_OPTIONS",
    "slurm_cluster",
    "task_paths",
    "task_seed",
    "TEMPERING",
    "tempering_task",
]

TEMPERING, DIRECT = "tempering", "direct"
_KIND_KEYS = {TEMPERING: 0, DIRECT: 1}
MANIFEST = "manifest.json"
FOLDER_FORMAT = 1
CLUSTER_FORMS = ("local:N", "slurm", "tcp://host:port")
SLURM_OPTIONS = ("jobs", "cores", "memory", "walltime", "queue", "account")


@dataclass(frozen=True)
class Plan:
    """Everything a distributed run depends on except where it runs (JSON-serialisable, recorded in the manifest).

    model: a name :func:`rarelib.models.load` accepts (``"default"``, a folder, a cached hub id);
    observable: a registered name (workers rebuild it by name); biases: (K,) the ladder of every replica
    set; n_sets replica sets of n_chains chains × n_steps steps; n_direct direct completions in tasks of
    direct_per_task; guide: one of :data:`rarelib.workflow.BOOK_GUIDES` or None (forward shooting).
    """

    model: str
    prompt: str
    completion_length: int
    observable: str
    biases: tuple[float, ...] = ()
    n_steps: int = 100
    n_chains: int = 2
    n_sets: int = 0
    n_direct: int = 0
    direct_per_task: int = 10_000
    seed: int = 0
    swap_every: int = 1
    record: tuple[str, ...] = tps.DEFAULT_RECORD
    guide: str | None = None
    start: str = "overdispersed"
    checkpoint_every: int = 100
    batch_size: int = 64

    def __post_init__(self):
        """Checks what needs no model (:func:`check_plan` checks the rest); normalises paths and sequences."""
        if isinstance(self.model, os.PathLike):
            object.__setattr__(self, "model", os.fspath(self.model))
        for name in ("model", "prompt", "observable"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be non-empty text (workers rebuild it by name); got {value!r}")
        for name in ("n_sets", "n_direct"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer ≥ 0; got {value!r}")
        if self.n_sets + self.n_direct == 0:
            raise ValueError("a plan needs work: n_sets ≥ 1 replica sets or n_direct ≥ 1 direct completions")
        counts = ("n_steps", "n_chains", "swap_every", "checkpoint_every") if self.n_sets else ()
        for name in counts + (("direct_per_task", "batch_size") if self.n_direct else ()):
            check_positive_int(name, getattr(self, name))
        if self.n_sets and self.start not in tps.START_RULES:
            raise ValueError(f"start must be one of {tps.START_RULES}; got {self.start!r}")
        check_seed(self.seed)
        biases = tps.check_biases(self.biases) if self.n_sets else self.biases
        object.__setattr__(self, "biases", tuple(float(b) for b in biases))
        if not isinstance(self.record, str):  # a string is refused by name in check_plan
            object.__setattr__(self, "record", tuple(self.record))

    @property
    def tasks(self) -> list[tuple[str, int]]:
        """(kind, index) of every task: the replica sets, then the direct batches."""
        n_batches = math.ceil(self.n_direct / self.direct_per_task) if self.n_direct else 0
        return [(TEMPERING, i) for i in range(self.n_sets)] + [(DIRECT, i) for i in range(n_batches)]

    def direct_count(self, index: int) -> int:
        """Completions drawn by direct task ``index``: direct_per_task, the last one the remainder."""
        return min(self.direct_per_task, self.n_direct - index * self.direct_per_task)

    def direct_observables(self) -> list[str]:
        """What direct tasks record: the observable, then the recorded ones."""
        return list(dict.fromkeys((self.observable, *self.record)))


def task_seed(seed: int, kind: str, index: int) -> int:
    """The seed of task ``index`` of ``kind``: 63 bits of ``SeedSequence(seed, spawn_key=(kind key, index))``."""
    words = np.random.SeedSequence(check_seed(seed), spawn_key=(_KIND_KEYS[kind], index)).generate_state(2, np.uint32)
    return (int(words[0]) << 31) ^ int(words[1])


def task_paths(folder: str | os.PathLike, kind: str, index: int) -> tuple[Path, Path]:
    """(checkpoint, result) of a task: ``tempering_<i>.npz`` and ``.nc``; a direct task's batch folder is both."""
    stem = Path(folder) / f"{kind}_{index:04d}"
    return (stem.with_suffix(".npz"), stem.with_suffix(".nc")) if kind == TEMPERING else (stem, stem)


# --------------------------------------------------------------------------- checks and the run folder


@functools.lru_cache(maxsize=4)
def _model(name: str) -> models.CausalLM:
    """The model ``name``, loaded once per process (a worker runs many tasks of one model)."""
    return models.load(name)


def check_plan(plan: Plan) -> models.CausalLM:
    """Check everything a task would check, here, before submitting (ValueError/FileNotFoundError naming the
    argument); returns the loaded model."""
    if not isinstance(plan, Plan):
        raise ValueError(f"plan must be a distributed.Plan; got {type(plan).__name__}")
    lm = _model(plan.model)
    obs.get_observable(plan.observable)
    length = check_completion_length(lm, len(prompt_token_ids(lm, plan.prompt)), plan.completion_length)
    if plan.n_sets:
        move = workflow.guided_move(lm, plan.guide)
        tps.build_kernel(lm, plan.prompt, length, plan.observable, plan.record, move, plan.biases)
    if plan.n_direct:
        obs.get_observables(plan.direct_observables())
    return lm


def manifest(plan: Plan, lm: models.CausalLM) -> dict:
    """What a run folder must have been written with, as JSON values."""
    config = {
        "format": FOLDER_FORMAT,
        "rarelib_version": __version__,
        storage.FINGERPRINT_KEY: models.fingerprint(lm),
        **dataclasses.asdict(plan),
    }
    return json.loads(json.dumps(config))


def _read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"no {MANIFEST} in {folder}: not a run folder of distributed.run; check the path")
    try:
        saved = json.loads(path.read_text())
    except ValueError:
        saved = None
    if not isinstance(saved, dict):
        raise ValueError(f"{path} is not a JSON object, so rarelib did not write it; delete the folder and re-run")
    return saved


def open_folder(folder: str | os.PathLike, expected: dict) -> Path:
    """The run folder, created with manifest ``expected`` if new; ValueError naming the folder and every difference
    if it was written with another plan, model or library version, or holds files but no manifest."""
    folder = storage.check_folder_path("folder", folder)
    if (folder / MANIFEST).is_file():
        storage.check_same_config(_read_manifest(folder), expected, f"run folder {folder}")
        return folder
    if folder.is_dir() and any(folder.iterdir()):
        raise ValueError(f"folder={str(folder)!r} holds files but no {MANIFEST}; pass a new or empty folder")
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(expected, indent=2) + "\n")
    os.replace(tmp, folder / MANIFEST)
    return folder


# --------------------------------------------------------------------------- tasks


def _log_attempt(folder: Path, kind: str, index: int, done_before: int) -> None:
    """Append where this attempt runs and how far the task had got (steps or batches) to its attempts log."""
    line = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "done_before": done_before})
    with open(folder / f"{kind}_{index:04d}.attempts.jsonl", "a") as handle:
        handle.write(line + "\n")


def tempering_task(folder: str, plan: Plan, index: int) -> str:
    """Replica set ``index``: a whole tempering ladder, checkpointed and resumed; returns its netCDF path.

    Holds a lock on the result (:func:`rarelib.workflow.exclusive`), so a task presumed lost but still running
    elsewhere never writes the same files as its replacement."""
    checkpoint, result = task_paths(folder, TEMPERING, index)
    with workflow.exclusive(result):
        if result.is_file():
            return str(result)
        done = int(storage.load_arrays(checkpoint, ("steps_done",))["steps_done"]) if checkpoint.is_file() else 0
        _log_attempt(Path(folder), TEMPERING, index, done)
        lm = _model(plan.model)
        idata = tps.run_tempering(
            lm,
            plan.prompt,
            plan.completion_length,
            plan.observable,
            plan.biases,
            plan.n_steps,
            plan.n_chains,
            swap_every=plan.swap_every,
            seed=task_seed(plan.seed, TEMPERING, index),
            record=plan.record,
            move=workflow.guided_move(lm, plan.guide),
            start=plan.start,
            checkpoint=checkpoint,
            checkpoint_every=plan.checkpoint_every,
            progress=False,
        )
        return str(storage.save(idata, result))


def direct_task(folder: str, plan: Plan, index: int) -> str:
    """Direct batch ``index``: :func:`rarelib.direct.sample` streamed to (and resumed from) its folder, locked as
    in :func:`tempering_task`."""
    out, _ = task_paths(folder, DIRECT, index)
    with workflow.exclusive(out):
        _log_attempt(Path(folder), DIRECT, index, len(list(out.glob("batch_*.npz"))))
        direct.sample(
            _model(plan.model),
            plan.prompt,
            plan.direct_count(index),
            plan.completion_length,
            observables=plan.direct_observables(),
            batch_size=plan.batch_size,
            seed=task_seed(plan.seed, DIRECT, index),
            progress=False,
            out=out,
        )
    return str(out)


_TASKS = {TEMPERING: tempering_task, DIRECT: direct_task}


def run(plan: Plan, folder: str | os.PathLike, client=None) -> list[Path]:
    """Run every task of ``plan`` into ``folder``; returns the result paths (replica sets, then direct batches).

    client: None (default) runs the tasks here, one after the other; a ``dask.distributed.Client`` submits them
    (``retries=0``) and waits; the first task error cancels the rest and is raised. Calling again with the same
    plan and folder resumes: finished tasks are reused, interrupted ones continue from their checkpoints.
    """
    lm = check_plan(plan)
    folder = open_folder(folder, manifest(plan, lm))
    if client is None:
        return [Path(_TASKS[kind](str(folder), plan, index)) for kind, index in plan.tasks]
    label = uuid.uuid4().hex[:8]
    futures = [
        client.submit(_TASKS[kind], str(folder), plan, index, retries=0, key=f"rarelib-{kind}-{index}-{label}")
        for kind, index in plan.tasks
    ]
    try:
        return [Path(path) for path in client.gather(futures)]
    finally:
        client.cancel(futures)


def load_runs(folder: str | os.PathLike) -> list:
    """The results of a finished run folder as ``InferenceData`` (storage layout): one per replica set, then one
    per direct batch (λ = 0); pass them to :func:`rarelib.reweighting.analyze`. ValueError if the folder was
    written by another library version or is unfinished."""
    folder = Path(folder)
    saved = _read_manifest(folder)
    if saved.get("rarelib_version") != __version__ or saved.get("format") != FOLDER_FORMAT:
        raise ValueError(
            f"run folder {folder} was written by rarelib {saved.get('rarelib_version')!r} (folder format "
            f"{saved.get('format')!r}); this is {__version__!r} (format {FOLDER_FORMAT}): re-run it"
        )
    plan = Plan(**{field.name: saved[field.name] for field in dataclasses.fields(Plan)})
    missing = [kind for kind, index in plan.tasks if not task_paths(folder, kind, index)[1].exists()]
    if missing:
        raise ValueError(
            f"run folder {folder} holds {len(plan.tasks) - len(missing)} of {len(plan.tasks)} results; call "
            "distributed.run with the same plan and folder to finish it"
        )
    return [_load_result(kind, task_paths(folder, kind, index)[1], plan.observable) for kind, index in plan.tasks]


def _load_result(kind: str, result: Path, observable: str):
    """One task's result as ``InferenceData``: a replica set's netCDF, or a direct batch folder's samples."""
    if kind == TEMPERING:
        return storage.load(result)
    return direct.to_inference_data(direct.load(result, per_token=False), observable)


# --------------------------------------------------------------------------- clusters


def parse_spec(spec: str) -> tuple[str, int | str | None]:
    """``"local:N"`` → ("local", N); ``"slurm"`` → ("slurm", None); ``"tcp://host:port"`` → ("scheduler", spec)."""
    text = spec if isinstance(spec, str) else ""
    count = text.removeprefix("local:")
    if text.startswith("local:") and count.isdigit() and int(count) >= 1:
        return "local", int(count)
    if text == "slurm":
        return "slurm", None
    host, _, port = text.removeprefix("tcp://").rpartition(":")
    if text.startswith("tcp://") and host and port.isdigit():
        return "scheduler", text
    raise ValueError(
        f"cluster must be one of {CLUSTER_FORMS} (e.g. 'local:2', 'slurm', 'tcp://10.0.0.5:8786'); got {spec!r}"
    )


def slurm_cluster(
    cores: int = 1, memory: str = "4GiB", walltime: str = "01:00:00", queue: str | None = None, account=None
):
    """A ``dask_jobqueue.SLURMCluster`` of jobs with ``cores`` single-threaded workers each (none started yet)."""
    from dask_jobqueue import SLURMCluster

    cores = check_positive_int("cores", cores)
    return SLURMCluster(
        cores=cores,
        processes=cores,
        memory=memory,
        walltime=walltime,
        queue=queue,
        account=account,
        job_script_prologue=["export OMP_NUM_THREADS=1"],
    )


def make_client(spec: str, **options):
    """A ``dask.distributed.Client`` for ``spec`` (:data:`CLUSTER_FORMS`), the command line's ``--cluster``.

    ``"local:N"``: a LocalCluster of N single-threaded worker processes, closed with the client (option:
    ``dashboard_address``, default any free port). ``"slurm"``: :func:`slurm_cluster` scaled to ``jobs`` (default
    1) with the other :data:`SLURM_OPTIONS`; close ``client.cluster`` when done. ``"tcp://host:port"``: a running
    scheduler. Options set to None are ignored, so a CLI can pass its flags through. The client is not made
    Dask's default (``set_as_default=False``): :func:`run` hands it its tasks, and nothing else in the process —
    xarray writing netCDF, say — is routed to a cluster, during its life or after it closes.
    """
    from dask.distributed import Client

    kind, value = parse_spec(spec)
    options = {name: value for name, value in options.items() if value is not None}
    allowed = {"local": ("dashboard_address",), "slurm": SLURM_OPTIONS, "scheduler": ()}[kind]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"options {unknown} do not apply to cluster {spec!r}; it takes {list(allowed) or 'none'}")
    if kind == "local":
        return Client(
            n_workers=value,
            threads_per_worker=1,
            processes=True,
            dashboard_address=options.get("dashboard_address", ":0"),
            silence_logs=logging.ERROR,
            set_as_default=False,
        )
    if kind == "scheduler":
        return Client(value, set_as_default=False)
    jobs = check_positive_int("jobs", options.pop("jobs", 1))
    cluster = slurm_cluster(**options)
    cluster.scale(jobs=jobs)
    return Client(cluster, set_as_default=False)
