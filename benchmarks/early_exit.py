"""Early exit on the bundled models: accuracy against the steps run.

    python benchmarks/early_exit.py                    # the reference, every held-out sample
    python benchmarks/early_exit.py --simulate 60      # and the RTL on the first 60 samples

For every bundled model, time chunk T_c (divisors of T below T) and rule ('certain' and
margins 1-3, docs/semantics.md section 8), the integer reference runs the held-out split
with the exit; it prints accuracy, mean steps run and the fraction of predictions that
differ from the full-T run. ``--simulate N`` also compiles each setting with
``--set time_chunk=T_c --set early_exit=RULE`` and co-simulates N samples on Verilator
(bit-exact, steps included, or the benchmark aborts), reporting mean cycles.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from hwgen import build_directory
from hwgen.bundled import MODELS
from hwgen.compiler import hardware_config
from hwgen.compiler.ir import reference
from hwgen.compiler.scheduler.program import compile_program
from hwgen.sim.cosim import cosimulate

RULES = ("certain", 1, 2, 3)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulate", type=int, default=0, metavar="N",
                        help="also co-simulate the first N samples of each setting")
    args = parser.parse_args(argv)
    for name, (load_model, load_test_set) in MODELS.items():
        model = load_model()
        inputs, labels = load_test_set()
        T = model.timesteps
        full = reference.run(model, inputs)
        full_cycles = None
        print(f"{name}: T = {T}, {len(inputs)} held-out samples, all steps: accuracy "
              f"{reference.accuracy(full.predictions, labels):.2%}")
        if args.simulate:
            full_cycles = simulate(model, [], inputs[:args.simulate])
            print(f"  all steps, one chunk: {full_cycles:.0f} cycles (RTL, "
                  f"{args.simulate} samples)")
        print(f"  {'T_c':>4} {'rule':>8} {'accuracy':>9} {'steps':>6} {'changed':>8}"
              + (f" {'cycles':>8}" if args.simulate else ""))
        for lanes in [d for d in range(1, T) if T % d == 0]:
            for rule in RULES:
                trace = reference.run(model, inputs, early_exit=rule, time_chunk=lanes)
                changed = float(np.mean(trace.predictions != full.predictions))
                row = (f"  {lanes:>4} {str(rule):>8} "
                       f"{reference.accuracy(trace.predictions, labels):>9.2%} "
                       f"{trace.steps.mean():>6.2f} {changed:>8.2%}")
                if args.simulate:
                    settings = [f"time_chunk={lanes}", f"early_exit={rule}"]
                    row += f" {simulate(model, settings, inputs[:args.simulate]):>8.0f}"
                print(row, flush=True)
    return 0


def simulate(model, settings, inputs):
    """Mean cycles per inference of the RTL; aborts if it is not bit-exact."""
    program = compile_program(model, hardware_config.load(None, settings))
    with tempfile.TemporaryDirectory() as folder:
        build = build_directory.write(program, model, Path(folder) / "build")
        result = cosimulate(build, inputs)
    if not result.verdict.bit_exact:
        first = result.verdict.first_mismatch[result.verdict.mismatching_samples[0]]
        sys.exit(f"{settings}: NOT BIT-EXACT: {first.describe()}")
    return float(result.cycles.mean())


if __name__ == "__main__":
    sys.exit(main())
