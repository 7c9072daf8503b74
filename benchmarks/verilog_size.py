"""How big the generated Verilog is, and how long Verilator takes over it, on generated designs.

    python benchmarks/verilog_size.py [--designs 10] [--seed 7] [--verilate]

Draws designs the way the soak does (tests/support/model_strategies.py: whole models and
hardware configurations, hypothesis; needs the test extra), skips the ones the compiler
refuses, writes each one's Verilog and prints its lines and the seconds to generate it;
with ``--verilate``, also Verilator's seconds and peak memory to turn it into C++ (no C++
build). Run it on two checkouts to compare them: the same seed draws the same designs.
Co-simulation time on these designs is mostly this, plus the C++ build: the soak's speed.
"""

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--designs", type=int, default=10, help="designs drawn (default 10)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--verilate", action="store_true",
                        help="also time Verilator's translation to C++")
    args = parser.parse_args(argv)

    from hypothesis import HealthCheck, Phase, given, seed, settings
    from model_strategies import cases

    from hwgen import build_directory, toolchain
    from hwgen.compiler.scheduler.program import compile_program
    from hwgen.errors import HwgenError

    verilator = toolchain.find_verilator().path if args.verilate else None
    rows = []

    @seed(args.seed)
    @settings(max_examples=args.designs, database=None, deadline=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(cases())
    def draw(case):
        if case.flaw:
            return
        try:
            model = case.model()
            program = compile_program(model, case.config(model))
        except HwgenError:
            return
        with tempfile.TemporaryDirectory() as folder:
            started = time.monotonic()
            build_directory.write(program, model, Path(folder) / "build")
            generate = time.monotonic() - started
            verilog = Path(folder) / "build" / "rtl" / "hwgen_core.v"
            lines = verilog.read_text().count("\n")
            row = [lines, generate]
            if verilator:
                before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
                started = time.monotonic()
                subprocess.run([verilator, "--cc", str(verilog), "--top-module", "hwgen_core",
                                "-Mdir", str(Path(folder) / "obj"), "-Wno-fatal", "-Wno-lint",
                                "-Wno-style"], check=True, capture_output=True)
                peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
                row += [time.monotonic() - started, max(peak, before) / 1024]
            rows.append((row, case.describe()))
            print(f"P={program.config.tppes:<3d}{lines:9d} lines {generate:6.1f} s"
                  + (f" | verilator {row[2]:6.1f} s, {row[3]:6.0f} MB peak (so far)"
                     if verilator else "") + f"  {case.describe()[:80]}", flush=True)

    draw()
    total = sum(row[0] for row, _ in rows)
    print(f"{len(rows)} designs: {total} lines of Verilog, "
          f"{sum(row[1] for row, _ in rows):.0f} s to generate"
          + (f", {sum(row[2] for row, _ in rows):.0f} s in Verilator" if verilator else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
