"""Runs a Savu process list: check everything first (plugins, parameters, data), then run each plugin
over its input in chunks of slices spread over worker processes, writing each output to its own HDF5
file as Savu does. Memory stays bounded by (chunk size x chunks in flight), whatever the dataset size.

Savu semantics kept here: datasets flow by name (``in_datasets``/``out_datasets``, default: the
loader's dataset), tuned parameters (``"a;b;c"``) run every value and add a dimension per tuned
parameter, iterative loops (``iterate_plugin_groups``) feed the last plugin's output back to the first,
VoCentering's centre overrides the reconstruction's ``centre_of_rotation``, and a ``killsignal`` file
in the output folder stops the run after the current plugin.
"""
from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import math
import multiprocessing
import os
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from hebi_common import confine
from hebi_common.confine import clear_hdf5_prefixes
from hebi_common.sandbox import Roots, SandboxError
from hebi_common.savu.parameters import dataset_name_problem, is_tuning, run_value
from hebi_runner import output as out
from hebi_runner.errors import Killed, PluginRefused, RunnerError
from hebi_runner.loaders import LOADERS, LoadedData
from hebi_runner.plugins import ADAPTERS, Adapter, DataInfo
from hebi_runner.preview import PreviewError, preview_indices
from hebi_runner.tuning import combinations


@dataclass
class PluginSpec:
    """One process-list entry: Savu's class name and its parameters (missing ones take defaults)."""
    name: str
    params: dict[str, Any] = field(default_factory=dict)
    module: str = ""
    active: bool = True


@dataclass
class LoopSpec:
    start: int  # 1-based positions in the process list (the loader is 1), both included
    end: int
    iterations: int


@dataclass
class RunOptions:
    folder: str | None = None  # Savu's -f: output folder name instead of <timestamp>_<stem>
    preview: Any = None  # overrides the loader's preview (e.g. [":", "mid-1:mid+2", ":"])
    workers: int | None = None  # worker processes; default: the CPUs this process may use
    chunk_bytes: int = 128 * 1024 * 1024  # input bytes per chunk of slices
    echo: Callable[[str], None] | None = None  # also send user.log lines here (the CLI prints them)
    roots: Roots | None = None  # where the run may read and write; default: job_roots (HEBI_JOB_ROOTS)


@dataclass
class RunResult:
    status: str  # "completed" | "killed" | "failed"
    out_dir: Path
    nxs: Path | None
    outputs: dict[str, Path]  # final result per dataset name
    centre_of_rotation: np.ndarray | None
    elapsed: float
    error: str | None = None


@dataclass
class H5Reader:
    """Reads blocks of a plugin's output (optionally one tuning index of it)."""
    path: str
    dataset: str

    def read(self, axis: int, start: int, stop: int, tuning: tuple[int, ...] = ()) -> np.ndarray:
        selection = [slice(None)] * 3
        selection[axis] = slice(start, stop)
        with h5py.File(self.path, "r") as f:
            return f[self.dataset][tuple(selection) + tuple(tuning)]


@dataclass
class LoaderReader:
    reader: Any

    def read(self, axis: int, start: int, stop: int, tuning: tuple[int, ...] = ()) -> np.ndarray:
        return self.reader.read(axis, start, stop)


@dataclass
class DataState:
    """A named dataset between plugins."""
    info: DataInfo
    reader: Any
    tuning: list[tuple[str, list[Any]]] = field(default_factory=list)
    record: Any = None  # the WrittenDataset that holds it, if a plugin wrote it


@dataclass
class Step:
    position: int  # in the process list (loader = 1)
    number: int  # Savu's plugin number in file names (first plugin after the loaders = 1)
    spec: PluginSpec
    adapter: Adapter
    params: dict[str, Any]
    tuned: list[tuple[str, list[Any]]]
    combos: list[dict[str, Any]]
    in_names: list[str]
    out_names: list[str]


@dataclass
class Task:
    plugin: str
    params: dict[str, Any]
    reader: Any
    axis: int
    read: tuple[int, int]
    keep: tuple[int, int] | None  # slice of the result to keep along axis (drops overlap rows)
    tuning: tuple[int, ...]
    context: dict[str, Any]


def run_task(task: Task):
    """Runs in a worker: read a block, process it, return the result (None for image savers)."""
    block = task.reader.read(task.axis, task.read[0], task.read[1], task.tuning)
    result = ADAPTERS[task.plugin].process(block, task.params, task.context)
    info = {}
    if isinstance(result, tuple):
        result, info = result
    if result is not None and task.keep is not None and task.keep != (0, result.shape[task.axis]):
        index = [slice(None)] * result.ndim
        index[task.axis] = slice(*task.keep)
        result = result[tuple(index)]
    return result, info


def _init_worker() -> None:
    # One thread per worker: parallelism comes from the processes, and algotom's back-projector is
    # wrong with more than one numba thread (engine notes, gotcha 1).
    for name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"


def _warm_up(plugins: tuple[str, ...]) -> int:
    """Imports what the run's plugins need, once per worker, while the parent checks the data."""
    import scipy.ndimage  # noqa: F401
    if any(name in ("AstraReconCpu", "TomopyRecon", "ScikitimageFilterBackProjection") for name in plugins):
        import algotom.rec.reconstruction  # noqa: F401
    if any("Ring" in name or name == "RavenFilter" for name in plugins):
        import algotom.prep.removal  # noqa: F401
    return os.getpid()


def start_pool(workers: int, plugins: tuple[str, ...]) -> cf.ProcessPoolExecutor | None:
    """Starts the worker processes without waiting for them. They are spawned (a fresh interpreter
    each), not forked: a fork of a process that already used OpenMP (numba, BLAS) or holds an HDF5 file
    open is unsafe."""
    if workers <= 1:
        return None
    pool = cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                  initializer=_init_worker)
    for _ in range(workers):
        pool.submit(_warm_up, plugins)
    return pool


def _catalogue_defaults(name: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    from hebi_common.savu.catalogue import bundled_catalogue
    plugin = bundled_catalogue().get(name)
    if plugin is None:
        return {}, None
    return {p["name"]: p["default"] for p in plugin.parameters}, {
        "needs_gpu": plugin.needs_gpu, "module": plugin.module, "kind": plugin.kind,
        "definitions": {p["name"]: p for p in plugin.parameters}}


def _run_params(defaults: dict[str, Any], stored: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """Defaults, then the stored values as the editor reads them (hebi_common.savu.run_value)."""
    return {**defaults, **{k: run_value(v, definitions.get(k)) for k, v in stored.items()}}


def _dataset_problems(where: str, names: list[str]) -> list[str]:
    """Dataset names become file names: only Savu's plain identifiers (checked again here, whatever
    wrote the list)."""
    problems = []
    for name in names:
        problem = dataset_name_problem("dataset", name)
        if problem:
            problems.append(f"{where}: {problem}")
    return problems


# -- checking ----------------------------------------------------------------------------------------

def plan(plugins: list[PluginSpec], loops: list[LoopSpec]) -> tuple[PluginSpec, list[Step], list[LoopSpec]]:
    """Checks every plugin before any work and returns (loader, steps); all problems in one message."""
    problems: list[str] = []
    active = [(i + 1, p) for i, p in enumerate(plugins) if p.active]
    if not active:
        raise PluginRefused("the process list has no active plugin")
    position, loader = active[0]
    defaults, facts = _catalogue_defaults(loader.name)
    if facts is None or facts["kind"] != "loader":
        raise PluginRefused(f"plugin {position} ({loader.name}): the first plugin must be a loader "
                            f"(hebi's runner supports {', '.join(LOADERS)})")
    if loader.name not in LOADERS:
        raise PluginRefused(f"plugin {position} ({loader.name}): loader not supported by hebi's runner "
                            f"(supported: {', '.join(LOADERS)})")
    tuned = [name for name, value in loader.params.items() if is_tuning(name, value)]
    if tuned:
        raise PluginRefused(f"plugin {position} ({loader.name}): the loader's parameter '{tuned[0]}' cannot be "
                            "tuned (tuning is for processing plugins)")
    loader = PluginSpec(loader.name, _run_params(defaults, loader.params, facts["definitions"]),
                        loader.module or facts["module"])
    steps: list[Step] = []
    main_name = str(loader.params.get("name") or loader.params.get("dataset_name") or "tomo")
    problems += _dataset_problems(f"plugin {position} ({loader.name})", [main_name])
    for position, spec in active[1:]:
        defaults, facts = _catalogue_defaults(spec.name)
        where = f"plugin {position} ({spec.name})"
        if facts is None:
            problems.append(f"{where}: not a Savu plugin hebi knows (not in the plugin catalogue)")
            continue
        if facts["kind"] == "loader":
            problems.append(f"{where}: all loaders must be at the beginning of the process list")
            continue
        if facts["needs_gpu"]:
            problems.append(f"{where}: needs a GPU (CUDA), which hebi's runner does not use; "
                            "use a CPU plugin instead (e.g. AstraReconCpu or TomopyRecon)")
            continue
        adapter = ADAPTERS.get(spec.name)
        if adapter is None:
            problems.append(f"{where}: not implemented by hebi's runner (it implements "
                            f"{', '.join(sorted(ADAPTERS))})")
            continue
        unknown = sorted(set(spec.params) - set(defaults))
        if unknown:
            problems.append(f"{where}: parameter(s) {', '.join(unknown)} are not valid for {spec.name} "
                            "(re-save the list in the configurator)")
            continue
        params = _run_params(defaults, spec.params, facts["definitions"])
        try:
            tuned, combos = combinations(params, facts["definitions"])
        except (ValueError, TypeError) as exc:
            problems.append(f"{where}: a tuned parameter cannot be expanded ({exc})")
            continue
        in_names = [str(n) for n in (params.get("in_datasets") or [])] or [main_name]
        if adapter.kind == "centering":
            out_names = [str(n) for n in (params.get("out_datasets") or [])] or ["cor_preview", "cor_broadcast"]
        elif adapter.kind in ("noop", "images"):
            out_names = []
        else:
            out_names = [str(n) for n in (params.get("out_datasets") or [])][:1] or [in_names[0]]
        named = [*in_names, *out_names, *[str(n) for n in (params.get("datasets_to_populate") or [])]]
        file_problem = out.file_name_problem(params.get("prefix")) if adapter.kind == "images" else None
        bad = _dataset_problems(where, named) + ([f"{where}: prefix: {file_problem}"] if file_problem else [])
        if bad:
            problems += bad
            continue
        steps.append(Step(position, len(steps) + 1, PluginSpec(spec.name, params, spec.module or facts["module"]),
                          adapter, params, tuned, combos, in_names, out_names))
    positions = {s.position for s in steps}
    good_loops = []
    for loop in loops:
        if not (loop.start in positions and loop.end in positions and loop.start <= loop.end
                and loop.iterations >= 1):
            problems.append(f"loop {loop.start}-{loop.end} x{loop.iterations}: start and end must be positions "
                            "of active processing plugins and iterations at least 1")
        else:
            good_loops.append(loop)
    if problems:
        raise PluginRefused("hebi's runner cannot run this process list:\n  - " + "\n  - ".join(problems))
    return loader, steps, good_loops


def _rehearse(loaded: LoadedData, steps: list[Step], loops: list[LoopSpec]) -> None:
    """Runs every check with the real input shapes, so a refusal comes before any work."""
    infos = {loaded.name: DataInfo(loaded.name, loaded.shape, loaded.axis_values(), "projections",
                                   {"dark": loaded.dark, "flat": loaded.flat})}
    problems = []
    for step in steps:
        where = f"plugin {step.position} ({step.spec.name})"
        missing = [n for n in step.in_names if n not in infos]
        if missing:
            problems.append(f"{where}: input dataset '{missing[0]}' does not exist at this point "
                            f"(available: {', '.join(infos)})")
            continue
        info = infos[step.in_names[0]]
        try:
            for combo in step.combos:
                step.adapter.check(combo, info)
        except PluginRefused as exc:
            problems.append(f"{where}: {exc}")
            continue
        if step.adapter.kind == "centering":
            for name in step.out_names:
                infos[name] = DataInfo(name, (1,), [], "metadata")
            info.meta["centre_of_rotation"] = np.zeros(info.shape[1])
        elif step.adapter.kind == "map":
            shape, axes, kind = step.adapter.output(step.combos[0], info)
            if min(shape) < 1:
                problems.append(f"{where}: its output would be empty ({' x '.join(map(str, shape))}) for input "
                                f"'{info.name}' of {' x '.join(map(str, info.shape))}; check the preview")
                continue
            infos[step.out_names[0]] = DataInfo(step.out_names[0], shape, axes, kind, dict(info.meta))
    if problems:
        raise PluginRefused("hebi's runner cannot run this process list:\n  - " + "\n  - ".join(problems))


# -- running -----------------------------------------------------------------------------------------

class Runner:
    def __init__(self, loaded: LoadedData, steps: list[Step], loops: list[LoopSpec], out_dir: Path,
                 log: out.UserLog, options: RunOptions, pool: cf.ProcessPoolExecutor | None = None):
        self.loaded, self.steps, self.loops = loaded, steps, loops
        self.out_dir, self.log, self.options = out_dir, log, options
        self.workers = max(1, options.workers or len(os.sched_getaffinity(0)))  # same rule as run_pipeline
        self.pool = pool
        info = DataInfo(loaded.name, loaded.shape, loaded.axis_values(), "projections",
                        {"dark": loaded.dark, "flat": loaded.flat})
        self.data: dict[str, DataState] = {loaded.name: DataState(info, LoaderReader(loaded.reader))}
        self.records: dict[tuple[int, str], out.WrittenDataset] = {}
        self.consumed: set[tuple[int, str]] = set()
        self.centre: np.ndarray | None = None
        self.current: Step | None = None  # the step running now, named when it fails

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def _kill_requested(self) -> bool:
        return (self.out_dir / "killsignal").exists()

    def run(self) -> None:
        index = 0
        by_start = {loop.start: loop for loop in self.loops}
        while index < len(self.steps):
            loop = by_start.get(self.steps[index].position)
            if loop is None:
                self._run_step(self.steps[index])
                index += 1
                continue
            group = [s for s in self.steps if loop.start <= s.position <= loop.end]
            for iteration in range(1, loop.iterations + 1):
                self.log.message(f"Iteration {iteration} of {loop.iterations} of plugins "
                                 f"{loop.start}-{loop.end}")
                for k, step in enumerate(group):
                    feed = group[-1].out_names[0] if iteration > 1 and k == 0 and group[-1].out_names else None
                    self._run_step(step, feed)
            index += len(group)

    def _run_step(self, step: Step, feed: str | None = None) -> None:
        if self._kill_requested():
            raise Killed("Processing interrupted by killsignal")
        self.current = step
        self.log.message(f"*Running the {step.spec.name} plugin*")
        in_name = feed or step.in_names[0]
        state = self.data[in_name]
        if state.record is not None and step.adapter.kind == "map":
            self.consumed.add((state.record.number, state.record.name))
        kind = step.adapter.kind
        if kind == "noop":
            self.log.message(f"{step.spec.name} - 100% complete")
        elif kind == "centering":
            self._run_centering(step, state)
        elif kind == "images":
            self._run_images(step, state)
        else:
            self._run_map(step, state)

    # chunking ------------------------------------------------------------------------------------
    def _chunks(self, shape: tuple[int, ...], axis: int, cap: int | None) -> list[tuple[int, int]]:
        n = shape[axis]
        unit_bytes = 4 * int(np.prod(shape)) // max(n, 1)
        units = max(1, self.options.chunk_bytes // max(unit_bytes, 1))
        units = min(units, math.ceil(n / self.workers))  # every worker gets work
        if cap:
            units = min(units, cap)
        align = out.storage_chunks(shape)[axis] if len(shape) >= 3 else 1
        if units > align:
            units -= units % align
        units = max(1, units)
        return [(a, min(a + units, n)) for a in range(0, n, units)]

    def _execute(self, tasks: list[Task], label: str, on_result: Callable[[int, Any, dict], None]) -> None:
        """Runs tasks (in workers when there are several), keeping at most 2 per worker in flight."""
        total, done, last_percent, last_time = len(tasks), 0, -1, time.monotonic()

        def progress() -> None:
            nonlocal last_percent, last_time
            percent = int(100 * done / max(total, 1))
            now = time.monotonic()
            if percent == 100 or percent >= last_percent + 10 or (percent > last_percent and now - last_time > 5):
                self.log.message(f"{label} - {percent}% complete")
                last_percent, last_time = percent, now

        if self.workers == 1 or total == 1:
            for i, task in enumerate(tasks):
                result, info = run_task(task)
                on_result(i, result, info)
                done += 1
                progress()
            return
        if self.pool is None:
            self.pool = start_pool(self.workers, (tasks[0].plugin,))
        pending: dict[cf.Future, int] = {}
        queue = iter(enumerate(tasks))
        for i, task in queue:
            pending[self.pool.submit(run_task, task)] = i
            if len(pending) >= 2 * self.workers:
                break
        while pending:
            finished, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for future in finished:
                i = pending.pop(future)
                result, info = future.result()
                on_result(i, result, info)
                done += 1
                progress()
                nxt = next(queue, None)
                if nxt is not None:
                    pending[self.pool.submit(run_task, nxt[1])] = nxt[0]

    # plugin kinds --------------------------------------------------------------------------------
    def _run_map(self, step: Step, state: DataState) -> None:
        info = state.info
        out_shape, axes, kind = step.adapter.output(step.combos[0], info)
        tuning = state.tuning + step.tuned
        full_shape = tuple(out_shape) + tuple(len(values) for _, values in tuning)
        name = step.out_names[0]
        final = out.inside(self.out_dir, out.h5_name(name, step.number, step.spec.module))
        partial = final.with_name(f".{final.name}.part")
        group = out.group_name(step.number, step.spec.name, name)
        axis = step.adapter.axis(step.combos[0])
        overlap = step.adapter.overlap(step.combos[0])
        n = info.shape[axis]
        tasks, places = [], []
        for in_index in np.ndindex(*[len(v) for _, v in state.tuning]):
            for c_index, combo in enumerate(step.combos):
                own = np.unravel_index(c_index, [len(v) for _, v in step.tuned]) if step.tuned else ()
                for a, b in self._chunks(info.shape, axis, step.adapter.max_units):
                    ra, rb = max(0, a - overlap), min(n, b + overlap)
                    context = step.adapter.context(combo, info, axis, a, b)
                    tasks.append(Task(step.spec.name, combo, state.reader, axis, (ra, rb), (a - ra, b - ra),
                                      tuple(int(i) for i in in_index), context))
                    places.append((a, b, tuple(int(i) for i in in_index) + tuple(int(i) for i in own)))
        stats = {"clipped": 0, "values": 0}
        handle, dataset = out.create_output(partial, step.number, step.spec.name, name, full_shape,
                                            axes + [out.tuning_axis(p, v) for p, v in tuning], kind)
        try:
            def store(i: int, result: np.ndarray, extra: dict) -> None:
                a, b, where = places[i]
                selection = [slice(None)] * 3
                selection[axis] = slice(a, b)
                dataset[tuple(selection) + where] = result
                for key in stats:
                    stats[key] += extra.get(key, 0)

            self._execute(tasks, step.spec.name, store)
        except BaseException:
            handle.close()
            partial.unlink(missing_ok=True)  # never leave a half-written output behind
            raise
        handle.close()
        os.replace(partial, final)
        if stats["values"] and stats["clipped"] / stats["values"] >= float(step.params.get("warn_proportion") or 1):
            self.log.message(f"WARNING: {step.spec.name}: {100 * stats['clipped'] / stats['values']:.1f}% of the "
                             "values were outside lower_bound/upper_bound and were clipped")
        # Shape-preserving plugins pass the metadata on (darks, flats, a centre found earlier).
        meta = dict(info.meta) if kind == info.kind and tuple(out_shape) == tuple(info.shape) else {}
        self.consumed.discard((step.number, name))  # rewritten (a loop): its latest version is what counts
        record = out.WrittenDataset(name, step.number, step.spec.name, final, group, full_shape,
                                    axes + [out.tuning_axis(p, v) for p, v in tuning],
                                    kind, {k: v for k, v in meta.items() if k == "centre_of_rotation"})
        self.records[(step.number, name)] = record
        self.data[name] = DataState(DataInfo(name, tuple(out_shape), axes, kind, meta),
                                    H5Reader(str(final), f"/{group}/data"), tuning, record)

    def _run_centering(self, step: Step, state: DataState) -> None:
        info, params = state.info, step.combos[0]
        if step.tuned:
            self.log.message(f"{step.spec.name}: tuned parameters are not supported for centring; "
                             "using the first value of each")
        try:
            rows = preview_indices(params.get("preview"), info.shape, [a[0] for a in info.axes])[1]
        except PreviewError as exc:
            raise PluginRefused(f"{step.spec.name}.preview: {exc}") from None
        radius = int(params.get("average_radius") or 0)
        n_rows = info.shape[1]
        tasks = []
        tuning_zero = tuple(0 for _ in state.tuning)
        for r in rows:
            a, b = max(0, int(r) - radius), min(n_rows, int(r) + radius + 1)
            tasks.append(Task(step.spec.name, params, state.reader, 1, (a, b), None, tuning_zero,
                              step.adapter.context(params, info, 1, a, b)))
        found = np.zeros(len(rows), dtype=np.float64)

        def store(i: int, result: np.ndarray, extra: dict) -> None:
            found[i] = float(result[0])

        self._execute(tasks, step.spec.name, store)
        method = params.get("broadcast_method", "median")
        all_rows = np.arange(n_rows)
        if method == "mean":
            broadcast = np.full(n_rows, found.mean())
        elif method == "nearest":
            broadcast = found[np.abs(all_rows[:, None] - rows[None, :]).argmin(axis=1)]
        elif method == "linear_fit" and len(rows) > 1:
            broadcast = np.polyval(np.polyfit(rows, found, 1), all_rows)
        else:
            broadcast = np.full(n_rows, np.median(found))
        self.log.message(f"{step.spec.name}: centre of rotation {np.median(found):.2f} "
                         f"(from {len(rows)} sinogram(s), broadcast by {method})")
        for target in [state.info.name] + [str(n) for n in (params.get("datasets_to_populate") or [])]:
            if target in self.data:
                self.data[target].info.meta["centre_of_rotation"] = broadcast
        self.centre = broadcast
        names = step.out_names + ["cor_broadcast"] * (2 - len(step.out_names))
        for name, values, label in ((names[0], found, "preview"), (names[1], broadcast, "broadcast")):
            final = out.inside(self.out_dir, out.h5_name(name, step.number, step.spec.module))
            group = out.group_name(step.number, step.spec.name, name)
            partial = final.with_name(f".{final.name}.part")
            handle, dataset = out.create_output(partial, step.number, step.spec.name, name, (len(values), 1),
                                                [("x", "pixels", np.arange(len(values))), ("y", "pixels", [0])])
            dataset[:, 0] = values
            handle.close()
            os.replace(partial, final)
            record = out.WrittenDataset(name, step.number, step.spec.name, final, group, (len(values), 1),
                                        [("x", "pixels", rows if label == "preview" else all_rows),
                                         ("y", "pixels", np.array([0]))], "metadata", {})
            self.records[(step.number, name)] = record
            self.data[name] = DataState(DataInfo(name, (len(values), 1), record.axes, "metadata"),
                                        H5Reader(str(final), f"/{group}/data"), [], record)

    def _run_images(self, step: Step, state: DataState) -> None:
        info, params = state.info, step.combos[0]
        axis = step.adapter.axis(params)
        folder = out.inside(self.out_dir, f"{step.spec.name}_{step.number}")
        folder.mkdir(parents=True, exist_ok=True)
        prefix = params.get("prefix") or f"img_{out.data_stem(self.loaded.input_path)}"
        tasks = []
        for index in np.ndindex(*[len(v) for _, v in state.tuning]):
            suffix = "".join(f"_{i}" for i in index)
            for a, b in self._chunks(info.shape, axis, None):
                tasks.append(Task(step.spec.name, params, state.reader, axis, (a, b), (0, b - a),
                                  tuple(int(i) for i in index),
                                  {"axis": axis, "folder": str(folder), "first": a, "prefix": prefix,
                                   "suffix": suffix}))
        self._execute(tasks, step.spec.name, lambda i, result, extra: None)

    # outputs ---------------------------------------------------------------------------------------
    def finals_and_intermediates(self) -> tuple[list[out.WrittenDataset], list[out.WrittenDataset]]:
        records = sorted(self.records.values(), key=lambda r: r.number)
        finals = [r for r in records if (r.number, r.name) not in self.consumed]
        inter = [r for r in records if (r.number, r.name) in self.consumed]
        return finals, inter


def run_pipeline(data: str | os.PathLike[str], plugins: list[PluginSpec], out_folder: str | os.PathLike[str],
                 options: RunOptions | None = None, loops: list[LoopSpec] | None = None,
                 process_list_path: Path | None = None) -> RunResult:
    """Checks, then runs ``plugins`` on ``data``; raises RunnerError (before any work) for what the runner
    refuses. Returns the run's status ("completed", "killed" or "failed") and its outputs."""
    options = options or RunOptions()
    clear_hdf5_prefixes()  # HDF5 would search these folders too (and spawned workers inherit this)
    roots = options.roots or _roots(data, None, out_folder)
    started = time.monotonic()
    data_path = Path(data)
    loader, steps, good_loops = plan(plugins, loops or [])
    if options.preview is not None:
        loader.params["preview"] = options.preview
    workers = max(1, options.workers or len(os.sched_getaffinity(0)))
    pool = start_pool(workers, tuple(step.spec.name for step in steps))  # starts while the data are checked
    try:
        loaded = LOADERS[loader.name](data_path, loader.params, roots)
        _rehearse(loaded, steps, good_loops)
    except BaseException:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        raise

    try:
        out_root = confine.confined_path(roots, Path(out_folder), "the output folder", for_writing=True)
    except SandboxError as exc:
        raise RunnerError(exc.message) from None
    try:
        out_dir = out.output_folder(out_root, data_path, options.folder)
    except ValueError as exc:
        raise RunnerError(str(exc)) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    log = out.UserLog(out_dir / "run_log" / "user.log", options.echo)
    log.message("User Log Started")
    if process_list_path is not None:
        shutil.copy(process_list_path, out.inside(out_dir / "run_log", Path(process_list_path).name))
    log.message(f"Running hebi-runner on {data_path.name}: {len(steps)} plugin(s), data "
                f"{'x'.join(str(n) for n in loaded.shape)} (angles x rows x columns)")
    log.message("Plugin list check complete!")
    runner = Runner(loaded, steps, good_loops, out_dir, log, options, pool)
    status, error = "completed", None
    try:
        runner.run()
    except Killed as exc:
        status = "killed"
        log.message(str(exc))
    except Exception as exc:  # noqa: BLE001 - any failure ends in user.log, as with Savu
        where = f"plugin {runner.current.position} ({runner.current.spec.name}) failed: " if runner.current else ""
        status, error = "failed", one_line(f"{where}{type(exc).__name__}: {exc}")
        log.message("ERROR: " + error)
        log.message(traceback.format_exc().rstrip())
        log.message(f"hebi-runner: {error}")  # the same last line as on stderr, for the job's message
    finally:
        runner.close()
    finals, inter = runner.finals_and_intermediates()
    inputs = [(loaded.name, loaded.input_path, loaded.data_path)]
    nxs = out.write_master(out_dir, out.data_stem(data_path), finals, inter, inputs, process_list_path)
    elapsed = time.monotonic() - started
    if status == "completed":
        log.message(f"* Processing Complete in {elapsed:.2f} seconds *")
    log.close()
    return RunResult(status, out_dir, nxs, {r.name: r.file for r in finals}, runner.centre, elapsed, error)


def one_line(text: str) -> str:
    """A message as the one line a job's row shows: its lines joined, list dashes dropped."""
    parts = [line.strip().removeprefix("- ").strip() for line in str(text).splitlines()]
    return "; ".join(part for part in parts if part).replace(":;", ":")


def _roots(data, process_list, out_folder) -> Roots:
    """The job's roots (HEBI_JOB_ROOTS), or the folders holding the data and the list and the output."""
    reads = [Path(data).absolute().parent] + ([Path(process_list).absolute().parent] if process_list else [])
    try:
        return confine.job_roots(os.environ, reads, Path(out_folder))
    except ValueError as exc:
        raise RunnerError(str(exc)) from None


def run_process_list(data: str | os.PathLike[str], process_list: str | os.PathLike[str],
                     out_folder: str | os.PathLike[str], options: RunOptions | None = None) -> RunResult:
    """What the job backend calls: run a Savu process list file on ``data`` into ``out_folder``."""
    from hebi_common.savu.process_list import read_process_list
    clear_hdf5_prefixes()
    options = dataclasses.replace(options or RunOptions())
    options.roots = options.roots or _roots(data, process_list, out_folder)
    try:
        confine.confined_path(options.roots, Path(process_list), "the process list")
    except SandboxError as exc:
        raise RunnerError(exc.message) from None
    try:
        parsed = read_process_list(process_list)
    except Exception as exc:  # noqa: BLE001 - the reader's own errors carry the message
        raise RunnerError(f"cannot read the process list {Path(process_list).name}: {exc}") from None
    plugins = [PluginSpec(p.name, dict(p.params), p.module, p.active) for p in parsed.plugins]
    loops = [LoopSpec(int(l.start), int(l.end), int(l.iterations)) for l in parsed.loops]
    return run_pipeline(data, plugins, out_folder, options, loops, Path(process_list))
