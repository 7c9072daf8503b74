"""Co-simulation: the generated Verilog on Verilator against the integer reference.

:func:`cosimulate` runs the reference, builds the build directory's Verilog with
Verilator (cached by design hash), runs the samples in parallel shards, and compares
every layer's spikes and the output layer's results and membranes with the reference
(:mod:`hwgen.sim.compare`). It also measures cycles per inference and per layer, next to
each layer's ideal bound.

Two engines drive the core, cycle for cycle alike and recording the same things: the native
one (default, :mod:`hwgen.sim.native`), whose clock loop is C++ so Python sees only the
recording, and the cocotb testbench (:mod:`hwgen.sim.testbench`), which wakes Python on every
clock edge and is about two orders of magnitude slower (benchmarks/cosim_speed.py); it is
kept as an independent second driver.
"""

import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwgen.errors import ToolchainError

from hwgen.compiler.ir import Readout, reference
from hwgen.compiler.ir.spike_words import spikes_to_chunk_words
from hwgen.compiler.passes.legalise import legalise_for
from hwgen.gateware.core_interface import trace_fields

from .compare import compare, ideal_bounds
from .native import NativeBuild, children_cpu
from .verilator import VerilatorBuild

TESTBENCH = "hwgen.sim.testbench"
ENGINES = ("native", "cocotb")


@dataclass
class CosimResult:
    program: dict
    trace: object                   # the reference Trace
    verdict: object                 # hwgen.sim.compare.Verdict
    cycles: np.ndarray              # (samples,) start to done, as the core counted them
    load_cycles: np.ndarray         # (samples,) cycles to stream the inputs in
    layer_cycles: np.ndarray        # (samples, layers)
    ideal: np.ndarray               # (samples, layers) ideal bound
    labels: np.ndarray = None
    waves: list = None
    # Clock cycles simulated over all shards (reset, loading, inferences, reading results),
    # the wall-clock seconds the shards took and the CPU seconds their processes used,
    # build excluded: the simulation's speed (CPU time stays meaningful on a busy machine).
    simulated_cycles: int = None
    simulation_seconds: float = None
    simulation_cpu_seconds: float = None
    readout: str = "spike_count"    # how the model's readout reads the output layer
    steps: np.ndarray = None        # (samples,) time steps run (fewer after an early exit)

    @property
    def samples(self):
        return len(self.cycles)

    @property
    def rtl_predictions(self):
        """The class the RTL's outputs predict, read as the model's readout reads them:
        the most spikes, or the largest final membrane (ties to the lowest class)."""
        if self.readout == "final_membrane":
            return np.argmax(self.verdict.rtl_membranes, axis=1)
        last = self.program["layers"][-1]["name"]
        return np.argmax(self.verdict.rtl_spikes[last].sum(axis=1), axis=1)

    def to_json(self):
        layers = []
        for index, plan in enumerate(self.program["layers"]):
            measured = self.layer_cycles[:, index]
            ideal = self.ideal[:, index]
            layers.append({
                "name": plan["name"], "neurons": plan["outputs"],
                "mismatching_neurons": self.verdict.mismatching_neurons[plan["name"]],
                "cycles_mean": round(float(measured.mean()), 2),
                "ideal_bound_mean": round(float(ideal.mean()), 2),
                "cycles_per_sample": measured.tolist(),
                "ideal_bound_per_sample": ideal.tolist(),
            })
        first = next((m for m in self.verdict.first_mismatch if m is not None), None)
        result = {
            "samples": self.samples,
            "bit_exact": self.verdict.bit_exact,
            "mismatching_samples": len(self.verdict.mismatching_samples),
            "mismatching_sample_indices": self.verdict.mismatching_samples,
            "first_mismatch": first.to_json() if first else None,
            "cycles_per_sample": self.cycles.tolist(),
            "cycles_mean": round(float(self.cycles.mean()), 2),
            "load_cycles_per_sample": self.load_cycles.tolist(),
            "steps_per_sample": self.steps.tolist(),
            "steps_mean": round(float(self.steps.mean()), 3),
            "layers": layers,
        }
        if self.trace.predictions is not None:
            result["reference_predictions"] = self.trace.predictions.tolist()
            result["rtl_predictions"] = self.rtl_predictions.tolist()
            if self.labels is not None:
                result["reference_accuracy"] = reference.accuracy(self.trace.predictions,
                                                                  self.labels)
                result["rtl_accuracy"] = reference.accuracy(self.rtl_predictions, self.labels)
        if self.waves:
            result["waves"] = [str(w) for w in self.waves]
        return result

    def rtl_output_spikes(self):
        """(samples, T, outputs): the output layer's spikes as the RTL produced them."""
        return self.verdict.rtl_spikes[self.program["layers"][-1]["name"]]


def _shards(samples, parallel):
    count = max(1, min(parallel, samples))
    bounds = np.linspace(0, samples, count + 1).astype(int)
    return [(int(a), int(b)) for a, b in zip(bounds, bounds[1:]) if b > a]


def cosimulate(build, inputs, *, labels=None, waves=False, parallel=None, work_dir=None,
               progress=None, log=None, engine="native"):
    """Co-simulate ``inputs`` (as for :func:`hwgen.compiler.ir.reference.encode`) on ``build``
    (a :class:`~hwgen.build_directory.BuildDirectory`).

    ``progress(done_samples)`` is called as samples finish; ``log(text)`` gets step notes.
    ``waves``: record a VCD (one shard, so keep the sample count small); the VCD files stay
    in ``work_dir``, which must then be given. Without ``work_dir`` the simulator's files
    live in a temporary folder that is removed afterwards.
    ``engine``: "native" (C++ clock loop) or "cocotb" (the Python testbench); see above.
    """
    if engine not in ENGINES:
        raise ValueError(f"cosimulate: engine must be one of {', '.join(ENGINES)}, "
                         f"not {engine!r}")
    if waves and work_dir is None:
        raise ValueError("cosimulate: waves need a work_dir to keep the VCD in")
    if work_dir is None:
        with tempfile.TemporaryDirectory(prefix="hwgen-cosim-") as folder:
            return _cosimulate(build, inputs, labels, waves, parallel, Path(folder),
                               progress, log, engine)
    return _cosimulate(build, inputs, labels, waves, parallel, Path(work_dir), progress, log,
                       engine)


def _cosimulate(build, inputs, labels, waves, parallel, work, progress, log, engine):
    model = build.model()
    program = build.program()
    config = program["config"]
    trace = reference.run(model, inputs, early_exit=config.get("early_exit"),
                          time_chunk=config["time_chunk"])
    # the spikes of the layers no model op names (Q (K^T V)'s copy of V and matrices) too
    chain = legalise_for(model, config)
    trace.spikes = chain.spikes_of(trace.spikes)
    lanes = program["config"]["time_chunk"]
    chunks = program["timesteps"] // lanes
    words = spikes_to_chunk_words(trace.spikes[model.input.name], lanes)
    samples = len(words)
    parallel = 1 if waves else (parallel or os.cpu_count() or 1)
    shards = _shards(samples, parallel)

    ports = build.manifest["top"]["ports"]
    bounds = ideal_bounds(program, model, trace, chain)
    timeout = _timeout_cycles(program, bounds)
    layers = len(program["layers"])
    passes = layers * chunks            # the trace counts passes: time chunk x layers + layer
    runs = []
    for index, (a, b) in enumerate(shards):
        folder = work / f"shard{index}"
        folder.mkdir(parents=True, exist_ok=True)
        runs.append((folder, (a, b)))

    stop = threading.Event()
    watcher = None
    if progress:
        def watch():
            while not stop.wait(0.25):
                progress(sum(_read_progress(folder) for folder, _ in runs))
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
    try:
        if engine == "native":
            fields = trace_fields(build.trace_layout)
            simulator = _native_build(build, program, waves, bounds)
            simulator.build(log=log)
            began, cpu = time.perf_counter(), children_cpu()
            parts = simulator.run_many(
                [(folder, {"words": words[a:b], "outputs": program["outputs"] * chunks,
                           "layers": passes, "timeout": timeout,
                           "fields": fields}) for folder, (a, b) in runs],
                parallel=parallel, log=log)
            seconds, cpu = time.perf_counter() - began, children_cpu() - cpu
        else:
            parts, seconds, cpu = _run_cocotb(build, program, ports, words, runs, waves, timeout,
                                              parallel, log, lanes, passes)
    finally:
        stop.set()
        if watcher:
            watcher.join()
    if progress:
        progress(samples)

    observed = _merge(parts, shards)
    verdict = compare(program, trace, observed)
    # cycles per pass, summed over the time chunks into cycles per layer
    layer_cycles = _pass_cycles(observed["layer_bounds"]).reshape(
        samples, chunks, layers).sum(axis=1)
    return CosimResult(program, trace, verdict, observed["cycles"], observed["load_cycles"],
                       layer_cycles, bounds, labels,
                       waves=[folder / "dump.vcd" for folder, _ in runs] if waves else None,
                       steps=observed["steps"],
                       simulated_cycles=sum(int(part["edges"]) for part in parts),
                       simulation_seconds=seconds, simulation_cpu_seconds=cpu,
                       readout=next((op.mode for op in model.ops if isinstance(op, Readout)),
                                    "spike_count"))


# Verilating the TPPE module once, as a hierarchical block (sim/native.py), builds a design
# of many TPPEs several times faster, but the model then simulates about 3x slower
# (measured with ccache, NativeBuild.build and clock_speed: at 30 TPPEs 24.5 s -> 5.8 s to
# build, 8 -> 28 us a cycle; at 2 TPPEs 4.7 s -> 5.5 s and 0.5 -> 1.6 us). It pays for a
# one-off short run of a wide design (a generated design in the soak), not for a bundled
# model's hundreds of samples, which also reuse the cached build.
BLOCK_MIN_TPPES = 4
BLOCK_MAX_CYCLES = 500_000


def _native_build(build, program, waves, bounds):
    """The native simulator for ``build``: with the TPPE Verilated once when that is
    faster for about ``bounds.sum()`` cycles (see above), unless a build is cached."""
    flat = NativeBuild([build.verilog], build.top_module, waves=waves)
    module = build.tppe_module
    if module is None or waves or flat.executable.exists():
        return flat
    blocked = NativeBuild([build.verilog], build.top_module, blocks=[module])
    short = int(bounds.sum()) <= BLOCK_MAX_CYCLES
    if blocked.executable.exists() or (
            short and program["config"]["tppes"] >= BLOCK_MIN_TPPES):
        return blocked
    return flat


def _run_cocotb(build, program, ports, words, runs, waves, timeout, parallel, log, lanes,
                passes):
    verilator = VerilatorBuild([build.verilog], build.top_module, waves=waves)
    verilator.build(log=log)
    jobs = []
    for folder, (a, b) in runs:
        np.savez(folder / "job.npz", words=words[a:b],
                 outputs=program["outputs"] * (passes // len(program["layers"])),
                 lanes=lanes, pass_bits=ports["trace"]["pass_bits"],
                 slot_bits=ports["trace"]["slot_bits"],
                 write_lanes=ports["trace"]["write_lanes"], layers=passes,
                 timeout=timeout)
        jobs.append((folder, {"HWGEN_JOB": str(folder / "job.npz"),
                              "HWGEN_OBSERVED": str(folder / "observed.npz"),
                              "HWGEN_PROGRESS": str(folder / "progress")}))
    began, cpu = time.perf_counter(), children_cpu()
    results = verilator.run_many(TESTBENCH, jobs, parallel=parallel, log=log)
    seconds, cpu = time.perf_counter() - began, children_cpu() - cpu
    for (folder, _), result in zip(jobs, results):
        if not result.ok:
            raise ToolchainError(f"the testbench failed in {folder} (see {result.log}): "
                                 f"{', '.join(result.failed) or 'no test ran'}")
    return [dict(np.load(folder / "observed.npz")) for folder, _ in jobs], seconds, cpu


def _timeout_cycles(program, bounds):
    """Cycles after which an inference is declared hung: four times a bound on the work
    of the busiest TPPE (every entry, every weight, the most its layers' ideal ``bounds``
    (samples, layers) sum to in a sample, a whole LIF per neuron) plus slack. The bounds
    are needed: neurons share their stored weight runs, so a TPPE can match many more pairs
    than it stores weights (64 neurons of all-one weights on 64 spiking inputs, one step
    per chunk, 17 chunks: about 9,000 cycles against a limit of 8,752 from entries and
    weights alone)."""
    pairs = int(np.asarray(bounds).sum(axis=1).max(initial=0))
    T, lanes = program["timesteps"], program["config"]["time_chunk"]
    # a recurrent layer walks its part of the program T_c times per chunk (sub-passes):
    # counted here as if every layer did
    recurrent = any("state_base" in plan and not plan.get("aux") for plan in program["layers"])
    walks = T // lanes * (lanes if recurrent else 1)
    neurons = max(sum(len(plan["tppe_neurons"][p]) for plan in program["layers"])
                  for p in range(len(program["entries_per_tppe"])))
    work = walks * (max(program["entries_per_tppe"]) + max(program["weights_per_tppe"])
                    + lanes * neurons) + pairs
    return 1000 + 4 * work + 100 * walks * len(program["layers"])


def _read_progress(folder):
    try:
        return int((folder / "progress").read_text() or 0)
    except (OSError, ValueError):
        return 0


def _pass_cycles(bounds):
    """(samples, passes) cycles from the cycle each pass began and the end (-1 where a pass
    never ran: after an early exit), 0 for the passes not run."""
    cycles = np.zeros((len(bounds), bounds.shape[1] - 1), dtype=np.int64)
    for sample, row in enumerate(bounds):
        recorded = int((row >= 0).sum())
        cycles[sample, :recorded - 1] = np.diff(row[:recorded])
    return cycles


def _merge(parts, shards):
    events = []
    for part, (start, _) in zip(parts, shards):
        shifted = part["events"].copy()
        shifted[:, 0] += start
        events.append(shifted)
    return {
        "events": np.concatenate(events) if events else np.zeros((0, 5), dtype=np.int64),
        "cycles": np.concatenate([p["cycles"] for p in parts]),
        "steps": np.concatenate([p["steps"] for p in parts]),
        "load_cycles": np.concatenate([p["load_cycles"] for p in parts]),
        "layer_bounds": np.concatenate([p["layer_bounds"] for p in parts]),
        "results": np.concatenate([p["results"] for p in parts]),
    }
