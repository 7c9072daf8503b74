import numpy as np

from hwgen.compiler.ir import LIF, Dense, Input, Model
from hwgen.compiler.ir import reference
from hwgen.sim import statistics


def test_statistics_of_a_small_network():
    model = Model("m", 2)
    model.add(Input("x", (3,)))
    model.add(Dense("fc", np.array([[1, 0, 2], [0, 0, 3]]), weight_bits=3, acc_bits=4), "x")
    model.add(LIF("lif", np.array([1, 9]), v_bits=6), "fc")
    # sample 0: inputs 0 and 2 active; sample 1: input 1 only
    spikes = np.array([[[1, 0, 0], [0, 0, 1]], [[0, 1, 0], [0, 1, 0]]], dtype=np.uint8)
    layers = statistics.layer_statistics(model, reference.run(model, spikes))
    x, fc, lif = layers
    assert x.spike_density.tolist() == [1 / 3, 1 / 3]
    assert x.silent_fraction == 0.5           # sample 0: input 1 silent; sample 1: 0 and 2
    assert fc.weight_density == 0.5
    # sample 0: neuron 0 matches inputs 0 and 2, neuron 1 matches input 2 -> 3; sample 1: 0
    assert fc.matched_pairs.tolist() == [3, 0]
    assert lif.neurons == 2
    assert fc.to_json()["matched_pairs_max"] == 3


def test_matched_pairs_of_convolutions_count_each_output_neurons_window():
    """Against a direct count: for every output neuron (channel, position), the inputs of
    its window (padding counts as silent) that spike at least once and meet a nonzero
    weight; strided, padded, dilated and grouped, 1-D and 2-D."""
    from hwgen.compiler.ir import Conv1d, Conv2d, Flatten
    rng = np.random.default_rng(7)
    for dims, stride, padding, dilation, groups in [(2, 2, 1, 1, 1), (2, 1, 0, 2, 2),
                                                    (1, 3, 2, 1, 1), (1, 1, 1, 2, 2)]:
        spatial = (5, 6)[:dims]
        kernel = (3, 2)[:dims]
        weight = rng.integers(-1, 2, size=(4, 4 // groups, *kernel))
        conv = (Conv2d if dims == 2 else Conv1d)(
            "conv", weight, stride=stride, padding=padding, dilation=dilation, groups=groups,
            weight_bits=2, acc_bits=8)
        model = Model("m", 3)
        model.add(Input("x", (4, *spatial)))
        model.add(conv, "x")
        model.add(LIF("lif", np.full(4 * int(np.prod(conv.output_spatial(spatial))), 1),
                      v_bits=8), "conv")
        model.add(Flatten("flat"), "lif")
        spikes = (rng.random((3, 3, 4 * int(np.prod(spatial)))) < 0.2).astype(np.uint8)
        layers = {layer.name: layer for layer in
                  statistics.layer_statistics(model, reference.run(model, spikes))}
        active = spikes.any(axis=1).reshape(3, 4, *spatial)
        out = conv.output_spatial(spatial)
        expected = np.zeros(3, dtype=np.int64)
        per_group_in, per_group_out = 4 // groups, 4 // groups
        for o in range(4):
            g = o // per_group_out
            for position in np.ndindex(*out):
                for c in range(per_group_in):
                    for k in np.ndindex(*kernel):
                        if weight[(o, c, *k)] == 0:
                            continue
                        where = [p * stride - padding + i * dilation
                                 for p, i in zip(position, k)]
                        if all(0 <= w < n for w, n in zip(where, spatial)):
                            expected += active[(slice(None), g * per_group_in + c, *where)]
        assert expected.sum() > 0
        stats = layers["conv"]
        assert stats.matched_pairs.tolist() == expected.tolist(), (dims, stride, padding)
        assert stats.neurons == 4 * int(np.prod(out))
        assert stats.weight_density == float(np.mean(weight != 0))
