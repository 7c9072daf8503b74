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
