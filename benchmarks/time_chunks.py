"""Fully temporal-parallel against temporal-sequential: the same generator, the same workloads.

    python benchmarks/time_chunks.py                  # the standard set
    python benchmarks/time_chunks.py --quick          # the bundled model only
    python benchmarks/time_chunks.py --chunks 1,2,8   # T_c values to run (default 1, T/2, T)
    python benchmarks/time_chunks.py --only conv      # workloads whose name has "conv"

Every workload is compiled at several T_c (time_chunk; T_c = T is LoAS's FTP dataflow,
T_c = 1 the temporal-sequential baseline, ``--set dataflow=sequential``) and co-simulated on
Verilator, bit-exactness checked on the way (a mismatch aborts). Per layer it prints:

- ``packed``: matched pairs with the T steps packed (an input counts if it spikes at all),
  the work of FTP; ``per-step``: matched pairs summed over the steps, the work of a
  sequential design; ``analytic``: their ratio, the work packing saves;
- the measured RTL cycles at each T_c and ``seq/FTP``, the measured ratio;
- the goal: FTP cycles <= (sequential cycles / analytic ratio) x 1.1 on layers with at least
  1,000 packed pairs;
- LoAS's own cycle model on the same matrices (one sample, so M = 1: its row-per-TPPE
  mapping puts all pairs on one TPPE) and its SparTen-S baseline (16 PEs, one weight column
  each, one step at a time, tiles of 128 inputs), for scale (../shared/LOAS_CYCLE_MODEL.md).

LoAS published (T = 4, CIFAR-10 CNNs, pruned): 2.7-3x less work from packing and a 6.8x
mean speedup over SparTen-S; the rest of the 6.8x is the baselines' load imbalance and
the model's idealisations (no fill, drain, fetch or LIF cycles), which hwgen's RTL pays.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse

from hwgen import build_directory, bundled
from hwgen.compiler import hardware_config
from hwgen.compiler.passes.legalise import legalise
from hwgen.compiler.scheduler.program import compile_program
from hwgen.sim.cosim import cosimulate
from hwgen.sim.workloads import NeuronMode, random_workload
from loas_conv_layers import LAYERS as LOAS_CONV_LAYERS
from loas_conv_layers import QUICK as LOAS_CONV_QUICK
from loas_conv_layers import TPPES as LOAS_CONV_TPPES
from loas_conv_layers import build_layer as build_loas_conv_layer

GOAL_PAIRS = 1000
SPARTEN_PES, SPARTEN_K_TILE = 16, 128


def workloads(quick):
    """(name, model, inputs, settings) of the benchmark set: the bundled MLP and CNN;
    fully-connected layers with the shapes and densities of LoAS's VGG16 layers 7 and 8
    (weights 3.3 % and 0.85 % nonzero, 88 % of the inputs silent for all T, T = 4); and two
    of LoAS's convolution layers as benchmarks/loas_conv_layers.py builds them (VGG16 layer
    10, ResNet19 layer 16: shapes, weight and spike densities of LOAS_CYCLE_MODEL.md, T = 4),
    on 16 TPPEs as there. ``settings`` come before the command line's ``--set``."""
    inputs, _ = bundled.digits_test_set()
    yield "digits 64-128-10 (T=8)", bundled.digits_model(), inputs[:40], []
    if quick:
        return
    yield ("digits_cnn conv 1x8x8-16x4x4-32x2x2-10 (T=8)", bundled.digits_cnn_model(),
           inputs[:40], [])
    for name, sizes, weight_density in [("loas vgg16-7 2304-512-10", [2304, 512, 10], 0.0325),
                                         ("loas vgg16-8 4608-512-10", [4608, 512, 10], 0.0085)]:
        w = random_workload(11, sizes, 4, samples=6, spike_density=0.7,
                            silent_fraction=0.88, weight_density=weight_density,
                            modes=(NeuronMode(),))
        yield name + " (T=4)", w.model, w.spikes, []
    for spec in (s for s in LOAS_CONV_LAYERS if f"{s[0]}-{s[1]}" in LOAS_CONV_QUICK):
        model, spikes = build_loas_conv_layer(spec, samples=4, seed=1)
        yield (f"loas conv {spec[0]}-{spec[1]} (T=4)", model, spikes,
               [f"tppes={LOAS_CONV_TPPES}"])


def layer_work(model, plan, trace):
    """(packed pairs, per-step pairs, LoAS cycles, SparTen-S cycles), means over samples."""
    layer = next(l for l in legalise(model).layers if l.name == plan["name"])
    dense = layer.dense                        # the matrix the accelerator walks
    # (samples, T, K): a layer's columns are its source's neurons, then each aux's
    spikes = layer.input_spikes(trace.spikes).astype(np.int64)
    # an unrolled layer's weight is scipy.sparse: count as sparse @ dense
    sparse = scipy.sparse.csr_array(dense.weight != 0, dtype=np.int64)   # (N, K)
    samples, steps, inputs = spikes.shape
    packed = (sparse @ spikes.any(axis=1).astype(np.int64).T).sum(axis=0)
    per_step = (sparse @ spikes.reshape(-1, inputs).T).sum(axis=0).reshape(samples,
                                                                            steps).sum(axis=1)
    nonzero = sparse.T.toarray()                     # (K, N): one sample row, M = 1
    # SparTen-S: per step and tile of 128 inputs, 16 PEs each take one output column.
    K, N = nonzero.shape
    sparten = np.zeros(len(spikes), dtype=np.int64)
    for k0 in range(0, K, SPARTEN_K_TILE):
        work = spikes[:, :, k0:k0 + SPARTEN_K_TILE] @ nonzero[k0:k0 + SPARTEN_K_TILE]
        for n0 in range(0, N, SPARTEN_PES):
            sparten += work[:, :, n0:n0 + SPARTEN_PES].max(axis=2).sum(axis=1)
    return packed.mean(), per_step.mean(), packed.mean(), sparten.mean()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="hardware parameter (repeatable)")
    parser.add_argument("--chunks", help="T_c values, comma-separated (default 1, T/2, T)")
    parser.add_argument("--quick", action="store_true", help="the bundled model only")
    parser.add_argument("--only", help="only the workloads whose name contains this")
    parser.add_argument("--json", type=Path, help="also write the table as JSON")
    args = parser.parse_args(argv)

    rows, failures = [], 0
    for name, model, inputs, settings in workloads(args.quick):
        if args.only and args.only not in name:
            continue
        T = model.timesteps
        lanes = sorted({int(c) for c in args.chunks.split(",")} if args.chunks
                       else {1, max(1, T // 2), T}, reverse=True)
        lanes = [c for c in lanes if T % c == 0]
        started = time.monotonic()
        cycles, results = {}, {}
        for c in lanes:
            config = hardware_config.load(None, settings + args.overrides + [f"time_chunk={c}"])
            program = compile_program(model, config)
            with tempfile.TemporaryDirectory() as folder:
                build = build_directory.write(program, model, Path(folder) / "build")
                result = cosimulate(build, inputs)
            if not result.verdict.bit_exact:
                first = result.verdict.first_mismatch[result.verdict.mismatching_samples[0]]
                print(f"{name} T_c={c}: NOT BIT-EXACT: {first.describe()}", file=sys.stderr)
                return 2
            cycles[c] = result.layer_cycles.mean(axis=0)
            results[c] = result
        print(f"\n{name}: T = {T}, {len(inputs)} samples, {program.config.tppes} TPPEs, "
              f"chunk {program.config.chunk}, all bit-exact ({time.monotonic() - started:.0f} s)")
        heads = "".join(f"{'T_c=' + str(c):>9}" for c in lanes)
        header = (f"  {'layer':6} {'packed':>8} {'per-step':>9} {'analytic':>8}{heads} "
                  f"{'seq/FTP':>8} {'LoAS':>8} {'SparTen-S':>9}  goal")
        print(header)
        trace = results[lanes[0]].trace
        for index, plan in enumerate(results[lanes[0]].program["layers"]):
            packed, per_step, loas, sparten = layer_work(model, plan, trace)
            analytic = per_step / packed if packed else float("nan")
            measured = [float(cycles[c][index]) for c in lanes]
            ftp, seq = cycles[T][index] if T in cycles else None, cycles.get(1, [None])[index] \
                if 1 in cycles else None
            goal = ""
            if ftp is not None and seq is not None and packed >= GOAL_PAIRS:
                ok = ftp <= seq / analytic * 1.1
                failures += not ok
                goal = "met" if ok else "MISSED"
            ratio = seq / ftp if ftp and seq else float("nan")
            print(f"  {plan['name']:6} {packed:8.0f} {per_step:9.0f} {analytic:8.2f}"
                  + "".join(f"{m:9.0f}" for m in measured)
                  + f" {ratio:8.2f} {loas:8.0f} {sparten:9.0f}  {goal}")
            rows.append({"workload": name, "layer": plan["name"], "timesteps": T,
                         "packed_pairs": packed, "per_step_pairs": per_step,
                         "analytic_ratio": analytic,
                         "cycles": {str(c): m for c, m in zip(lanes, measured)},
                         "measured_ratio": ratio, "loas_model_cycles": loas,
                         "sparten_s_model_cycles": sparten, "goal": goal or None})
        total = {c: float(cycles[c].sum()) for c in lanes}
        print("  per inference: " + ", ".join(f"T_c={c}: {total[c]:.0f} cycles" for c in lanes))
    if args.json:
        args.json.write_text(json.dumps({"overrides": args.overrides, "layers": rows},
                                        indent=1) + "\n")
    print(f"\ngoal (>= {GOAL_PAIRS} packed pairs: FTP <= sequential / analytic x 1.1): "
          f"{'met on every layer' if not failures else f'missed on {failures} layer(s)'}")
    print("LoAS published: 2.7-3x less work from packing (T = 4), 6.8x mean speedup over "
          "SparTen-S on pruned CIFAR-10 CNNs")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
