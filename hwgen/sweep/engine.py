"""Design-space sweeps on Dask distributed.

A sweep is the cross product of grids over hardware parameters (any key ``--set``
accepts). Each point is compiled, co-simulated and optionally synthesised by the very
functions the ``compile``, ``simulate`` and ``synth`` commands use
(:func:`hwgen.build_directory.compile_model`, :func:`hwgen.sim.results.cosimulate_into`,
:func:`hwgen.fpga.flow.synthesize`), as one Dask task per point.

The client (the process that called :func:`sweep`) owns DIR: it writes one small JSON per
finished point to DIR/points/<point hash>.json, atomically, as results arrive; a re-run
skips every point that already has one (except points that ended in an unexpected error,
which are retried), so a sweep killed half-way resumes where it stopped. The point hash
covers everything that determines the result: hwgen's version, the model's hash, the full
hardware configuration, the inputs, the synthesis target and frequency.

Workers write each point's build directory to DIR/builds/<point hash>/ on their own
file system (the same DIR on a shared file system, or a copy of that path on each remote
machine); the rows travel back to the client through Dask, so the tables never need a
shared file system.
"""

import hashlib
import itertools
import json
import os
import threading
import time
import traceback
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import numpy as np

from hwgen.compiler import hardware_config
from hwgen.atomic import atomic_file
from hwgen.errors import ConfigError, FitError, HwgenError, TimingError, ToolchainError
from hwgen.compiler.frontends import native

SEQUENTIAL = "sequential"
"""``scheduler=SEQUENTIAL``: run the points one after another in this process, without
Dask (to measure the engine's overhead, or to debug a point)."""

# Statuses of a point. Only ERROR (an unexpected exception: a bug, a dead worker) is
# retried by a re-run; the others are deterministic results of the configuration.
OK = "ok"
COMPILE_ERROR = "compile_error"        # refused by the compiler (does not fit the config)
MISMATCH = "mismatch"                  # the RTL differs from the integer reference
SIM_ERROR = "sim_error"                # Verilator or the testbench failed
DOES_NOT_FIT = "does_not_fit"          # more cells than the device has, or unplaceable
TIMING_FAILURE = "timing_failure"      # missed the requested clock
TOOL_ERROR = "tool_error"              # Yosys / nextpnr / the packer failed
ERROR = "error"
RETRIED = (ERROR,)

# (column, unit) of the tables, after the grid's parameters. The CSV header is
# "column [unit]" where there is a unit.
FIGURES = [
    ("status", ""), ("reason", ""),
    ("memory_bits", "bits"),
    ("cycles_mean", "cycles"), ("cycles_max", "cycles"), ("ideal_bound", "cycles"),
    ("load_cycles", "cycles"),
    ("bit_exact", ""), ("mismatching_samples", "samples"), ("samples", "samples"),
    ("rtl_accuracy", "fraction"),
    ("target", ""), ("logic", "LCs or LUT4s"), ("logic_kind", ""), ("luts", "LUT4s"),
    ("ffs", "FFs"), ("bram", "blocks"), ("dsp", "blocks"),
    ("fmax_mhz", "MHz"), ("clock_mhz", "MHz"), ("fits", ""), ("timing_met", ""),
    ("latency_us", "us"),
    ("compile_s", "s"), ("simulate_s", "s"), ("synth_s", "s"),
    ("hash", ""), ("build", ""),
]


def parse_grid(items):
    """``["tppes=1,2,4", "chunk=8,16"]`` -> ``{"tppes": [1, 2, 4], "chunk": [8, 16]}``.

    Keys are checked against the hardware configuration's parameters here, so a typo is
    refused before any work starts.
    """
    known = hardware_config.HardwareConfig.names()
    grid = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise ConfigError(f"--grid {item!r}: expected KEY=V1,V2,...")
        if key not in known:
            raise ConfigError(f"--grid {item!r}: unknown parameter {key!r}; known: "
                              f"{', '.join(sorted(known))}")
        if key in grid:
            raise ConfigError(f"--grid {item!r}: {key} is already a grid axis")
        parsed = [hardware_config._parse_value(v) for v in values.split(",") if v.strip()]
        if len(set(map(repr, parsed))) != len(parsed):
            raise ConfigError(f"--grid {item!r}: repeated value")
        grid[key] = parsed
    if not grid:
        raise ConfigError("sweep: give at least one --grid KEY=V1,V2,...")
    return grid


@dataclass
class Point:
    """One configuration of the sweep."""

    index: int
    params: dict                   # grid key -> value
    config: object                 # HardwareConfig (unresolved: 'auto' stays 'auto')
    key: str = ""                  # the point hash

    @property
    def label(self):
        return " ".join(f"{k}={v}" for k, v in self.params.items())


def _stimulus_digest(stimulus):
    digest = hashlib.sha256()
    for array in (stimulus.inputs, stimulus.labels):
        if array is not None:
            array = np.ascontiguousarray(array)
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()


def make_points(base_config, grid, *, model_hash, stimulus_hash, synth, frequency):
    """Every point of the cross product, checked (each config goes through
    :meth:`HardwareConfig.check`), with its hash."""
    points = []
    for index, values in enumerate(itertools.product(*grid.values())):
        params = dict(zip(grid, values))
        source = "--grid " + " ".join(f"{k}={v}" for k, v in params.items())
        try:
            config = base_config.with_values(params, source).check()
        except ConfigError as error:
            raise ConfigError(f"{source}: {str(error).removeprefix('config: ')}") from None
        identity = {"hwgen": version("hwgen"), "model": model_hash, "inputs": stimulus_hash,
                    "config": config.to_json(), "synth": synth,
                    "frequency": frequency if synth else None}
        key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]
        points.append(Point(index, params, config, key))
    return points


def run_point(model, config, stimulus, build_dir, synth=None, frequency="auto"):
    """Compile, co-simulate and (with ``synth``) synthesise one point; return its figures.

    Runs on a Dask worker. Never raises for a point that fails: the returned dict says
    which stage failed and why (``status``, ``reason``), with the figures measured before.
    """
    row = {"status": OK, "reason": "", "build": str(build_dir)}
    try:
        _run_point(row, model, config, stimulus, Path(build_dir), synth, frequency)
    except HwgenError as error:          # the stages classify their own; this is another
        row["status"] = ERROR
        row["reason"] = str(error).splitlines()[0]
    except Exception as error:                           # a bug: keep the sweep going
        row["status"] = ERROR
        row["reason"] = f"{type(error).__name__}: {error}".splitlines()[0]
        row["traceback"] = traceback.format_exc()
    return row


def _fail(row, status, error):
    row["status"] = status
    row["reason"] = str(error).splitlines()[0]


def _run_point(row, model, config, stimulus, build_dir, synth, frequency):
    # Imported here: a worker loads the generator, the simulator and the FPGA flow only once
    # it runs a point, and a client that only reads results never does.
    from hwgen.build_directory import compile_model
    from hwgen.fpga import flow
    from hwgen.sim.results import cosimulate_into

    started = time.monotonic()
    try:
        _program, build, _warnings = compile_model(model, config, build_dir)
    except HwgenError as error:
        return _fail(row, COMPILE_ERROR, error)
    finally:
        row["compile_s"] = round(time.monotonic() - started, 2)
    row["memory_bits"] = build.manifest["resources"]["memory_bits"]
    row["config"] = build.manifest["config"]                # resolved: no 'auto' left

    started = time.monotonic()
    try:
        # One simulator process per point: the cluster's workers are the parallelism.
        _result, report = cosimulate_into(build, stimulus, jobs=1)
    except HwgenError as error:
        return _fail(row, SIM_ERROR, error)
    finally:
        row["simulate_s"] = round(time.monotonic() - started, 2)
    row.update(
        cycles_mean=report["cycles_mean"], cycles_max=max(report["cycles_per_sample"]),
        ideal_bound=round(sum(layer["ideal_bound_mean"] for layer in report["layers"]), 2),
        load_cycles=report["load_cycles_per_sample"][0], bit_exact=report["bit_exact"],
        mismatching_samples=report["mismatching_samples"], samples=report["samples"],
        rtl_accuracy=report.get("rtl_accuracy"))
    if not report["bit_exact"]:
        first = report["first_mismatch"] or {}
        row["status"] = MISMATCH
        row["reason"] = (f"{report['mismatching_samples']} of {report['samples']} samples "
                         f"differ from the reference; first: sample {first.get('sample')}, "
                         f"layer {first.get('layer')!r}, neuron {first.get('neuron')}")
    if not synth:
        return None

    row["target"] = synth
    started = time.monotonic()
    status = None
    try:
        synthesis = flow.synthesize(build_dir, synth, frequency_mhz=frequency)
    except FitError as error:
        status = (DOES_NOT_FIT, error)
    except TimingError as error:
        status = (TIMING_FAILURE, error)
    except ToolchainError as error:
        status = (TOOL_ERROR, error)
    finally:
        row["synth_s"] = round(time.monotonic() - started, 2)
    if status is not None:
        saved = flow.output_directory(build_dir, synth) / "report.json"
        synthesis = json.loads(saved.read_text()) if saved.is_file() else {}
    _synthesis_figures(row, synthesis)
    if status is not None and row["status"] == OK:
        _fail(row, *status)
    # A tool error may come before placement decided whether the design fits.
    row["fits"] = {None: True, TIMING_FAILURE: True, DOES_NOT_FIT: False}.get(
        status and status[0])
    if row.get("fmax_mhz") and row.get("cycles_mean") is not None:
        row["latency_us"] = round(row["cycles_mean"] / row["fmax_mhz"], 4)
    return None


def _synthesis_figures(row, report):
    used = {r["resource"]: r["used"] for r in report.get("resources", [])}
    if "LCs" in used:                                      # iCE40: nextpnr's logic cells
        row["logic"], row["logic_kind"] = used["LCs"], "LCs"
    elif "LUTs" in used:                                   # ECP5: LUT4s after placement
        row["logic"], row["logic_kind"] = used["LUTs"], "LUT4s"
    row["luts"] = used.get("LUTs")
    row["ffs"] = used.get("FFs")
    row["bram"] = used.get("BRAM", used.get("BRAM (EBR)"))
    row["dsp"] = used.get("DSP")
    timing = report.get("timing") or {}
    row["fmax_mhz"] = timing.get("fmax_mhz")
    row["timing_met"] = timing.get("met")
    row["clock_mhz"] = (report.get("clock") or {}).get("mhz")


@dataclass
class SweepResult:
    """What :func:`sweep` returns: the table (one dict per point, grid order) and files."""

    rows: list
    directory: Path
    grid: dict
    files: dict = field(default_factory=dict)
    ran: int = 0                   # points computed by this call
    skipped: int = 0               # points found done in DIR/points

    @property
    def columns(self):
        return [*self.grid, *(name for name, _ in FIGURES)]

    def to_pandas(self):
        import pandas
        return pandas.DataFrame(self.rows, columns=self.columns)

    @property
    def failed(self):
        return [row for row in self.rows if row["status"] != OK]


class Progress:
    """Counts for a progress display: called as ``update(done, running, failed, total)``."""

    def __init__(self, callback=None):
        self.callback = callback or (lambda *counts: None)
        self.lock = threading.Lock()

    def __call__(self, done, running, failed, total):
        with self.lock:
            self.callback(done, running, failed, total)


def sweep(model, grid, out, *, stimulus, base_config=None, synth=None, frequency="auto",
          scheduler=None, workers=None, processes=True, progress=None, log=None):
    """Run a design-space sweep; return a :class:`SweepResult` and write DIR's tables/plots.

    ``model``: an IR model. ``grid``: {parameter: [values]} (see :func:`parse_grid`).
    ``stimulus``: a :class:`hwgen.sim.stimulus.Stimulus`. ``base_config``: the
    :class:`HardwareConfig` the grid overrides (default: the defaults). ``synth``: a target
    of ``hwgen synth`` or None (co-simulation only). ``scheduler``: None for a local Dask
    cluster of ``workers`` single-threaded worker processes (default: one per CPU;
    ``processes=False`` runs them as threads of this process), ``"tcp://HOST:PORT"`` for an
    existing Dask scheduler, or :data:`SEQUENTIAL` for no Dask at all.
    ``progress(done, running, failed, total)`` and ``log(text)`` report as it goes.
    """
    from . import report as tables

    out = Path(out).resolve()
    log = log or (lambda text: None)
    progress = Progress(progress)
    base_config = base_config or hardware_config.HardwareConfig()
    if synth is not None:
        from hwgen.fpga.targets import get_target
        synth = get_target(synth).name
    points = make_points(base_config, grid, model_hash=hashlib.sha256(native.dumps(model)).hexdigest(),
                         stimulus_hash=_stimulus_digest(stimulus), synth=synth,
                         frequency=frequency)
    rows = {}
    for point in points:
        saved = _load_point(out, point)
        if saved is not None and saved["status"] not in RETRIED:
            rows[point.index] = saved
    skipped = len(rows)
    todo = [point for point in points if point.index not in rows]
    if skipped:
        log(f"{skipped} of {len(points)} points already done in {out / 'points'}; "
            f"running {len(todo)}")

    def finished(point, row):
        row = {**point.params, **row, "hash": point.key, "point": point.index}
        _save_point(out, point, row)
        rows[point.index] = row

    def failed_count():
        return sum(1 for row in rows.values() if row["status"] != OK)

    progress(len(rows), 0, failed_count(), len(points))
    if todo:
        args = [(point, (model, point.config, stimulus, str(out / "builds" / point.key),
                         synth, frequency)) for point in todo]
        if scheduler == SEQUENTIAL:
            for point, arguments in args:
                progress(len(rows), 1, failed_count(), len(points))
                finished(point, run_point(*arguments))
        else:
            _run_on_dask(args, scheduler, workers, processes, finished,
                         lambda running: progress(len(rows), running, failed_count(),
                                                  len(points)), log)
    progress(len(rows), 0, failed_count(), len(points))

    result = SweepResult([rows[point.index] for point in points], out, grid,
                         ran=len(todo), skipped=skipped)
    result.files = tables.write_all(result)
    return result


def _run_on_dask(args, scheduler, workers, processes, finished, update, log):
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler:
        log(f"connecting to the Dask scheduler at {scheduler}")
        try:
            client = Client(scheduler, timeout="30s")
        except (OSError, ValueError) as error:
            raise ConfigError(f"--scheduler {scheduler}: cannot connect ({error})") from None
    else:
        workers = workers or os.cpu_count() or 1
        log(f"starting a local Dask cluster of {workers} worker"
            f"{'s' if workers > 1 else ''}")
        # One thread per worker: a point already runs its own simulator process, and
        # compile and synthesis hold the GIL.
        # The scheduler's HTTP server starts even without a dashboard: on a free port, so
        # that two sweeps on one machine do not fight over 8787.
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes,
                               dashboard_address=":0")
        client = Client(cluster)
    stop = threading.Event()
    running = [0]
    try:
        if not client.nthreads():
            client.wait_for_workers(1, timeout=60)
        futures = {}
        for point, arguments in args:
            future = client.submit(run_point, *arguments, pure=False,
                                   key=f"hwgen-point-{point.key}-{os.urandom(4).hex()}")
            futures[future.key] = (future, point)
        keys = set(futures)

        def watch():
            # The scheduler knows which tasks a worker is processing right now.
            while not stop.wait(1.0):
                try:
                    processing = client.processing()
                except Exception:                           # shutting down
                    return
                running[0] = sum(1 for tasks in processing.values() for key in tasks
                                 if key in keys)
                update(running[0])
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        for future in as_completed([f for f, _ in futures.values()]):
            point = futures[future.key][1]
            keys.discard(future.key)
            try:
                row = future.result()
            except Exception as error:                      # the worker died, or similar
                row = {"status": ERROR,
                       "reason": f"{type(error).__name__}: {error}".splitlines()[0]}
            finished(point, row)
            running[0] = max(0, min(running[0], len(keys)))
            update(running[0])
    except BaseException:
        # Ctrl-C or a lost scheduler: finished points are on disk; drop the rest.
        for future, _ in futures.values() if "futures" in locals() else ():
            future.cancel()
        raise
    finally:
        stop.set()
        client.close()
        if cluster is not None:
            cluster.close()


def _point_file(out, point):
    return out / "points" / f"{point.key}.json"


def _load_point(out, point):
    try:
        row = json.loads(_point_file(out, point).read_text())
    except (OSError, ValueError):
        return None                            # absent or damaged: run it again
    return row if isinstance(row, dict) and "status" in row else None


def _save_point(out, point, row):
    with atomic_file(_point_file(out, point), "w") as f:
        f.write(json.dumps(row, indent=1, sort_keys=True, default=_json_default) + "\n")


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON-able: {type(value).__name__}")
