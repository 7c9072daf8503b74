"""Recurrent layers (docs/semantics.md section 4c) on Verilator, bit-exact.

A recurrent layer reads its own spikes of the previous step from a pair of spike-buffer
regions that alternate between sub-passes (steps, with T_c = 1; T_c per chunk otherwise).
The models here put the recurrent layer first (its input from the loader's per-chunk
regions), in the middle, twice in a row, last, and current-based, under several T_c; the recurrence must matter (the same
model without it spikes differently) and a second inference must not see the first one's
last spikes (the all-silent sample after a busy one).
"""

import numpy as np
import pytest

from hwgen.compiler.ir import LIF, Dense, Input, Leak, Model, Readout, reference
from hwgen.errors import FitError, UnsupportedError

from cosim_designs import cosimulate_design

pytestmark = [pytest.mark.verilator, pytest.mark.slow]


def recurrent_model(pattern, T=12, inputs=10, sizes=(9, 7, 5), seed=3, recurrence=True,
                    synapse=None):
    """A chain of dense -> lif layers; ``pattern[i]`` says whether layer i is recurrent."""
    rng = np.random.default_rng(seed)
    model = Model("rnn", T)
    model.add(Input("input", (inputs,), encoding="spikes"))
    previous, fan_in = "input", inputs
    for index, (fan_out, recurrent) in enumerate(zip(sizes, pattern), 1):
        recurrent = recurrent and recurrence
        columns = fan_in + (fan_out if recurrent else 0)
        weight = rng.integers(-3, 4, (fan_out, columns))
        if recurrent:
            # a strong self-excitation and cross-inhibition, so the recurrence shows
            weight[:, fan_in:] = rng.integers(-4, 5, (fan_out, fan_out))
        model.add(Dense(f"fc{index}", weight, rng.integers(-1, 2, fan_out), weight_bits=4,
                        acc_bits=9, recurrent=recurrent), previous)
        cuba = synapse if index == 1 else None
        model.add(LIF(f"lif{index}", rng.integers(2, 7, fan_out), leak=Leak.by_shift(2),
                      v_bits=9, synapse=cuba, i_bits=7 if cuba else None), f"fc{index}")
        previous, fan_in = f"lif{index}", fan_out
    model.add(Readout("readout"), previous)
    return model.validate()


def stimulus(T, inputs, seed=1):
    rng = np.random.default_rng(seed)
    random = (rng.random((5, T, inputs)) < 0.3).astype(np.uint8)
    ones = np.ones((1, T, inputs), np.uint8)
    zeros = np.zeros((1, T, inputs), np.uint8)
    # silent after busy: the state regions still hold the last inference's spikes
    return np.concatenate([ones, zeros, random, ones, zeros])


@pytest.mark.parametrize("pattern, settings", [
    ((True, False, False), ["chunk=8", "tppes=2"]),
    ((False, True, False), ["chunk=4", "tppes=3"]),
    ((True, True, False), ["chunk=8", "tppes=2", "join=laggy"]),
    # T_c > 1: the recurrent layers in sub-passes (an even and an odd T_c, one chunk)
    ((True, False, False), ["chunk=8", "tppes=2", "time_chunk=4"]),
    ((False, True, False), ["chunk=4", "tppes=3", "time_chunk=3", "fetch_width=2"]),
    ((True, True, False), ["chunk=8", "tppes=2", "join=laggy", "time_chunk=6",
                           "lif_steps=2"]),
    ((True, False, False), ["chunk=4", "tppes=2", "time_chunk=12", "fetch_width=4"]),
    # a recurrent output layer, its results by index and its spikes fed back
    ((False, False, True), ["chunk=4", "tppes=3"]),
    ((True, False, True), ["chunk=4", "tppes=2", "time_chunk=4", "join=laggy"]),
])
def test_recurrent_layers_are_bit_exact(tmp_path, pattern, settings):
    model = recurrent_model(pattern)
    x = stimulus(model.timesteps, 10)
    program, result = cosimulate_design(model, settings, tmp_path, x)
    chunked = next((int(s.split("=")[1]) for s in settings if s.startswith("time_chunk=")), 1)
    assert program.lanes == chunked and program.recurrent_layers == sum(pattern)
    ours = reference.run(model, x).spikes
    plain = reference.run(recurrent_model(pattern, recurrence=False), x).spikes
    for index, recurrent in enumerate(pattern, 1):
        name = f"lif{index}"
        assert np.array_equal(result.verdict.rtl_spikes[name], ours[name])
        if recurrent:
            assert 0 < ours[name].mean() < 1, name
            assert not np.array_equal(ours[name], plain[name]), name


def test_an_early_exit_decides_on_a_recurrent_output_layer(tmp_path):
    """The exit rule counts the last sub-pass's result writes only."""
    model = recurrent_model((False, True, True))
    _, result = cosimulate_design(model, ["chunk=8", "tppes=1", "time_chunk=2",
                                          "early_exit=certain"], tmp_path,
                                  stimulus(model.timesteps, 10))
    assert result.steps.min() < model.timesteps


@pytest.mark.parametrize("settings", [["chunk=8", "tppes=2"],
                                      ["chunk=8", "tppes=2", "time_chunk=4"]])
def test_a_current_based_recurrent_layer_is_bit_exact(tmp_path, settings):
    model = recurrent_model((True, False), sizes=(12, 4), synapse=Leak.by_shift(1))
    cosimulate_design(model, settings, tmp_path, stimulus(model.timesteps, 10))


def test_the_braille_rnn_runs_256_steps_bit_exact(tmp_path):
    """The NIR paper's braille RNN shape (12 -> CubaLIF 38 with a recurrent Affine in a NIR
    subgraph -> CubaLIF 7), imported from NIR and run for T = 256 steps: 256 passes of two
    layers per inference."""
    from hwgen.compiler.frontends import nir as nir_frontend
    from braille import braille_graph, braille_inputs

    model = nir_frontend.load(braille_graph(seed=0, timesteps=256))
    assert [op.name for op in model.ops if getattr(op, "recurrent", False)] == ["fc1"]
    x = np.concatenate([braille_inputs(samples=3, seed=2),
                        np.zeros((1, 256, 12), np.uint8)])
    program, result = cosimulate_design(model, ["tppes=2"], tmp_path, x)
    assert program.lanes == 1 and program.time_chunks == 256
    spikes = reference.run(model, x).spikes
    hidden = next(name for name in spikes if name.startswith("lif1"))
    assert 0.02 < spikes[hidden][:3].mean() < 0.5
    # and in 16 chunks of 16 steps, the recurrent layer in sub-passes
    program, _ = cosimulate_design(model, ["tppes=2", "time_chunk=16"], tmp_path / "16", x)
    assert program.lanes == 16


@pytest.mark.parametrize("kind, head, settings", [
    ("RLeaky", True, ["chunk=8", "tppes=2"]),
    ("RSynaptic", True, ["chunk=8", "tppes=2"]),
    # the recurrent layer as the output layer, also in time chunks (sub-passes)
    ("RLeaky", False, ["chunk=8", "tppes=2"]),
    ("RSynaptic", False, ["chunk=4", "tppes=3", "time_chunk=4"]),
])
def test_snntorchs_recurrent_layers_spike_alike_in_rtl(tmp_path, kind, head, settings):
    """snnTorch's own simulation and the generated Verilog agree spike for spike: an
    RLeaky / RSynaptic network with integer weights, exported with hwgen's helper (the
    recurrent Linear with its bias; snnTorch's subgraph form), imported and co-simulated."""
    pytest.importorskip("snntorch")
    from hwgen.compiler.frontends import nir as nir_frontend
    from hwgen.compiler.frontends import snntorch_export
    from snntorch_oracle import recurrent_net, run_snntorch

    T = 20
    net = recurrent_net(11, kind, hidden=10, inputs=8, head=head)
    rng = np.random.default_rng(4)
    x = (rng.random((6, T, 8)) < 0.4).astype(np.uint8)
    theirs = run_snntorch(net, x)
    path = tmp_path / "rnn.nir"
    snntorch_export.export(net, path, (8,), timesteps=T)
    model = nir_frontend.load(path)
    program, result = cosimulate_design(model, settings, tmp_path, x)
    assert program.layers[-1].recurrent == (not head)
    for ours, module in (("1.lif", "1"), ("3", "3"))[:2 if head else 1]:
        assert np.array_equal(result.verdict.rtl_spikes[ours], theirs[module]), ours
    assert 0 < theirs["1"].mean() < 1
