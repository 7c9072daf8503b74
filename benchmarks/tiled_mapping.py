"""The tiled mapping's program and bounds on LoAS's conv layers (a model, not RTL).

Step 1 of the weight broadcast (docs/architecture.md, "Design, not built"): what one copy
of a layer's fiber program (``hwgen.compiler.scheduler.tiled``) stores, against the
entries today's mapping walks, and what a tile of P = 16 pixels in step would cost on the
same matrices as ``loas_conv_layers.py`` (its layers, weights and spikes, same seed):

- ``entries`` / ``weights``: the tiled program's entries and its one weight memory;
- ``unrolled``: the entries today's program walks over all TPPEs (a header per neuron, an
  entry per nonzero weight chunk); it stores fewer, through its blocks, but still 0.6-1.8
  million over 16 TPPEs on the largest layers (docs/results.md);
- ``issue``: tiles x the program's groups of ``--fetch-width`` entries (each tile walks the
  program once; a neuron starts a group);
- ``pairs``: per tile the largest TPPE's matched pairs, summed (the join's bound when the
  match FIFOs let the issue stage run ahead); ``pairs/n``: per tile and output channel the
  largest TPPE's, summed (the bound if they do not);
- ``pairs/p``: the largest TPPE's matched pairs over all tiles (the bound if the match
  FIFOs were deep enough to let every TPPE run ahead across tiles, as today's balanced
  mapping does);
- ``tiled``: per tile the larger of its issue groups and its largest TPPE's pairs, summed:
  an optimistic cycle estimate, without fill, LIF or writes;
- ``col conf`` / ``pix conf``: the fraction of a tile's entry reads in which two TPPEs'
  spike masks fall in one bank of a shared mask memory of P banks, banked by input column
  or by input pixel (:func:`mask_bank_conflicts`; step 3's open question);
- ``LoAS``: LoAS's count on the same matrices, as ``loas_conv_layers.py`` prints it;
- ``lag L``: cycles when a TPPE may fall L output channels behind the issue stage
  (:func:`lagged_cycles`; ``lag inf``: unbounded), the match FIFO depth step 2 needs.

    python benchmarks/tiled_mapping.py [--only TEXT] [--fetch-width K] [--samples N]
"""

import argparse
import importlib.util
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from hwgen.compiler.scheduler.tiled import tile_conv

TPPES = 16
# how many neurons a TPPE may fall behind the issue stage (None: unbounded)
LAGS = (1, 4, 16, None)


def _sibling(name):
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


loas = _sibling("loas_conv_layers")


def mask_bank_conflicts(tiled):
    """Per banking of the shared mask memory into P banks, the fraction of a tile's entry
    reads in which two TPPEs' masks lie in one bank: by input column (``x mod P``,
    conflict-free for stride 1 while a tile stays in one row) and by input pixel
    (``(y W + x) mod P``). Forced-zero reads read no bank."""
    P = tiled.tppes
    _, height, width = tiled.in_shape
    y0, x0, valid = tiled.origins                   # tiles x P
    tiles = y0.shape[0]
    tile = np.repeat(np.arange(tiles), P).reshape(-1, P)
    uses = Counter((fields["dy"], fields["dx"]) for kind, fields in tiled.entries
                   if kind == "chunk")
    conflicted = {"column": 0, "pixel": 0}
    for (dy, dx), count in uses.items():
        y, x = y0 + dy, x0 + dx
        inside = valid & (y >= 0) & (y < height) & (x >= 0) & (x < width)
        for name, bank in (("column", x % P), ("pixel", (y * width + x) % P)):
            reads = np.zeros((tiles, P + 1), dtype=np.int64)
            np.add.at(reads, (tile, np.where(inside, bank, P)), 1)
            conflicted[name] += count * int((reads[:, :P].max(axis=1) > 1).sum())
    reads = sum(uses.values()) * tiles
    return {name: value / reads if reads else 0.0 for name, value in conflicted.items()}


def lagged_cycles(pairs, groups, lag):
    """Cycles of a tiled layer whose TPPEs may fall ``lag`` neurons behind the issue stage
    (a match FIFO of about ``lag`` x the chunk matches per neuron; None: unbounded).

    ``pairs`` (items, P): each TPPE's matched pairs per item, an item being one output
    channel of one tile, in walking order; ``groups`` (items,): the issue cycles of its
    entries. The issue stage starts item i once it has issued item i - 1 and every TPPE
    has joined item i - ``lag``; a TPPE joins an item's pairs, one per cycle, once it has
    joined the item before and the item's issue has started, and finishes it not before
    its last entry is issued. No fill, LIF or writes."""
    if len(groups) == 0:
        return 0.0
    pairs = np.asarray(pairs, dtype=np.float64)
    groups = np.asarray(groups, dtype=np.float64)
    issued = 0.0                                  # the issue stage's next free cycle
    joined = np.zeros(pairs.shape[1])             # each TPPE's join, done with the last item
    done = []                                     # per item, the last TPPE's finishing time
    for i in range(len(groups)):
        start = issued if lag is None or i < lag else max(issued, done[i - lag])
        issued = start + groups[i]
        joined = np.maximum(np.maximum(joined, start) + pairs[i], issued)
        done.append(joined.max())
    return max(done)


def tiled_layer(spec, samples, seed, chunk):
    """(the tiled program of one row of ``loas_conv_layers.LAYERS``, its model, spikes
    (samples, T, C, H, W)): the benchmark's layer, weights and spikes."""
    net, index, M, K, N, _, _ = spec
    channels, side = loas.layer_shape(M, K, N)[:2]
    model, spikes = loas.build_layer(spec, samples, seed)
    tiled = tile_conv(model["conv"], (channels, side, side), np.ones(N, dtype=np.int64),
                      chunk=chunk, tppes=TPPES)
    return tiled, model, spikes


def layer_row(spec, samples, seed, chunk, fetch_width):
    """One row of the table, as a dict."""
    net, index, M, K, N, _, _ = spec
    kernel, stride, padding = loas.layer_shape(M, K, N)[2:]
    tiled, model, spikes = tiled_layer(spec, samples, seed, chunk)
    # per output channel: the issue stage's groups
    groups = loas.neuron_groups((kind for kind, _ in tiled.entries), fetch_width)
    neuron_groups = sum(groups)
    patches = loas.im2col(spikes, kernel, stride, padding)          # (S, T, M, K)
    weights = model["conv"].weight.reshape(N, -1).T                  # (K, N), (c, kh, kw)
    tiles = len(tiled.tiles())
    pairs, per_channel, decoupled, tiled_cycles, loas_count = [], [], [], [], []
    lagged = {lag: [] for lag in LAGS}
    for sample in patches:
        matched = sample.any(axis=0).astype(np.int64) @ (weights != 0)   # (M, N)
        padded = np.zeros((tiles * TPPES, N), dtype=np.int64)
        padded[:M] = matched
        by_tile = padded.reshape(tiles, TPPES, N)
        busiest = by_tile.sum(axis=2).max(axis=1)                         # per tile
        pairs.append(busiest.sum())
        per_channel.append(by_tile.max(axis=1).sum())
        decoupled.append(by_tile.sum(axis=2).sum(axis=0).max())
        tiled_cycles.append(np.maximum(busiest, neuron_groups).sum())
        items = np.moveaxis(by_tile, 2, 1).reshape(-1, TPPES)             # (tile, channel)
        for lag in LAGS:
            lagged[lag].append(lagged_cycles(items, groups * tiles, lag))
        loas_count.append(loas.loas_cycles(sample, weights))
    unrolled = loas.program_entries(model, chunk)
    return {"layer": f"{net}-{index}", "M": M, "K": K, "N": N,
            "entries": len(tiled.entries), "weights": len(tiled.weights),
            "unrolled": unrolled, "issue": tiles * neuron_groups,
            "pairs": float(np.mean(pairs)), "pairs_per_channel": float(np.mean(per_channel)),
            "pairs_decoupled": float(np.mean(decoupled)),
            "lagged": {str(lag): float(np.mean(v)) for lag, v in lagged.items()},
            "tiled": float(np.mean(tiled_cycles)), "loas": float(np.mean(loas_count)),
            "conflicts": mask_bank_conflicts(tiled)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", metavar="TEXT",
                        help="only layers whose name (e.g. vgg16-7) contains it")
    parser.add_argument("--samples", type=int, default=3, help="samples per layer (3)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--chunk", type=int, default=16, help="chunk width W (16)")
    parser.add_argument("--fetch-width", type=int, default=4,
                        help="entries the issue stage reads per cycle (4)")
    args = parser.parse_args(argv)
    if args.samples < 1:
        parser.error(f"--samples must be at least 1, got {args.samples}")
    specs = [s for s in loas.LAYERS if args.only is None or args.only in f"{s[0]}-{s[1]}"]
    if not specs:
        parser.error(f"--only {args.only!r} matches no layer")
    print(f"P = {TPPES} pixels per tile, W = {args.chunk}, K = {args.fetch_width}, "
          f"T = {loas.T}, {args.samples} samples per layer (a model, not RTL)")
    header = (f"{'layer':12} {'entries':>8} {'weights':>8} {'unrolled':>9} {'issue':>7} "
              f"{'pairs':>7} {'pairs/n':>8} {'pairs/p':>8} {'tiled':>7} {'LoAS':>7} "
              f"{'tiled/LoAS':>10} {'col conf':>8} {'pix conf':>8} "
              + " ".join(f"{'lag ' + str(lag or 'inf'):>8}" for lag in LAGS))
    print(header)
    print("-" * len(header))
    for spec in specs:
        row = layer_row(spec, args.samples, args.seed, args.chunk, args.fetch_width)
        print(f"{row['layer']:12} {row['entries']:8d} {row['weights']:8d} "
              f"{row['unrolled']:9d} {row['issue']:7d} {row['pairs']:7.0f} "
              f"{row['pairs_per_channel']:8.0f} {row['pairs_decoupled']:8.0f} "
              f"{row['tiled']:7.0f} {row['loas']:7.0f} {row['tiled'] / row['loas']:10.2f} "
              f"{100 * row['conflicts']['column']:7.1f}% "
              f"{100 * row['conflicts']['pixel']:7.1f}% "
              + " ".join(f"{row['lagged'][str(lag)]:8.0f}" for lag in LAGS), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
