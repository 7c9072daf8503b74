"""The native co-simulation engine: the core's Verilog Verilated with a C++ driver.

The cocotb testbench (:mod:`hwgen.sim.testbench`) wakes Python on every clock edge, which
caps it at a few ten thousand cycles per second whatever the design. Here the clock loop
is C++ (``native_driver.cpp``, built with the user's ``hwgen_core`` Verilog unchanged): it
drives the core exactly as the testbench does and records the same things (every trace
event with its cycle, the cycle each layer began, the core's cycle counter, load cycles,
result words); Python writes one job file and reads one recording per shard, so it sees
only the events, never a clock edge, and judges them as before (:mod:`hwgen.sim.compare`).

Builds are cached like :class:`hwgen.sim.verilator.VerilatorBuild`'s (by a hash of the
Verilog, the driver source, the flags and the tools; staged, then renamed into place;
concurrent builders wait on a lock).

The TPPE module, instantiated P times, is Verilated once as a hierarchical block
(``--hierarchical``, named in a configuration file, so the Verilog stays as the user gets
it): flattened, Verilator specialises every instance to the signals it is wired to and
compiles P copies. At 30 TPPEs that took the build from 22 s to 6 s.
"""

import fcntl
import hashlib
import json
import os
import resource
import shutil
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from hwgen import toolchain
from hwgen.atomic import interruptions_held
from hwgen.errors import ToolchainError

from .verilator import _tail, cache_root

DRIVER = Path(__file__).with_name("native_driver.cpp")
EXECUTABLE = "hwgen_sim"
# Bump when the build flags or the file formats change.
REVISION = 2
# C++ optimisation of the Verilated model's fast path (the per-cycle eval) and of the rest
# (constructors, memory initialisation: most of the code of a design with big weight
# memories). On the 784-512-512-10 MLP at 2 TPPEs (CPU seconds): all -O0 builds in 30 s
# and simulates 294k cycles in 1.2 s; all -O1 builds in 77 s, simulates in 0.37 s; -O1 for
# the fast path only builds in 29 s and simulates in 0.37 s; -O2 there builds in 34 s and
# simulates in 0.33 s, within the noise.
OPT_FAST = "-O1"
OPT_SLOW = "-O0"
BUILD_ARGS = ("-Wno-fatal",)
JOB_MAGIC = 0x32424F4A4E475748          # "HWGNJOB2", as in native_driver.cpp
OBSERVED_MAGIC = 0x3253424F4E475748     # "HWGNOBS2": with the steps each sample ran


class NativeBuild:
    """The native simulator of ``toplevel`` (the core) from ``sources`` (Verilog paths)."""

    def __init__(self, sources, toplevel, *, waves=False, cache_dir=None, blocks=()):
        self.sources = [Path(s).resolve() for s in sources]
        self.toplevel = toplevel
        self.waves = waves
        # Modules Verilated once however often they are instantiated (see the module doc);
        # not with waves, whose dump would stop at the block's ports.
        self.blocks = () if waves else tuple(blocks)
        self.cache_dir = Path(cache_dir) if cache_dir else cache_root().parent / "native"
        for source in self.sources:
            if not source.is_file():
                raise ToolchainError(f"{source}: Verilog source not found")

    @property
    def key(self):
        verilator = toolchain.find_verilator()
        cxx = toolchain.find_cxx()
        digest = hashlib.sha256()
        identity = {"revision": REVISION, "toplevel": self.toplevel, "waves": self.waves,
                    "blocks": self.blocks,
                    "opt": [OPT_FAST, OPT_SLOW], "args": BUILD_ARGS,
                    "verilator": [verilator.path, verilator.version],
                    "cxx": [cxx.path, cxx.version]}
        digest.update(json.dumps(identity, sort_keys=True).encode())
        digest.update(DRIVER.read_bytes() + b"\0")
        for source in self.sources:
            digest.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
        return digest.hexdigest()[:20]

    @property
    def directory(self):
        return self.cache_dir / f"{self.toplevel}-{self.key}"

    @property
    def executable(self):
        return self.directory / EXECUTABLE

    def build(self, *, log=None):
        """Build unless cached; return the simulator's path."""
        target = self.directory
        if (target / EXECUTABLE).exists():
            return target / EXECUTABLE
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with open(self.cache_dir / f"{target.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if (target / EXECUTABLE).exists():
                return target / EXECUTABLE
            if log:
                log(f"building the native simulator of {self.toplevel} "
                    f"(cached as {target.name})")
            staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=self.cache_dir))
            try:
                self._compile(staging)
                shutil.copy2(staging / "obj" / EXECUTABLE, staging / EXECUTABLE)
                shutil.rmtree(staging / "obj")
                shutil.rmtree(target, ignore_errors=True)
                os.replace(staging, target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return target / EXECUTABLE

    def _compile(self, staging):
        verilator = toolchain.find_verilator()
        env = toolchain.simulation_env()
        make_flags = f"OPT_FAST={OPT_FAST} OPT_SLOW={OPT_SLOW} OPT_GLOBAL={OPT_SLOW}"
        blocks = []
        if self.blocks:
            config = staging / "blocks.vlt"
            config.write_text("`verilator_config\n" + "".join(
                f'hier_block -module "{name}"\n' for name in self.blocks))
            blocks = ["--hierarchical", str(config)]
        # Verilator's hierarchical build raced at -j 2: once in some 500 soak builds make
        # entered the block's folder before its makefile existed ("No targets"). One job
        # at a time it cannot.
        jobs = 1 if self.blocks else os.cpu_count() or 1
        command = [verilator.path, "--cc", "--exe", "--build", "-j", str(jobs),
                   "--top-module", self.toplevel, "--prefix", "Vcore",
                   "-Mdir", str(staging / "obj"), "-o", EXECUTABLE, *BUILD_ARGS,
                   "-MAKEFLAGS", make_flags,
                   *(["--trace"] if self.waves else []), *blocks,
                   str(DRIVER), *[str(s) for s in self.sources]]
        build_log = staging / "build.log"
        with open(build_log, "w") as out:
            result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                    cwd=staging)
        if result.returncode != 0 or not (staging / "obj" / EXECUTABLE).exists():
            raise ToolchainError(f"Verilator build of the native simulator of {self.toplevel} "
                                 f"failed; last lines of its log:\n{_tail(build_log)}")

    def clock_speed(self, cycles):
        """(wall, CPU) seconds the simulator takes for ``cycles`` idle clock cycles after
        reset: the Verilated model's own speed, nothing recorded, process start included."""
        executable = self.build()
        began, cpu = time.perf_counter(), children_cpu()
        result = subprocess.run([str(executable), "--clock", str(int(cycles))],
                                capture_output=True, text=True)
        elapsed, cpu = time.perf_counter() - began, children_cpu() - cpu
        if result.returncode != 0:
            raise ToolchainError(f"{executable} --clock failed: {result.stderr.strip()}")
        return elapsed, cpu

    def run_many(self, runs, *, parallel=None, log=None, bare=False):
        """Run shards: ``runs`` is a list of (folder, job) with ``job`` a dict as
        :func:`write_job` takes; each folder gets job.bin, observed.bin, progress (and
        dump.vcd with waves). Returns one recording dict per run, in order.

        ``bare``: the same runs without reading the trace (no events, no layer starts):
        the model's own speed on the workload, for benchmarks only."""
        executable = self.build(log=log)
        parallel = max(1, min(parallel or os.cpu_count() or 1, len(runs)))

        children = _Children()

        def one(run):
            folder, job = Path(run[0]), run[1]
            folder.mkdir(parents=True, exist_ok=True)
            write_job(folder / "job.bin", **job)
            command = [str(executable), *(["--bare"] if bare else []),
                       str(folder / "job.bin"), str(folder / "observed.bin"),
                       str(folder / "progress"),
                       str(folder / "dump.vcd") if self.waves else "-"]
            returncode, stderr = children.run(command)
            if returncode != 0:
                message = (stderr.strip().splitlines() or [f"exit status {returncode}"])[-1]
                raise ToolchainError(f"the native simulation in {folder} failed: {message}")
            return read_observed(folder / "observed.bin")

        pool = ThreadPoolExecutor(max_workers=parallel) if parallel > 1 else None
        try:
            if pool is None:
                return [one(run) for run in runs]
            return list(pool.map(one, runs))
        except BaseException:
            # Ctrl-C, SIGTERM or a failed shard: no simulator may outlive this call, as
            # the caller then removes the folders they write into.
            children.stop()
            raise
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)


class _Children:
    """The simulator processes of one :meth:`NativeBuild.run_many`, on record from the
    moment they exist, so that :meth:`stop` ends every one of them."""

    def __init__(self):
        self.lock = threading.Lock()
        self.running = set()
        self.stopping = False

    def run(self, command):
        """(exit status, stderr) of ``command``, which :meth:`stop` kills."""
        # An interruption arriving inside Popen() would lose the process, so it is held
        # until the process is on record (the simulator takes the signals again).
        with interruptions_held():
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE, text=True)
            with self.lock:
                self.running.add(process)
                if self.stopping:
                    process.kill()
        try:
            _, stderr = process.communicate()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            with self.lock:
                self.running.discard(process)
        return process.returncode, stderr

    def stop(self):
        with self.lock:
            self.stopping = True
            processes = list(self.running)
        for process in processes:
            process.kill()
        for process in processes:
            process.wait()


def children_cpu():
    """CPU seconds (user + system) used so far by this process's finished children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# The trace fields the driver reads (lane 0's; lane k's are k strides further), in the
# order of the job header.
TRACE_FIELDS = ("layer_pass", "slot", "word", "valid")


def write_job(path, *, words, outputs, layers, timeout, fields):
    """The driver's job file: ``words`` (samples, words per sample) input words, the
    number of result words, passes (time chunks x layers) and the timeout in cycles, and
    ``fields``: :func:`~hwgen.gateware.core_interface.trace_fields` of the trace layout
    ({name: (offset, width, signed)}, (lanes, stride))."""
    words = np.asarray(words, dtype=np.int64)
    if words.ndim != 2:
        raise ValueError(f"write_job: words must be (samples, words), not {words.shape}")
    fields, (lanes, stride) = fields
    for name in TRACE_FIELDS:
        if fields[name][1] > 63:
            raise ToolchainError(f"trace field {name!r} is {fields[name][1]} bits wide; the "
                                 f"recording holds at most 63")
    header = [JOB_MAGIC, len(words), words.shape[1], int(outputs), int(timeout), int(layers)]
    for name in TRACE_FIELDS:
        header += [int(fields[name][0]), int(fields[name][1])]
    header += [int(lanes), int(stride)]
    assert len(header) == 16
    with open(path, "wb") as f:
        np.array(header, dtype=np.uint64).astype("<u8").tofile(f)
        words.astype("<i8").tofile(f)


def read_observed(path):
    """A driver recording -> the dict the testbench's observed.npz holds, plus ``edges``
    (clock cycles simulated, reset included)."""
    data = np.fromfile(path, dtype="<i8")
    if len(data) < 8 or int(data[0]) != OBSERVED_MAGIC:
        raise ToolchainError(f"{path}: not a recording of the native driver")
    samples, layers, outputs, events, edges = (int(x) for x in data[1:6])
    sizes = [("cycles", samples), ("steps", samples), ("load_cycles", samples),
             ("layer_bounds", samples * (layers + 1)), ("results", samples * outputs),
             ("events", events * 5)]
    if len(data) != 8 + sum(size for _, size in sizes):
        raise ToolchainError(f"{path}: the recording is truncated")
    out, at = {}, 8
    for name, size in sizes:
        out[name] = data[at:at + size].astype(np.int64)
        at += size
    out["layer_bounds"] = out["layer_bounds"].reshape(samples, layers + 1)
    out["results"] = out["results"].reshape(samples, outputs)
    out["events"] = out["events"].reshape(events, 5)
    out["edges"] = edges
    return out
