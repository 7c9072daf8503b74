"""Recurrent layers (docs/semantics.md 4c) in the IR, the reference and the scheduler:
the contract's checks, its one-step-late arithmetic, and the program the hardware gets
(state chunks, region pairs, sub-passes under T_c > 1), with every refusal's message."""

import numpy as np
import pytest

from hwgen.compiler import hardware_config
from hwgen.compiler.instruction_format import TAG_CHUNK, TAG_NEURON
from hwgen.compiler.ir import LIF, Dense, Input, Model, Readout, reference
from hwgen.compiler.scheduler.program import compile_program
from hwgen.errors import ModelError


def chain(pattern=(True, False), T=6, inputs=5, sizes=(4, 3), seed=0):
    rng = np.random.default_rng(seed)
    model = Model("rnn", T)
    model.add(Input("input", (inputs,)))
    previous, fan_in = "input", inputs
    for index, (n, recurrent) in enumerate(zip(sizes, pattern), 1):
        weight = rng.integers(-2, 3, (n, fan_in + (n if recurrent else 0)))
        model.add(Dense(f"fc{index}", weight, weight_bits=3, acc_bits=8, recurrent=recurrent),
                  previous)
        model.add(LIF(f"lif{index}", np.full(n, 2), v_bits=8), f"fc{index}")
        previous, fan_in = f"lif{index}", n
    model.add(Readout("readout"), previous)
    return model.validate()


def test_the_reference_adds_the_last_steps_own_spikes():
    model = chain()
    rng = np.random.default_rng(1)
    x = (rng.random((7, 6, 5)) < 0.5).astype(np.uint8)
    trace = reference.run(model, x)
    fc1 = model["fc1"]
    own = trace.spikes["lif1"].astype(np.int64)
    late = np.concatenate([np.zeros_like(own[:, :1]), own[:, :-1]], axis=1)
    expected = x @ fc1.feedforward_weight.T + late @ fc1.recurrent_weight.T
    assert np.array_equal(trace.currents["fc1"], expected)
    # and the spikes follow from those currents, as for any lif op
    assert np.array_equal(reference.lif(model["lif1"], expected)[0], trace.spikes["lif1"])


def test_a_recurrent_weight_needs_its_own_columns():
    with pytest.raises(ModelError, match=r"dense 'fc': a recurrent weight is \(outputs, "
                                         r"inputs \+ outputs\); \(4, 3\) has fewer columns"):
        Dense("fc", np.ones((4, 3), int), weight_bits=3, acc_bits=8, recurrent=True)
    with pytest.raises(ModelError, match="recurrent must be true or false, got 'yes'"):
        Dense("fc", np.ones((4, 5), int), weight_bits=3, acc_bits=8, recurrent="yes")


def test_a_recurrent_synapse_feeds_one_lif_of_its_size():
    model = Model("m", 4)
    model.add(Input("input", (3,)))
    model.add(Dense("fc", np.ones((2, 5), int), weight_bits=3, acc_bits=8, recurrent=True),
              "input")
    model.add(LIF("a", np.ones(2, int), v_bits=6), "fc")
    model.add(LIF("b", np.ones(2, int), v_bits=6), "fc")
    with pytest.raises(ModelError, match=r"dense 'fc': a recurrent synapse must feed exactly "
                                         r"one lif op of 2 neurons .* it feeds 'a', 'b'"):
        model.validate()


def test_a_recurrent_model_runs_one_step_per_pass():
    program = compile_program(chain(), hardware_config.load(None, ["chunk=4", "tppes=2"]))
    assert program.lanes == 1 and program.time_chunks == 6
    assert program.recurrent_layers == 1
    # 2 + T input regions, then the recurrent layer's pair
    assert program.spike_regions == 2 + 6 + 2
    first, second = program.layers
    assert first.recurrent and first.state_base == 8           # 5 inputs, padded to 2 chunks
    assert first.input_slots[first.state_base:] == [
        -1 if n < 0 else 5 + n for n in first.output_slots]
    assert not second.recurrent and second.input_slots == first.output_slots
    fields = [program.layouts["layer"].unpack(d) for d in program.descriptors]
    assert [(f["state"], f["reads_state"]) for f in fields] == [(1, 0), (0, 1)]
    entry, chunk = program.layouts["entry"], program.layouts["chunk_entry"]
    states = {chunk.unpack(entry.unpack(word)["payload"])["state"]
              for words in program.entries for word in words
              if entry.unpack(word)["tag"] == TAG_CHUNK}
    assert states == {0, 1}


def test_a_feed_forward_program_has_no_state_fields():
    program = compile_program(chain((False, False)), hardware_config.load(None, ["chunk=4"]))
    assert "state" not in program.layouts["chunk_entry"].offsets
    assert "state" not in program.layouts["layer"].offsets
    assert program.lanes == 6 and program.spike_regions == 2


def test_a_time_chunk_above_one_runs_the_recurrent_layer_in_sub_passes():
    """Any T_c: the recurrent layer walks its fiber T_c times a chunk (sub-passes), which
    its estimate says; the layer after it is walked once."""
    config = ["chunk=4", "tppes=2"]
    stepwise = compile_program(chain(), hardware_config.load(None, config))
    chunked = compile_program(chain(), hardware_config.load(None, config + ["time_chunk=3"]))
    assert chunked.lanes == 3 and chunked.time_chunks == 2
    assert chunked.spike_regions == 2 + 2 + 2
    assert chunked.layers[0].tppe_neurons == stepwise.layers[0].tppe_neurons
    assert chunked.layers[0].estimated_cycles == [
        3 * c for c in stepwise.layers[0].estimated_cycles]


def test_a_recurrent_output_layer_gives_each_tppe_whole_chunks_of_indices():
    """Its results go to the result buffer by neuron index and its spikes back into its
    own input fiber: each TPPE computes a run of whole chunks, slots are indices, and each
    chunk's last neuron carries chunk_last."""
    model = chain((False, True), sizes=(4, 11))
    program = compile_program(model, hardware_config.load(None, ["chunk=4", "tppes=3"]))
    last = program.layers[-1]
    assert last.recurrent and last.output_slots == list(range(11))
    runs = [list(ns) for ns in last.tppe_neurons]
    assert sorted(n for run in runs for n in run) == list(range(11))
    for run in runs:
        assert run == list(range(run[0], run[0] + len(run))) if run else True
        assert not run or run[0] % 4 == 0
    entry, neuron = program.layouts["entry"], program.layouts["neuron_entry"]
    headers = [[neuron.unpack(entry.unpack(w)["payload"]) for w in words
                if entry.unpack(w)["tag"] == TAG_NEURON] for words in program.entries]
    for p, run in enumerate(runs):
        mine = headers[p][-len(run):] if run else []
        assert [h["slot"] for h in mine] == run
        assert [h["chunk_last"] for h in mine] == [
            int(j == len(run) - 1 or (n + 1) % 4 == 0) for j, n in enumerate(run)]
