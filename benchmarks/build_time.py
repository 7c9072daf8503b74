"""Native co-simulation builds: the TPPE flattened P times against Verilated once.

    python benchmarks/build_time.py [--tppes 2 8 16 32] [--sizes 64 64 10]

For each TPPE count P it compiles one random workload (hwgen.sim.workloads, LoAS-like
sparsity), writes its Verilog, and builds the native simulator (sim/native.py) twice in a
fresh cache: flat (Verilator specialises every TPPE instance) and with the ``hwgen_tppe``
module Verilated once as a hierarchical block. It prints the Verilog's lines, the seconds
Amaranth took to write it, both builds' seconds and both models' speed in microseconds per
clock cycle (``--clock``: the core idle after reset, process start included).

``hwgen simulate`` picks the hierarchical build for designs of at least
``BLOCK_MIN_TPPES`` TPPEs and runs of at most ``BLOCK_MAX_CYCLES`` cycles (sim/cosim.py):
the build saved must outweigh the slower simulation. Builds go through ccache when it is
installed, as the soak's do; the first build of a run then also fills ccache with the
Verilator runtime, so the first row's flat build reads high.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from hwgen import build_directory
from hwgen.compiler import hardware_config
from hwgen.compiler.scheduler.program import compile_program
from hwgen.sim.cosim import BLOCK_MAX_CYCLES, BLOCK_MIN_TPPES
from hwgen.sim.native import NativeBuild
from hwgen.sim.workloads import random_workload

CLOCK_CYCLES = 200_000


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tppes", type=int, nargs="+", default=[2, 8, 16, 32])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 64, 10],
                        help="layer sizes of the MLP, input first")
    args = parser.parse_args(argv)
    if shutil.which("ccache") and "OBJCACHE" not in os.environ.get("MAKEFLAGS", ""):
        os.environ["MAKEFLAGS"] = f"{os.environ.get('MAKEFLAGS', '')} OBJCACHE=ccache".strip()

    workload = random_workload(4, args.sizes, 8, samples=1, spike_density=0.3,
                               weight_density=0.1, silent_fraction=0.5)
    print(f"MLP {'-'.join(map(str, args.sizes))}, T = 8; ccache "
          f"{'on' if 'OBJCACHE' in os.environ.get('MAKEFLAGS', '') else 'off'}")
    print(f"{'P':>3} | {'Verilog lines':>13} | {'write s':>7} | {'build flat s':>12} | "
          f"{'build once s':>12} | {'us/cycle flat':>13} | {'us/cycle once':>13}")
    for tppes in args.tppes:
        config = hardware_config.load(None, [f"tppes={tppes}"])
        program = compile_program(workload.model, config)
        with tempfile.TemporaryDirectory(prefix="hwgen-build-time-") as folder:
            folder = Path(folder)
            began = time.perf_counter()
            build = build_directory.write(program, workload.model, folder / "build")
            write = time.perf_counter() - began
            lines = Path(build.verilog).read_text().count("\n")
            row = []
            for blocks in ((), (build.tppe_module,)):
                simulator = NativeBuild([build.verilog], build.top_module,
                                        cache_dir=folder / f"cache{len(blocks)}", blocks=blocks)
                began = time.perf_counter()
                simulator.build()
                seconds = time.perf_counter() - began
                wall, _ = simulator.clock_speed(CLOCK_CYCLES)
                row.append((seconds, wall / CLOCK_CYCLES * 1e6))
        print(f"{tppes:>3} | {lines:>13,} | {write:>7.1f} | {row[0][0]:>12.1f} | "
              f"{row[1][0]:>12.1f} | {row[0][1]:>13.2f} | {row[1][1]:>13.2f}", flush=True)
    print(f"\nhwgen simulate Verilates the TPPE once from {BLOCK_MIN_TPPES} TPPEs for runs of "
          f"at most {BLOCK_MAX_CYCLES:,} cycles (sim/cosim.py)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
