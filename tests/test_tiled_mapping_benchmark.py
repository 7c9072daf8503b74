"""benchmarks/tiled_mapping.py: its per-tile pair bound against the program model walking
the tiled program on the same layer, and its entry count against the kernels."""

import numpy as np

from hwgen.compiler.ir import Conv2d
from hwgen.compiler.scheduler.tiled import tile_conv

import program_model
from benchmark_scripts import load


bench = load("tiled_mapping")


def test_the_pair_bound_is_the_walked_programs():
    spec = next(s for s in bench.loas.LAYERS if f"{s[0]}-{s[1]}" == "vgg16-10")
    row = bench.layer_row(spec, 1, seed=2, chunk=16, fetch_width=4)
    tiled, model, spikes = bench.tiled_layer(spec, 1, seed=2, chunk=16)
    _, pairs = program_model.run_tiled(tiled, spikes[0])
    assert row["pairs"] == sum(max(tile) for tile in pairs)
    weight = model["conv"].weight
    N, channels, kernel = weight.shape[0], weight.shape[1], weight.shape[2]
    blocks = (np.pad(weight, [(0, 0), (0, -channels % 16), (0, 0), (0, 0)])
              .reshape(N, -1, 16, kernel, kernel) != 0).any(axis=2).sum()
    assert row["entries"] == N + blocks
    assert row["tiled"] >= max(row["pairs"], row["issue"] / len(tiled.tiles()))


def test_mask_banks_conflict_where_a_tile_leaves_its_row_or_strides():
    def conflicts(side, stride, padding, kernel):
        conv = Conv2d("conv", np.ones((1, 1, kernel, kernel), dtype=int), stride=stride,
                      padding=padding, weight_bits=2, acc_bits=8)
        return bench.mask_bank_conflicts(tile_conv(conv, (1, side, side),
                                                   np.ones(1, dtype=int), chunk=4,
                                                   tppes=bench.TPPES))
    # a tile is one row of 16 pixels: every banking is conflict-free
    assert conflicts(16, 1, 1, 3) == {"column": 0.0, "pixel": 0.0}
    # two rows of 8 per tile: columns repeat, pixels stay consecutive; of the 4 tiles x 3
    # window rows, the top tile's first and the bottom tile's last read one row only
    assert conflicts(8, 1, 1, 3) == {"column": 10 / 12, "pixel": 0.0}
    # stride 2: every other bank
    assert conflicts(32, 2, 0, 1) == {"column": 1.0, "pixel": 1.0}


def test_a_lag_lets_each_tppe_carry_its_own_load():
    # two channels, two TPPEs, each busiest on one: in step they pay both maxima, free to
    # lag they pay the larger TPPE's sum; an issue stage slower than both bounds them
    pairs = [[3, 1], [1, 3]]
    assert bench.lagged_cycles(pairs, [1, 1], 1) == 6
    assert bench.lagged_cycles(pairs, [1, 1], None) == 4
    assert bench.lagged_cycles(pairs, [5, 5], None) == 10
    assert bench.lagged_cycles([], [], 1) == 0
