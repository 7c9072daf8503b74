"""Co-simulation speed: simulated clock cycles per second, against the Verilated model's own.

    python benchmarks/cosim_speed.py                  # 784-512-512-10 and 128-64-10 MLPs
    python benchmarks/cosim_speed.py --quick          # the small MLP only
    python benchmarks/cosim_speed.py --samples 32 --cocotb-samples 2 --set tppes=4

(the small MLP runs 20 times as many samples as asked).

For each random workload (hwgen.sim.workloads, LoAS-like sparsity: 10 % nonzero weights,
half of the inputs silent, the others spiking at 30 % of the steps) it compiles the model,
co-simulates it with both engines of hwgen.sim.cosim on one shard (one process, so every
number is one core's speed) and prints, in clock cycles per second of simulated time:

- model:  the Verilated model on the same workload, driven by the same C++ loop but with
          nothing recorded (the native driver's ``--bare`` mode: same build, same two
          evaluations per cycle, process start included);
- idle:   the same build clocked after reset with the core idle (``--clock``): an idle
          core evaluates about twice as fast as a busy one, so this is an upper bound on
          the model's speed, not the speed of the same work;
- native: the native engine (C++ clock loop, every trace event, layer start, cycle count and
          result recorded, Python reading the recording at the end);
- cocotb: the cocotb testbench (Python awakened on every clock edge), on fewer samples.

Cycles are every clock edge a run simulates (reset, input loading, inferences, reading the
results), divided by the CPU time of the simulator processes (builds excluded): on a
machine shared with other work, wall time measures the neighbours; the wall-time speeds are
printed below the table. Every speed includes starting the simulator process (and, for
cocotb, Python). Both engines
must be bit-exact and record the same cycles, per-layer cycles and spikes: a difference
aborts the benchmark. The goals of issue 12: native within 2x of model, and at least 10x
the cocotb testbench's ~30k cycles/s on the 784-512-512-10 MLP.

The numbers are one core's: every engine runs one shard here, while cosimulate() runs as
many shards as there are cores.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hwgen import build_directory
from hwgen.compiler import hardware_config
from hwgen.compiler.scheduler.program import compile_program
from hwgen.compiler.ir.spike_words import spikes_to_words
from hwgen.gateware.core_interface import trace_fields
from hwgen.sim.cosim import _timeout_cycles, cosimulate
from hwgen.sim.native import NativeBuild, children_cpu
from hwgen.sim.workloads import random_workload

# (name, sizes, sample multiplier): the small MLP takes ~500 cycles a sample, so it gets
# more samples, lest process start-up be all that is measured.
WORKLOADS = [("MLP 784-512-512-10", [784, 512, 512, 10], 1), ("MLP 128-64-10", [128, 64, 10], 20)]
SPARSITY = {"weight_density": 0.1, "spike_density": 0.3, "silent_fraction": 0.5}


def _same_recording(native, cocotb):
    """Where the cocotb engine's samples (a prefix of the native run's) disagree, or None."""
    n = cocotb.samples
    if not np.array_equal(native.cycles[:n], cocotb.cycles):
        return "cycle counts"
    if not np.array_equal(native.layer_cycles[:n], cocotb.layer_cycles):
        return "per-layer cycles"
    if not np.array_equal(native.load_cycles[:n], cocotb.load_cycles):
        return "load cycles"
    for layer, spikes in cocotb.verdict.rtl_spikes.items():
        if not np.array_equal(native.verdict.rtl_spikes[layer][:n], spikes):
            return f"spikes of {layer}"
    if not np.array_equal(native.verdict.rtl_membranes[:n], cocotb.verdict.rtl_membranes):
        return "membranes"
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="hardware parameter (repeatable)")
    parser.add_argument("--samples", type=int, default=16, help="samples, native engine")
    parser.add_argument("--cocotb-samples", type=int, default=6,
                        help="samples for the cocotb testbench (0: skip it)")
    parser.add_argument("--timesteps", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="the small MLP only")
    args = parser.parse_args(argv)
    config = hardware_config.load(None, args.overrides)
    print(f"config: {config.to_json()}")
    print(f"workload: T={args.timesteps}, {SPARSITY}")
    header = (f"{'workload':20} {'cycles/sample':>13} {'idle c/s':>10} {'model c/s':>10} "
              f"{'native c/s':>10} {'cocotb c/s':>10} {'model/native':>12} "
              f"{'idle/native':>11} {'native/cocotb':>13}")
    print(header)
    print("-" * len(header))
    walls = []
    for name, sizes, more in WORKLOADS[1:] if args.quick else WORKLOADS:
        w = random_workload(12, sizes, args.timesteps, samples=args.samples * more,
                            spike_density=SPARSITY["spike_density"],
                            silent_fraction=SPARSITY["silent_fraction"],
                            weight_density=SPARSITY["weight_density"])
        program = compile_program(w.model, config)
        with tempfile.TemporaryDirectory() as folder:
            build = build_directory.write(program, w.model, Path(folder) / "build")
            native = cosimulate(build, w.spikes, parallel=1)
            if not native.verdict.bit_exact:
                first = native.verdict.first_mismatch[native.verdict.mismatching_samples[0]]
                print(f"{name}: NOT BIT-EXACT (native): {first.describe()}", file=sys.stderr)
                return 2
            cycles = native.simulated_cycles
            simulator = NativeBuild([build.verilog], build.top_module)
            idle_wall, idle_cpu = simulator.clock_speed(cycles)
            job = {"words": spikes_to_words(native.trace.spikes[w.model.input.name]),
                   "outputs": native.program["outputs"],
                   "layers": len(native.program["layers"]),
                   "timeout": _timeout_cycles(native.program, native.ideal),
                   "fields": trace_fields(build.trace_layout)}   # not read in a bare run
            began, cpu = time.perf_counter(), children_cpu()
            (bare,) = simulator.run_many([(Path(folder) / "bare", job)], bare=True)
            bare_wall, bare_cpu = time.perf_counter() - began, children_cpu() - cpu
            if bare["edges"] != cycles or not np.array_equal(bare["cycles"], native.cycles):
                print(f"{name}: the bare run simulated other cycles", file=sys.stderr)
                return 2
            speeds = {"idle": (cycles / idle_cpu, cycles / idle_wall),
                      "model": (cycles / bare_cpu, cycles / bare_wall),
                      "native": (cycles / native.simulation_cpu_seconds,
                                 cycles / native.simulation_seconds)}
            if args.cocotb_samples:
                old = cosimulate(build, w.spikes[:args.cocotb_samples * more], parallel=1,
                                 engine="cocotb")
                difference = _same_recording(native, old)
                if not old.verdict.bit_exact or difference:
                    print(f"{name}: the engines disagree ({difference or 'cocotb mismatch'})",
                          file=sys.stderr)
                    return 2
                speeds["cocotb"] = (old.simulated_cycles / old.simulation_cpu_seconds,
                                    old.simulated_cycles / old.simulation_seconds)
        per_sample = cycles / native.samples
        idle, model, ours = speeds["idle"][0], speeds["model"][0], speeds["native"][0]
        old_speed = speeds.get("cocotb", (None,))[0]
        cocotb_text = f"{old_speed:10.0f}" if old_speed else f"{'-':>10}"
        ratio_text = f"{ours / old_speed:12.1f}x" if old_speed else f"{'-':>13}"
        print(f"{name:20} {per_sample:13.0f} {idle:10.0f} {model:10.0f} {ours:10.0f} "
              f"{cocotb_text} {model / ours:11.2f}x {idle / ours:10.2f}x {ratio_text}")
        walls.append((name, {k: v[1] for k, v in speeds.items()}))
    print("cycles per wall-clock second (machine load included):")
    for name, speeds in walls:
        print(f"  {name:20} " + ", ".join(f"{k} {v:.0f}" for k, v in speeds.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
