"""LoAS's conv layers in RTL: measured cycles against LoAS's and SparTen-S's cycle models on
the same matrices.

    python benchmarks/loas_conv_layers.py                      # every layer of the table
    python benchmarks/loas_conv_layers.py --quick              # two small layers
    python benchmarks/loas_conv_layers.py --only vgg16 --set fetch_width=4 --json out.json

For each layer of LoAS's AlexNet, VGG16 and ResNet19 (../shared/LOAS_CYCLE_MODEL.md: M
output pixels, K = C_in * kh * kw, N = C_out, weight and packed spike densities) it builds
one conv2d layer with that shape -- Input (C_in, H, W) spikes -> Conv2d -> LIF -- with
random weights and spikes at the table's densities (T = 4, seeded) -- followed by one
more neuron, so that the conv layer writes its spikes as a layer inside a network does, not
every neuron's result as a last layer does -- compiles it at 16 TPPEs,
co-simulates it on Verilator (bit-exactness is checked: a mismatch aborts) and prints the
mean over the samples of:

- ``pairs``: matched (active input, nonzero weight) pairs, all T steps packed;
- ``ideal``: hwgen's ideal bound (the co-simulation's: the busiest TPPE's matched pairs);
- ``cycles``: the measured RTL cycles of the layer;
- ``LoAS``: LoAS's count on the im2col view of the same spikes and weights (tiles of
  16 rows m x 128 k by 128 k x 32 n, a PE per row, a tile costs its busiest row's matched
  pairs: :func:`loas_cycles`), and ``SparTen-S``: its baseline's (one step at a time, tiles
  of 32 m x 128 k by 128 k x 16 n, a PE per column: :func:`sparten_cycles`);
- ``fetch`` and ``lif``: two lower bounds of hwgen's own machine that its ideal bound leaves
  out, to say what limits it: the busiest TPPE's fiber-program entries / fetch_width (one
  fetch group per cycle) and its neurons x (T_c / lif_steps) (the LIF stage's cycles);
- ``writes``: the layer's output writes on the write bus shared by the TPPEs (a word per
  neuron that spiked and a mask per chunk of a TPPE's outputs), one per lane and cycle, on
  its busiest lane (``--set write_lanes=B``: B lanes, :func:`~hwgen.sim.compare.write_bound`);
- the ratios and the goal: measured cycles <= LoAS's count (which no RTL has shown).

Shapes from (M, K, N): the output map is square, sqrt(M) x sqrt(M). Where 9 divides K the
layer is a 3 x 3 convolution of C_in = K / 9 channels, stride 1, padding 1, so the input
map is the output's size; otherwise (K = 64, 128, 256: ResNet19's shortcut projections) a
1 x 1 convolution of C_in = K channels with stride 2 (the shortcut halves the map), the input
twice the output's side. A layer that halved its map by pooling or by a strided 3 x 3
convolution has the same M, K and N, and so the same counts on random data. Padding makes
some im2col entries zero; an input neuron is active with the table's packed density scaled
up by (M K / non-padded im2col entries), so that the im2col view has the table's density.
An active neuron spikes at each of the T steps with probability 0.7, conditioned on at
least one spike (2.8 spikes on average, LoAS's 2.7-3x packing gain); weights are 4-bit,
nonzero uniformly in +-1..7. The neurons (integrate and fire) share one threshold, set so
that the fraction of them that spike is the next layer's packed density in the table.

A layer the accelerator cannot run (more than MAX_SPIKE_DEPTH neurons in or out, program or
weight depth) or whose program is too large to co-simulate in a few minutes (``--max-entries``:
the Verilog holds every stored program entry as memory contents, and generating and
Verilating it takes about 4 minutes per 500,000 entries) is printed as refused, with the
reason.

``--producer``: the convolution reads the spikes of a copy layer in front of it (a 1 x 1
identity convolution into integrate-and-fire neurons of threshold 1, exactly its input
spikes), laid out as hwgen lays out a layer's outputs -- whole pixels per TPPE, a pixel's
channels in consecutive slots -- as a convolution inside a network reads them. Its interior
pixels then share one block of the fiber program per TPPE (address generation,
docs/architecture.md), so the stored program is about one pixel's entries per TPPE plus a
call per pixel, and the layers too large to store before run (``--max-walked`` bounds the
entries the compiler writes before it shares them: the compile time). The columns
``stored`` and ``walked`` give the busiest TPPE's stored and walked entries of the layer
(stored: in its own program memory; with ``--set mapping=tiles`` the layer runs in step
and its block is stored once, in the shared program memory, and counted in the stored
total printed after the goal);
``fetch``, the busiest TPPE's fetch cycles: the groups of ``fetch_width`` entries it reads
(each neuron starts a group) and its calls' cycles.
"""

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse

from hwgen import build_directory
from hwgen.compiler import hardware_config
from hwgen.compiler.instruction_format import (TAG_CALL, TAG_LAYER_END, TAG_NEURON,
                                               stored_layers, walk)
from hwgen.compiler.ir import LIF, Conv2d, Dense, Flatten, Input, Model, reference
from hwgen.compiler.passes.legalise import legalise
from hwgen.compiler.scheduler.assign import fiber_entries
from hwgen.compiler.scheduler.blocks import CALL_CYCLES
from hwgen.compiler.scheduler.program import compile_program
from hwgen.errors import FitError, UnsupportedError
from hwgen.sim.compare import write_bound
from hwgen.sim.cosim import cosimulate

T = 4
TPPES = 16
STEP_PROBABILITY = 0.7
MAX_ENTRIES = 600_000
MAX_WALKED = 3_000_000

# (net, layer, M, K, N, weight density, packed spike density): LOAS_CYCLE_MODEL.md
LAYERS = [
    ("alexnet", 1, 64, 576, 192, 0.0948, 0.058),
    ("alexnet", 2, 64, 1728, 384, 0.0220, 0.046),
    ("alexnet", 3, 64, 3456, 256, 0.0113, 0.184),
    ("alexnet", 4, 64, 2304, 256, 0.0067, 0.178),
    ("vgg16", 1, 1024, 576, 64, 0.2021, 0.101),
    ("vgg16", 2, 256, 576, 128, 0.1762, 0.117),
    ("vgg16", 3, 256, 1152, 128, 0.1328, 0.161),
    ("vgg16", 4, 64, 1152, 256, 0.1258, 0.119),
    ("vgg16", 5, 64, 2304, 256, 0.0741, 0.134),
    ("vgg16", 6, 64, 2304, 256, 0.0641, 0.136),
    ("vgg16", 7, 16, 2304, 512, 0.0325, 0.117),
    ("vgg16", 8, 16, 4608, 512, 0.0085, 0.134),
    ("vgg16", 9, 16, 4608, 512, 0.0110, 0.249),
    ("vgg16", 10, 4, 4608, 512, 0.0033, 0.109),
    ("vgg16", 11, 4, 4608, 512, 0.0018, 0.127),
    ("vgg16", 12, 4, 4608, 512, 0.0024, 0.145),
    ("resnet19", 1, 256, 576, 128, 0.2443, 0.100),
    ("resnet19", 2, 256, 1152, 128, 0.1747, 0.106),
    ("resnet19", 3, 256, 64, 128, 0.3978, 0.105),
    ("resnet19", 4, 256, 1152, 128, 0.2154, 0.134),
    ("resnet19", 5, 256, 1152, 128, 0.1885, 0.108),
    ("resnet19", 6, 256, 1152, 128, 0.1810, 0.173),
    ("resnet19", 7, 256, 1152, 128, 0.1384, 0.150),
    ("resnet19", 8, 64, 1152, 256, 0.0599, 0.229),
    ("resnet19", 9, 64, 2304, 256, 0.0398, 0.201),
    ("resnet19", 10, 64, 128, 256, 0.1677, 0.267),
    ("resnet19", 11, 64, 2304, 256, 0.0409, 0.314),
    ("resnet19", 12, 64, 2304, 256, 0.0526, 0.361),
    ("resnet19", 13, 64, 2304, 256, 0.0257, 0.368),
    ("resnet19", 14, 64, 2304, 256, 0.1248, 0.430),
    ("resnet19", 15, 16, 2304, 512, 0.0085, 0.367),
    ("resnet19", 16, 16, 4608, 512, 0.0025, 0.233),
    ("resnet19", 17, 16, 256, 512, 0.0362, 0.440),
    ("resnet19", 18, 16, 4608, 512, 0.0033, 0.243),
    ("resnet19", 19, 16, 4608, 512, 0.0053, 0.296),
]
QUICK = ("vgg16-10", "resnet19-16")

# LOAS_CYCLE_MODEL.md: (m rows, k, n columns) of a tile, and whether a PE takes a row m
# (all n of the tile) or a column n (all m)
LOAS_TILE = (16, 128, 32)
SPARTEN_TILE = (32, 128, 16)


def tile_cycles(x, w, tile, per):
    """One design's count for one time step (or all T packed): sum over tiles of the
    busiest PE's matched pairs. ``x`` (M, K) 0/1, ``w`` (K, N) 0/1; ``tile`` = (m, k, n);
    ``per`` = "row" (a PE per row m of the tile, over its n and k) or "column" (a PE per
    column n, over its m and k). Partial tiles at the edges are padded with zeros."""
    tm, tk, tn = tile
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    (M, K), N = x.shape, w.shape[1]
    mt, nt = -(-M // tm), -(-N // tn)
    total = 0
    for k0 in range(0, K, tk):
        pairs = np.zeros((mt * tm, nt * tn), dtype=np.int64)
        pairs[:M, :N] = x[:, k0:k0 + tk] @ w[k0:k0 + tk]        # per (m, n), this k tile
        blocks = pairs.reshape(mt, tm, nt, tn)
        if per == "row":
            total += int(blocks.sum(axis=3).max(axis=1).sum())
        else:
            total += int(blocks.sum(axis=1).max(axis=2).sum())
    return total


def loas_cycles(spikes, weights):
    """LoAS's count: ``spikes`` (T, M, K) 0/1 (im2col'd), ``weights`` (K, N); a neuron's
    T steps packed into one operand (it counts if it spikes at all)."""
    packed = np.asarray(spikes).any(axis=0)
    return tile_cycles(packed, np.asarray(weights) != 0, LOAS_TILE, "row")


def sparten_cycles(spikes, weights):
    """SparTen-S's count: the same tiles' work one time step at a time, a PE per column."""
    nonzero = np.asarray(weights) != 0
    return sum(tile_cycles(step, nonzero, SPARTEN_TILE, "column") for step in spikes)


def layer_shape(M, K, N):
    """(C_in, input side, kernel, stride, padding) of a square layer with LoAS's M, K, N."""
    side = math.isqrt(M)
    if side * side != M:
        raise ValueError(f"layer_shape: M = {M} output pixels is not a square map")
    if K % 9 == 0:
        return K // 9, side, 3, 1, 1
    return K, 2 * side, 1, 2, 0


def im2col(spikes, kernel, stride, padding):
    """(samples, T, C, H, W) spikes -> (samples, T, M, K), K in (c, kh, kw) order."""
    samples, steps = spikes.shape[:2]
    patches = reference.windows(spikes.reshape(samples * steps, *spikes.shape[2:]),
                                (kernel, kernel), (stride, stride), (padding, padding),
                                (1, 1))                      # (S*T, C, Ho, Wo, kh, kw)
    patches = np.moveaxis(patches, 1, 3)                     # (S*T, Ho, Wo, C, kh, kw)
    pixels = patches.shape[1] * patches.shape[2]
    return patches.reshape(samples, steps, pixels, -1)


def build_layer(spec, samples, seed, producer=False):
    """(model, spikes (samples, T, C, H, W) uint8) for one row of :data:`LAYERS`.

    ``producer``: the convolution reads the spikes of a copy layer (a 1 x 1 identity
    convolution into integrate-and-fire neurons of threshold 1, which spike exactly when
    their input does) instead of the network's input: its input fiber is then laid out as
    hwgen lays out a layer's outputs, as a convolution inside a network reads it, not in
    the input's C order."""
    net, index, M, K, N, weight_density, spike_density = spec
    channels, side, kernel, stride, padding = layer_shape(M, K, N)
    rng = np.random.default_rng([seed, index, *net.encode()])
    shape = (N, channels, kernel, kernel)
    weight = rng.integers(1, 8, shape) * rng.choice([-1, 1], shape)
    weight *= rng.random(shape) < weight_density
    # the im2col view's non-padded entries, to scale the input density up to the table's
    positions = np.ones((1, 1, channels, side, side), dtype=np.uint8)
    inside = int(im2col(positions, kernel, stride, padding).sum())
    active_probability = min(1.0, spike_density * M * K / inside)
    active = rng.random((samples, 1, channels, side, side)) < active_probability
    patterns = np.arange(1, 1 << T)
    count = np.array([bin(p).count("1") for p in patterns])
    odds = STEP_PROBABILITY ** count * (1 - STEP_PROBABILITY) ** (T - count)
    chosen = rng.choice(patterns, size=active.shape[:1] + active.shape[2:], p=odds / odds.sum())
    steps = (chosen[:, None] >> np.arange(T)[None, :, None, None, None]) & 1
    spikes = (steps * active).astype(np.uint8)
    bound = int(np.abs(weight).reshape(N, -1).sum(axis=1).max())
    model = Model(f"{net}_{index}", T)
    model.add(Input("input", (channels, side, side)))
    source = "input"
    if producer:
        identity = np.eye(channels, dtype=np.int64).reshape(channels, channels, 1, 1)
        model.add(Conv2d("copy_conv", identity, weight_bits=2, acc_bits=2), "input")
        model.add(LIF("copy", np.ones(channels * side * side, dtype=np.int64), v_bits=3),
                  "copy_conv")
        source = "copy"
    model.add(Conv2d("conv", weight, stride=stride, padding=padding, weight_bits=4,
                     acc_bits=max(2, bound.bit_length() + 1)), source)
    # The threshold sets how many neurons spike, and so the layer's output writes: the
    # fraction of the next layer's inputs that are active in the table (integrate-and-fire,
    # subtractive reset: a neuron spikes iff its running sum reaches theta at some step).
    current = reference.conv(model["conv"], spikes.reshape(samples, T, -1),
                             (channels, side, side))
    peak = np.cumsum(current, axis=1).max(axis=1)               # (samples, neurons)
    theta = max(1, int(np.ceil(np.quantile(peak, 1 - output_density(spec)))))
    model.add(LIF("lif", np.full(N * M, theta), v_bits=16), "conv")
    # one more neuron after it, so that the conv layer writes its spikes into the next
    # layer's fiber as a layer inside a network does (a last layer writes every neuron's
    # word and membrane into the result buffer instead, one per cycle)
    tap = np.zeros((1, N * M), dtype=np.int64)
    tap[0, rng.choice(N * M, size=min(N * M, 16), replace=False)] = 1
    model.add(Flatten("flatten"), "lif")
    model.add(Dense("tap", tap, weight_bits=2, acc_bits=6), "flatten")
    model.add(LIF("out", np.full(1, 2), v_bits=8), "tap")
    return model.validate(), spikes


def output_density(spec):
    """The packed density of the layer after ``spec`` in the table (the last layer of a
    net: its own), which the layer's output spikes are drawn to."""
    at = LAYERS.index(spec)
    following = LAYERS[at + 1] if at + 1 < len(LAYERS) else spec
    return following[6] if following[0] == spec[0] else spec[6]


def program_entries(model, chunk, producer=False):
    """Fiber-program entries the conv layer walks (a header per neuron, an entry per chunk
    of its weight fiber), from the unrolled matrix alone: cheap, before compiling. It sets
    the compile time (the compiler writes every entry before it shares repeated runs).
    With a ``producer``, its input is taken as position-major (a pixel's channels in
    consecutive slots), as the copy layer lays it out (but for the padding where a TPPE's
    range of pixels ends)."""
    layer = next(layer for layer in legalise(model).layers if layer.name == "lif")
    weight = scipy.sparse.csr_array(layer.dense.weight)
    if producer:
        channels, side, _ = model["input"].shape
        index = np.arange(channels * side * side)
        slot = (index % (side * side)) * channels + index // (side * side)
        weight = scipy.sparse.csr_array((weight.data, slot[weight.indices], weight.indptr),
                                        shape=weight.shape)
        weight.sort_indices()
    return int(fiber_entries(weight, chunk).sum())


def neuron_groups(kinds, fetch_width):
    """Per neuron, the groups of ``fetch_width`` entries a fetch reads for it: ``kinds``
    are a layer's entries in order ("neuron", then its "chunk"s); each neuron's header
    starts a group, so a neuron of e entries takes ceil(e / K)."""
    sizes = []
    for kind in kinds:
        if kind == "neuron":
            sizes.append(0)
        sizes[-1] += 1
    return [-(-e // fetch_width) for e in sizes]


def layer_entries(program, index):
    """Per TPPE, the entries its fetch walks in layer ``index`` (blocks expanded), the
    groups of ``fetch_width`` entries it reads for them (a neuron's entries start a group,
    so a neuron of e entries takes ceil(e / K) groups), the program words that layer stores
    in the TPPE's own memory (its part of the program and the blocks it calls, PADs
    included; of a layer run in step, mapping=tiles, its calls: the block is in the shared
    memory) and its calls."""
    K, layers = program.config.fetch_width, len(program.layers)
    walked, groups, stored, calls = [], [], [], []
    for words in program.entries:
        layer, kinds = 0, []
        for entry in walk(program.layouts, words, layers, K):
            if entry["tag"] == TAG_LAYER_END:
                layer += 1
            elif layer == index:
                kinds.append("neuron" if entry["tag"] == TAG_NEURON else "chunk")
        walked.append(len(kinds))
        groups.append(sum(neuron_groups(kinds, K)))
        own = stored_layers(program.layouts, words, layers, K)[index]
        if program.layers[index].in_step:
            own = own[:[entry["tag"] for entry in own].index(TAG_LAYER_END) + 1]
        stored.append(len(own))
        calls.append(sum(entry["tag"] == TAG_CALL for entry in own))
    return walked, groups, stored, calls


def run_layer(spec, config, samples, seed, max_entries, producer=False,
              max_walked=MAX_WALKED, calibrate=False):
    """One row of the table, as a dict; ``refused`` holds the reason if it did not run."""
    net, index, M, K, N, weight_density, spike_density = spec
    model, spikes = build_layer(spec, samples, seed, producer)
    patches = im2col(spikes, *layer_shape(M, K, N)[2:])
    weights = model["conv"].weight.reshape(N, -1).T
    row = {"layer": f"{net}-{index}", "M": M, "K": K, "N": N,
           "weight_density": float((weights != 0).mean()),
           "packed_spike_density": float(patches.any(axis=1).mean()),
           "loas": float(np.mean([loas_cycles(s, weights) for s in patches])),
           "sparten_s": float(np.mean([sparten_cycles(s, weights) for s in patches])),
           "refused": None}
    pairs = patches.any(axis=1).astype(np.int64) @ (weights != 0)         # (samples, M, N)
    row["pairs"] = float(pairs.sum(axis=(1, 2)).mean())
    entries = program_entries(model, config.chunk, producer)
    row["program_entries"] = entries
    # without calls, the program stores what it walks: refused before compiling
    if entries > (max_walked if producer else max_entries):
        option, limit = ("--max-walked", max_walked) if producer else ("--max-entries",
                                                                         max_entries)
        row["refused"] = (f"its program walks {entries:,} entries, more than {option} "
                          f"{limit:,} (too slow to compile, generate and co-simulate)")
        return row
    # balance the TPPEs on the samples' activity, as ``hwgen compile --calibration`` does
    calibration = reference.run(model, spikes.reshape(samples, T, -1)).spikes \
        if calibrate else None
    try:
        program = compile_program(model, config, calibration)
    except (FitError, UnsupportedError) as error:
        row["refused"] = str(error)
        return row
    # what --max-entries limits: every TPPE's own program memory and the shared one
    stored = (sum(len(program.own_entries(p)) for p in range(program.tppes))
              + len(program.shared_entries()))
    row["stored_total"] = stored
    row["shared_entries"] = len(program.shared_entries())
    row["in_step"] = any(plan.in_step for plan in program.layers)
    if stored > max_entries:
        row["refused"] = (f"its program stores {stored:,} entries, more than --max-entries "
                          f"{max_entries:,} (the Verilog holds them all; too slow to "
                          f"generate and co-simulate)")
        return row
    at = [plan.name for plan in program.layers].index("lif")
    plan = program.layers[at]
    lanes = program.config.time_chunk
    lif_cycles = lanes // program.config.lif_steps
    walked, groups, stored, calls = layer_entries(program, at)
    row["stored_entries"] = max(stored)
    row["walked_entries"] = max(walked)
    row["calls"] = max(calls)
    row["fetch_bound"] = max(g + CALL_CYCLES * c for g, c in zip(groups, calls))
    row["lif_bound"] = (max(len(ns) for ns in plan.tppe_neurons) * lif_cycles
                        * (T // lanes))
    with tempfile.TemporaryDirectory() as folder:
        build = build_directory.write(program, model, Path(folder) / "build")
        result = cosimulate(build, spikes, parallel=1)
    if not result.verdict.bit_exact:
        first = result.verdict.first_mismatch[result.verdict.mismatching_samples[0]]
        raise RuntimeError(f"{row['layer']}: NOT BIT-EXACT: {first.describe()}")
    # the accelerator's matrix and the im2col view are the same product
    layer = legalise(model).layers[at]
    active = result.trace.spikes[layer.source].any(axis=1).astype(np.int64)
    hwgen_pairs = (layer.dense.weight != 0).astype(np.int64) @ active.T
    if not np.array_equal(hwgen_pairs.sum(axis=0), pairs.sum(axis=(1, 2))):
        raise RuntimeError(f"{row['layer']}: the unrolled matrix and the im2col view "
                           f"count different matched pairs")
    row["write_bound"] = float(write_bound(plan.to_json(), result.trace.spikes["lif"],
                                           program.config.chunk, lanes,
                                           program.config.write_lanes).mean())
    row["ideal"] = float(result.ideal[:, at].mean())
    row["cycles"] = float(result.layer_cycles[:, at].mean())
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="hardware parameter (repeatable)")
    parser.add_argument("--quick", action="store_true",
                        help=f"two small layers only ({', '.join(QUICK)})")
    parser.add_argument("--only", metavar="TEXT",
                        help="only layers whose name (e.g. vgg16-7) contains it")
    parser.add_argument("--samples", type=int, default=3, help="samples per layer (3)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-entries", type=int, default=MAX_ENTRIES,
                        help=f"refuse layers whose program stores more entries, over all "
                             f"TPPEs ({MAX_ENTRIES:,}; the Verilog holds them)")
    parser.add_argument("--max-walked", type=int, default=MAX_WALKED,
                        help=f"with --producer: refuse layers whose program walks more "
                             f"entries ({MAX_WALKED:,}; the compile time)")
    parser.add_argument("--json", type=Path, help="also write the table as JSON")
    parser.add_argument("--calibrate", action="store_true",
                        help="balance the TPPEs on the samples' measured activity (as "
                             "hwgen compile --calibration does), not on nonzero weights")
    parser.add_argument("--producer", action="store_true",
                        help="the convolution reads a copy layer's spikes, laid out as a "
                             "layer inside a network reads them, not the input's C order")
    args = parser.parse_args(argv)
    if args.samples < 1:
        parser.error(f"--samples must be at least 1, got {args.samples}")
    config = hardware_config.load(None, [f"tppes={TPPES}"] + args.overrides)
    specs = [s for s in LAYERS
             if (not args.quick or f"{s[0]}-{s[1]}" in QUICK)
             and (args.only is None or args.only in f"{s[0]}-{s[1]}")]
    if not specs:
        parser.error(f"--only {args.only!r} matches no layer")

    print(f"config: {config.to_json()}; T = {T}, {args.samples} samples per layer")
    header = (f"{'layer':12} {'M':>5} {'K':>5} {'N':>4} {'pairs':>8} {'stored':>7} "
              f"{'walked':>7} {'ideal':>7} "
              f"{'fetch':>7} {'lif':>6} {'writes':>6} {'cycles':>7} {'LoAS':>7} {'SparTen-S':>9} "
              f"{'c/ideal':>7} {'c/LoAS':>6} {'Sp/c':>6}  goal")
    print(header)
    print("-" * len(header))
    rows, met, missed, refused = [], 0, 0, 0
    for spec in specs:
        started = time.monotonic()
        row = run_layer(spec, config, args.samples, args.seed, args.max_entries,
                        args.producer, args.max_walked, args.calibrate)
        row["seconds"] = round(time.monotonic() - started, 1)
        rows.append(row)
        known = (f"{row['layer']:12} {row['M']:5d} {row['K']:5d} {row['N']:4d} "
                 f"{row['pairs']:8.0f}")
        if row["refused"]:
            refused += 1
            print(f"{known} {'':7} {'':7} {'':7} {'':7} {'':6} {'':6} {'':7} {row['loas']:7.0f} "
                  f"{row['sparten_s']:9.0f}  refused: {row['refused']}")
            continue
        ok = row["cycles"] <= row["loas"]
        met, missed = met + ok, missed + (not ok)
        row["goal"] = "met" if ok else "MISSED"
        print(f"{known} {row['stored_entries']:7d} {row['walked_entries']:7d} "
              f"{row['ideal']:7.0f} {row['fetch_bound']:7.0f} {row['lif_bound']:6.0f} "
              f"{row['write_bound']:6.0f} "
              f"{row['cycles']:7.0f} {row['loas']:7.0f} {row['sparten_s']:9.0f} "
              f"{row['cycles'] / row['ideal']:7.2f} {row['cycles'] / row['loas']:6.2f} "
              f"{row['sparten_s'] / row['cycles']:6.2f}  {row['goal']} ({row['seconds']:.0f} s; "
              f"{row['stored_total']:,} stored in all"
              + (f", {row['shared_entries']:,} of them shared, in step" if row["in_step"]
                 else "") + ")",
              flush=True)
    if args.json:
        args.json.write_text(json.dumps({"config": config.to_json(), "timesteps": T,
                                         "samples": args.samples, "seed": args.seed,
                                         "layers": rows}, indent=1) + "\n")
    print(f"goal (measured RTL cycles <= LoAS's count on the same matrices): met on {met}, "
          f"missed on {missed} of {met + missed} layers run; {refused} refused")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
