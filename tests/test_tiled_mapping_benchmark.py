"""benchmarks/tiled_mapping.py: its per-tile pair bound against the program model walking
the tiled program on the same layer, and its entry count against the kernels."""

import numpy as np

from hwgen.compiler.scheduler.tiled import tile_conv

import program_model
from benchmark_scripts import load


bench = load("tiled_mapping")


def test_the_pair_bound_is_the_walked_programs():
    spec = next(s for s in bench.loas.LAYERS if f"{s[0]}-{s[1]}" == "vgg16-10")
    row = bench.layer_row(spec, 1, seed=2, chunk=16, fetch_width=4)
    net, index, M, K, N, _, _ = spec
    channels, side, kernel, stride, padding = bench.loas.layer_shape(M, K, N)
    model, spikes = bench.loas.build_layer(spec, 1, seed=2)
    weight = model["conv"].weight
    tiled = tile_conv("conv", weight, (channels, side, side), np.ones(N, dtype=int),
                      stride=(stride, stride), padding=(padding, padding), chunk=16,
                      tppes=bench.TPPES)
    _, pairs = program_model.run_tiled(tiled, spikes[0])
    assert row["pairs"] == sum(max(tile) for tile in pairs)
    blocks = (np.pad(weight, [(0, 0), (0, -channels % 16), (0, 0), (0, 0)])
              .reshape(N, -1, 16, kernel, kernel) != 0).any(axis=2).sum()
    assert row["entries"] == N + blocks
    assert row["tiled"] >= max(row["pairs"], row["issue"] / len(tiled.tiles()))
