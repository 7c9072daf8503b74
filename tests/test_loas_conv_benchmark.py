"""benchmarks/loas_conv_layers.py: LoAS's and SparTen-S's counts against a brute-force count
of the same tile rules on tiny matrices, the layer shapes derived from the table, and the
im2col view against the matrix the accelerator walks."""

import numpy as np
import pytest

from hwgen.compiler import hardware_config
from hwgen.compiler.passes.legalise import legalise
from hwgen.compiler.scheduler.program import compile_program

import program_model
from benchmark_scripts import load


bench = load("loas_conv_layers")


def brute_force(x, w, tile, per):
    """The tile rule, pair by pair: every tile, every PE of it, every matched pair."""
    tm, tk, tn = tile
    (M, K), N = x.shape, w.shape[1]
    total = 0
    for m0 in range(0, M, tm):
        for k0 in range(0, K, tk):
            for n0 in range(0, N, tn):
                pes = range(m0, min(M, m0 + tm)) if per == "row" else range(n0, min(N, n0 + tn))
                busiest = 0
                for pe in pes:
                    rows = [pe] if per == "row" else range(m0, min(M, m0 + tm))
                    columns = range(n0, min(N, n0 + tn)) if per == "row" else [pe]
                    busiest = max(busiest, sum(int(x[m, k] and w[k, n]) for m in rows
                                               for n in columns
                                               for k in range(k0, min(K, k0 + tk))))
                total += busiest
    return total


@pytest.mark.parametrize("seed", range(4))
def test_the_counts_are_the_tile_rules_pair_by_pair(seed):
    rng = np.random.default_rng(seed)
    # tiny tiles so that edges, several tiles per dimension and empty tiles all occur
    M, K, N, T = rng.integers(1, 12), rng.integers(1, 14), rng.integers(1, 10), 3
    spikes = rng.random((T, M, K)) < 0.4
    weights = rng.integers(-3, 4, (K, N)) * (rng.random((K, N)) < 0.5)
    bench.LOAS_TILE, bench.SPARTEN_TILE = (3, 4, 2), (2, 5, 3)
    try:
        packed = spikes.any(axis=0)
        assert bench.loas_cycles(spikes, weights) == brute_force(packed, weights != 0,
                                                                 (3, 4, 2), "row")
        assert bench.sparten_cycles(spikes, weights) == sum(
            brute_force(s, weights != 0, (2, 5, 3), "column") for s in spikes)
    finally:
        bench.LOAS_TILE, bench.SPARTEN_TILE = (16, 128, 32), (32, 128, 16)


def test_one_row_per_pe_with_m_equal_one_costs_every_matched_pair():
    """LOAS_CYCLE_MODEL.md: with M = 1 LoAS's mapping leaves one PE busy."""
    rng = np.random.default_rng(1)
    spikes = rng.random((4, 1, 300)) < 0.3
    weights = rng.random((300, 70)) < 0.1
    pairs = spikes.any(axis=0).astype(np.int64) @ weights.astype(np.int64)
    assert bench.loas_cycles(spikes, weights) == int(pairs.sum())


@pytest.mark.parametrize("M, K, N, expected", [
    (64, 576, 192, (64, 8, 3, 1, 1)), (1024, 576, 64, (64, 32, 3, 1, 1)),
    (256, 64, 128, (64, 32, 1, 2, 0)), (16, 256, 512, (256, 8, 1, 2, 0))])
def test_layer_shapes_give_the_tables_m_and_k(M, K, N, expected):
    channels, side, kernel, stride, padding = bench.layer_shape(M, K, N)
    assert (channels, side, kernel, stride, padding) == expected
    assert ((side + 2 * padding - kernel) // stride + 1) ** 2 == M
    assert channels * kernel * kernel == K
    with pytest.raises(ValueError, match="M = 48 output pixels is not a square map"):
        bench.layer_shape(48, 576, 64)


@pytest.mark.parametrize("name", ["vgg16-10", "resnet19-17"])
def test_the_im2col_view_is_the_accelerators_matrix(name):
    spec = next(s for s in bench.LAYERS if f"{s[0]}-{s[1]}" == name)
    net, index, M, K, N, weight_density, spike_density = spec
    model, spikes = bench.build_layer(spec, 2, seed=3)
    assert spikes.shape[:2] == (2, bench.T) and model["conv"].weight.shape[0] == N
    patches = bench.im2col(spikes, *bench.layer_shape(M, K, N)[2:])
    assert patches.shape == (2, bench.T, M, K)
    weights = model["conv"].weight.reshape(N, -1).T
    layer = legalise(model).layers[0]                    # the conv layer; then one neuron
    for sample in range(2):
        # every (output pixel, channel) neuron's current is the im2col row times its column
        unrolled = layer.dense.weight @ spikes[sample].reshape(bench.T, -1).T.astype(np.int64)
        view = patches[sample].astype(np.int64) @ weights                 # (T, M, N)
        assert np.array_equal(unrolled, np.moveaxis(view, 2, 1).reshape(bench.T, -1).T)
    # the table's densities, roughly (random)
    assert abs((weights != 0).mean() - weight_density) < 0.5 * weight_density + 0.002
    packed = patches.any(axis=1).mean()
    assert abs(packed - spike_density) < 0.25 * spike_density


@pytest.mark.parametrize("fetch_width", [1, 4, 8])
def test_the_fetch_column_counts_groups_a_neuron_starts(fetch_width):
    """A wide fetch reads whole groups, and each neuron's header starts one: its fetch
    cycles are the neurons' ceil(entries / K), not the entries / K (the PADs)."""
    spec = next(s for s in bench.LAYERS if f"{s[0]}-{s[1]}" == "resnet19-17")
    model, _ = bench.build_layer(spec, 1, seed=3, producer=True)
    program = compile_program(model, hardware_config.load(
        None, ["tppes=2", f"fetch_width={fetch_width}"]))
    at = [plan.name for plan in program.layers].index("lif")
    walked, groups, _, _ = bench.layer_entries(program, at)
    for p in range(program.tppes):
        neurons = []
        for kind, _ in program_model.decode_entries(program, p)[at]:
            neurons += [0] if kind == "neuron" else []
            neurons[-1] += 1
        assert walked[p] == sum(neurons)
        assert groups[p] == sum(-(-e // fetch_width) for e in neurons)
    assert (groups == walked) if fetch_width == 1 else sum(groups) > sum(walked) / fetch_width
