"""Regression designs for two RTL bugs that `hwgen compile` accepted and only Verilator found.

- A threshold beyond the accumulator's range: the LIF stage computed I - theta in a width
  derived from acc_bits alone, so with a 2-bit accumulator a threshold of 9 wrapped to a
  positive difference and the neuron fired at step 0.
- A buffer region of one chunk (every layer's input and output fit in W slots, e.g. a
  4 -> 1 -> 4 chain): the slot field had no room for the chunk index, the output compressor
  got a zero-width chunk field, and every word and mask of a hidden layer went to the wrong
  address, so the next layer saw no spikes.

The existing grid (test_cosim_grid.py) could not reach either: its thresholds are drawn near
the typical current (at most three times it) while its 45-input first layer sets a 9 to 10
bit accumulator for the whole design, so every threshold sat far inside the range of
I - theta; and its 45 inputs exceed every chunk width it uses (8, 16, 32), so the spike
buffer always had at least two chunks per region and the slot always a chunk bit.

Each design runs the exact flow of `hwgen compile` and `hwgen simulate` on all-silent,
all-spiking and random inputs; zero mismatching bits is the only pass.
"""

import numpy as np
import pytest

from cosim_designs import cosimulate_design
from cosim_designs import edge_stimulus as stimulus
from hwgen.compiler.ir import LIF, Dense, Input, Leak, Model, Readout

pytestmark = [pytest.mark.verilator, pytest.mark.slow]


def chain(name, T, inputs, layers):
    """input -> (dense -> lif) per (weight, thresholds, lif options) -> readout."""
    model = Model(name, T)
    model.add(Input("input", (inputs,), encoding="spikes"))
    previous = "input"
    for index, (weight, theta, options) in enumerate(layers, start=1):
        weight = np.asarray(weight, dtype=np.int64)
        bound = int(np.abs(weight).sum(axis=1).max())
        model.add(Dense(f"fc{index}", weight, None, weight_bits=2,
                        acc_bits=max(bound.bit_length() + 1, 2)), previous)
        model.add(LIF(f"lif{index}", np.asarray(theta, dtype=np.int64), **options),
                  f"fc{index}")
        previous = f"lif{index}"
    model.add(Readout("readout"), previous)
    return model.validate()


IF = dict(leak=Leak.none(), fire="ge", reset="subtract", order="same_step")


def test_thresholds_beyond_the_accumulator_range(tmp_path):
    """Identity weights (a 2-bit accumulator) under thresholds 8 and 9 (the smallest that
    wrapped), 2**(acc_bits+1) + 1 and the 24-bit membrane's maximum (a Sinabs IF layer read
    with NIR's default dt has thresholds in the millions)."""
    T, vmax = 16, (1 << 23) - 1
    thetas = [1, 8, 9, 1 << 20, vmax, vmax - 1, 0, 17]
    model = chain("wide_thresholds", T, 8, [(np.eye(8), thetas, dict(IF, v_bits=24))])
    program, result = cosimulate_design(model, [], tmp_path, stimulus(1, T, 8))
    assert program.config.acc_bits == 2 and program.config.v_bits == 24
    spikes = result.trace.spikes["lif1"]
    # an all-ones input spikes threshold-9 neuron once (at step 8), the far ones never
    assert spikes[1, :, 2].tolist() == [0] * 8 + [1] + [0] * 7
    assert not spikes[:, :, 3:6].any() and spikes[1, :, 0].all()


def test_a_one_neuron_layer_delivers_to_the_next(tmp_path):
    """4 -> 1 -> 4 with all-ones weights: the last layer must spike."""
    model = chain("one_neuron", 4, 4, [(np.ones((1, 4)), [1], dict(IF, v_bits=6)),
                                       (np.ones((4, 1)), [1] * 4, dict(IF, v_bits=6))])
    program, result = cosimulate_design(model, [], tmp_path, stimulus(2, 4, 4))
    assert program.config.spike_depth == program.config.chunk
    assert result.trace.spikes["lif2"][1].all()


def test_one_neuron_lif_to_one_neuron_lif(tmp_path):
    lif = dict(leak=Leak.by_shift(1), fire="gt", reset="zero", order="same_step", v_bits=6)
    model = chain("lif_lif", 8, 2, [([[1, 1]], [1], lif), ([[1]], [0], lif)])
    _, result = cosimulate_design(model, ["tppes=3", "chunk=4"], tmp_path, stimulus(3, 8, 2))
    assert result.trace.spikes["lif2"].any()


def test_every_region_one_chunk_with_one_tppe(tmp_path):
    """The bug's real condition is spike_depth = W, not a layer of one neuron: 4 -> 4 -> 4
    on a single TPPE (all outputs in one chunk) failed the same way."""
    model = chain("one_tppe", 4, 4, [(np.ones((4, 4)), [3] * 4, dict(IF, v_bits=6)),
                                     (np.ones((4, 4)), [2] * 4, dict(IF, v_bits=6))])
    program, result = cosimulate_design(model, ["tppes=1"], tmp_path, stimulus(4, 4, 4))
    assert program.config.spike_depth == program.config.chunk
    assert result.trace.spikes["lif2"][1].any()
