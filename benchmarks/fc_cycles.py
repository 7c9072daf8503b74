"""Measured cycles against the ideal bound, per layer, on fully-connected workloads, the
bundled CNN (its convolutions unrolled into the matrices the TPPEs walk), the bundled
spiking transformer (its AND masks as layers of gates) and a Spikformer and a
Spike-driven Transformer v2 of its size (their Q (K^T V) as three layers).

    python benchmarks/fc_cycles.py                 # the standard set
    python benchmarks/fc_cycles.py --quick         # two workloads, for a smoke run
    python benchmarks/fc_cycles.py --set lif_steps=2 --json out.json
    python benchmarks/fc_cycles.py --set fetch_width=4 --only loas   # LoAS-like layers only
    python benchmarks/fc_cycles.py --set tppes=8 --only transformer
    python benchmarks/fc_cycles.py --only "q(k^t v)"     # Spikformer and SDT v2

For every workload it compiles the model, co-simulates it on Verilator (bit-exactness is
checked on the way: a mismatch aborts the benchmark) and prints per layer: the mean
measured cycles, the mean ideal bound (matched pairs of the busiest TPPE; with
``--set join=laggy`` the larger of those and its walker's steps), their ratio,
the cycles left after subtracting the documented fixed per-layer overhead
(docs/architecture.md, "Performance"), and the write-bus bound (the layer's output writes,
one per cycle: active output neurons plus chunk masks). The goal it checks: on layers with
at least 1,000 matched pairs, measured <= 1.1 x ideal + overhead. For a model with
spike-x-spike layers (AND gates), it also prints their share of the cycles and of the
fiber-program entries and weights (the memories that grow with a layer).
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse

from hwgen.compiler import hardware_config
from hwgen.compiler.passes.legalise import legalise_for
from hwgen.compiler.scheduler.program import compile_program
from hwgen import build_directory, bundled
from hwgen.compiler.scheduler.cycle_model import layer_overhead
from hwgen.sim.compare import write_bound
from hwgen.sim.cosim import cosimulate
from hwgen.sim.workloads import NeuronMode, random_transformer, random_workload


def workloads(quick, only=None):
    """(name, model, inputs, labels) of the benchmark set; ``only``: names containing it."""
    if only is None or only in "digits 64-128-10":
        inputs, labels = bundled.digits_test_set()
        yield "digits 64-128-10", bundled.digits_model(), inputs[:60], labels[:60]
    if not quick and (only is None or only in "digits_cnn conv"):
        # convolutional layers, unrolled (docs/architecture.md, "Convolutional layers")
        inputs, labels = bundled.digits_test_set()
        yield "digits_cnn conv", bundled.digits_cnn_model(), inputs[:60], labels[:60]
    if not quick and (only is None or only in "digits_transformer sdsa"):
        # an SDSA block: AND masks as layers of gates, kept Q/K/V layers
        # (docs/architecture.md, "Spiking transformers")
        inputs, labels = bundled.digits_test_set()
        yield ("digits_transformer sdsa", bundled.digits_transformer_model(), inputs[:30],
               labels[:30])
    for architecture in ("spikformer", "sdt_v2"):
        name = f"{architecture} q(k^t v)"
        if not quick and (only is None or only in name):
            # Q (K^T V): V kept, the matrices reading it, the product reading them
            model, spikes = q_ktv_workload(architecture)
            yield name, model, spikes, None
    # (name, sizes, weight density, spike density, silent fraction, T)
    specs = [
        ("dense 256-256-64", [256, 256, 64], 0.5, 0.3, 0.3, 8),
        ("sparse-w 512-256-10", [512, 256, 10], 0.1, 0.3, 0.2, 8),
        ("sparse-s 512-512-10", [512, 512, 10], 0.3, 0.1, 0.6, 8),
        ("wide 1024-128-10", [1024, 128, 10], 0.25, 0.2, 0.4, 8),
        # LoAS's sparsity (DESIGN.md section 4: 97-98 % zero weights, 60-75 % of inputs
        # silent), T = 4 as in LoAS: a neuron has ~3x more weight chunks than matched pairs.
        ("loas 2304-512-10", [2304, 512, 10], 0.03, 0.25, 0.7, 4),
        ("loas 1152-512-10", [1152, 512, 10], 0.02, 0.3, 0.6, 4),
    ]
    for name, sizes, weight_density, spike_density, silent, T in (
            specs[:1] if quick else specs):
        if only is not None and only not in name:
            continue
        w = random_workload(7, sizes, T, samples=12, spike_density=spike_density,
                            silent_fraction=silent, weight_density=weight_density,
                            modes=(NeuronMode(),))
        yield name, w.model, w.spikes, None


def q_ktv_workload(architecture, samples=12, T=8):
    """A Spikformer (``spikformer``) or Spike-driven Transformer v2 (``sdt_v2``) of
    @digits_transformer's size (16 tokens, 32 features in 2 heads, one block, MLP 64),
    random (:func:`~hwgen.sim.workloads.random_transformer`: it measures cycles, not
    accuracy), with ``samples`` random input spike trains (30 % dense). Returns (model,
    spikes)."""
    model = random_transformer(architecture, dim=32, heads=2, hidden=64, timesteps=T)
    spikes = (np.random.default_rng(0).random((samples, T, 1, 8, 8)) < 0.3).astype(np.uint8)
    return model, spikes


def layer_memory(program):
    """Per layer: (fiber-program entries, weight values) over all TPPEs: the memories a
    layer's size sets (the spike buffers are shared by every layer). A block of the
    program (address generation) counts in the first layer that calls it."""
    from hwgen.compiler.instruction_format import TAG_CHUNK, TAG_PAD, stored_layers
    entries = np.zeros(len(program.layers), dtype=np.int64)
    weights = np.zeros(len(program.layers), dtype=np.int64)
    for words in program.entries:
        for layer, stored in enumerate(stored_layers(program.layouts, words,
                                                     len(program.layers),
                                                     program.config.fetch_width)):
            for entry in stored:
                if entry["tag"] != TAG_PAD:
                    entries[layer] += 1
                if entry["tag"] == TAG_CHUNK:
                    weights[layer] += bin(entry["mask"]).count("1")
    return entries, weights


def spike_by_spike_share(program, model, layer_cycles):
    """(share of cycles, of program entries, of weight values or operands) of the layers
    whose operands are both known at run time only (AND gates; Q (K^T V)'s gates, matrices
    and product), or None if the model has none."""
    from hwgen.compiler.ir import SpikeAnd, SpikeMatmul
    gates = np.array([plan.name not in model or plan.operands is not None
                      or isinstance(model[plan.name], (SpikeAnd, SpikeMatmul))
                      for plan in program.layers])
    if not gates.any():
        return None
    entries, weights = layer_memory(program)
    cycles = layer_cycles.mean(axis=0)
    return (cycles[gates].sum() / cycles.sum(), entries[gates].sum() / entries.sum(),
            weights[gates].sum() / max(1, weights.sum()))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="hardware parameter (repeatable)")
    parser.add_argument("--quick", action="store_true", help="two workloads only")
    parser.add_argument("--only", metavar="TEXT", help="only workloads whose name contains it")
    parser.add_argument("--json", type=Path, help="also write the table as JSON")
    args = parser.parse_args(argv)
    config = hardware_config.load(None, args.overrides)

    rows, failures = [], 0
    header = (f"{'workload':24} {'layer':26} {'pairs':>7} {'ideal':>7} {'cycles':>7} "
              f"{'ratio':>6} {'overhead':>8} {'(c-o)/ideal':>11} {'writes':>6}  goal")
    print(f"config: {config.to_json()}")
    print(header)
    print("-" * len(header))
    for name, model, inputs, labels in workloads(args.quick, args.only):
        started = time.monotonic()
        program = compile_program(model, config)
        with tempfile.TemporaryDirectory() as folder:
            build = build_directory.write(program, model, Path(folder) / "build")
            result = cosimulate(build, inputs, labels=labels)
        if not result.verdict.bit_exact:
            first = result.verdict.first_mismatch[result.verdict.mismatching_samples[0]]
            print(f"{name}: NOT BIT-EXACT: {first.describe()}", file=sys.stderr)
            return 2
        for index, (plan, layer) in enumerate(zip(result.program["layers"],
                                                  legalise_for(model, program.config).layers)):
            dense = layer.dense                    # the matrix the accelerator walks
            # every source the layer reads, in its matrix's column order
            active = layer.input_spikes(result.trace.spikes).any(axis=1).astype(np.int64)
            # an unrolled layer's weight is scipy.sparse: count as sparse @ dense
            nonzero = scipy.sparse.csr_array(dense.weight != 0, dtype=np.int64)
            pairs = float((nonzero @ active.T).sum(axis=0).mean())
            ideal = float(result.ideal[:, index].mean())
            cycles = float(result.layer_cycles[:, index].mean())
            overhead = layer_overhead(program.config, program.timesteps)
            net = (cycles - overhead) / ideal if ideal else float("nan")
            writes = float(write_bound(plan, result.trace.spikes[plan["name"]],
                                       program.config.chunk, program.config.time_chunk,
                                       program.config.write_lanes).mean())
            goal = ""
            if pairs >= 1000:
                ok = cycles <= 1.1 * ideal + overhead
                failures += not ok
                goal = "met" if ok else "MISSED"
            rows.append({"workload": name, "layer": plan["name"], "matched_pairs": pairs,
                         "ideal": ideal, "cycles": cycles, "ratio": cycles / ideal,
                         "overhead": overhead, "net_ratio": net, "write_bound": writes,
                         "goal": goal or None})
            print(f"{name:24} {plan['name'][-26:]:26} {pairs:7.0f} {ideal:7.1f} {cycles:7.1f} "
                  f"{cycles / ideal:6.2f} {overhead:8d} {net:11.2f} {writes:6.0f}  {goal}")
        print(f"{'':24} ({len(inputs)} samples, {time.monotonic() - started:.0f} s, "
              f"bit-exact, {result.cycles.mean():.0f} cycles per inference)")
        share = spike_by_spike_share(program, model, result.layer_cycles)
        if share is not None:
            print(f"{'':24} spike x spike (AND-gate) layers: {share[0]:.1%} of the cycles, "
                  f"{share[1]:.1%} of the program entries, {share[2]:.1%} of the weights")
    if args.json:
        args.json.write_text(json.dumps({"config": config.to_json(), "layers": rows},
                                        indent=1) + "\n")
    print(f"goal (>= 1000 matched pairs: cycles <= 1.1 x ideal + overhead): "
          f"{'met on every layer' if not failures else f'missed on {failures} layer(s)'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
