"""Current-based neurons (docs/semantics.md section 4b) on Verilator, bit-exact.

A model of two current-based layers (different synaptic leaks, roundings, orders and
resets) and one voltage-based layer runs the exact flow of `hwgen compile` and `hwgen simulate`: in one
time chunk (4 steps per LIF cycle), in chunks of 2 (2 steps per cycle; the synaptic current
waits in the membrane memory with v and the order bit) and as the temporal-sequential
baseline. Zero mismatching bits is the only
pass, and the synaptic currents must matter (the same model without them spikes
differently).
"""

import numpy as np
import pytest

from hwgen import build_directory
from hwgen.compiler import hardware_config
from hwgen.compiler.ir import LIF, Dense, Input, Leak, Model, Readout, reference
from hwgen.compiler.scheduler.program import compile_program
from hwgen.sim.cosim import cosimulate

pytestmark = [pytest.mark.verilator, pytest.mark.slow]

T = 8
LAYERS = [  # fan_out, leak, synapse, i_bits, rounding, fire, reset, order
    (12, Leak.by_multiply(7, 3), Leak.by_multiply(3, 2), 7, "joint", "gt", "subtract",
     "delayed"),
    (10, Leak.by_shift(2), None, None, None, "ge", "zero", "same_step"),
    (6, Leak.none(), Leak.by_shift(1), 6, "separate", "gt", "zero", "delayed"),
]


def current_based_model(synapses=True):
    rng = np.random.default_rng(13)
    model = Model("cuba" if synapses else "cuba_without_synapses", T)
    model.add(Input("input", (16,), encoding="spikes"))
    previous, fan_in = "input", 16
    for index, (fan_out, leak, synapse, i_bits, rounding, fire, reset, order) in enumerate(
            LAYERS, 1):
        weight = rng.integers(-3, 4, (fan_out, fan_in))
        model.add(Dense(f"fc{index}", weight, rng.integers(-1, 2, fan_out), weight_bits=3,
                        acc_bits=8), previous)
        if not synapses:
            synapse = i_bits = rounding = None
        model.add(LIF(f"lif{index}", rng.integers(2, 9, fan_out), leak=leak, fire=fire,
                      reset=reset, order=order, v_bits=9, synapse=synapse, i_bits=i_bits,
                      synapse_rounding=rounding), f"fc{index}")
        previous, fan_in = f"lif{index}", fan_out
    model.add(Readout("readout"), previous)
    return model.validate()


def inputs(samples=8):
    rng = np.random.default_rng(5)
    random = (rng.random((samples, T, 16)) < 0.35).astype(np.uint8)
    return np.concatenate([np.zeros((1, T, 16), np.uint8), np.ones((1, T, 16), np.uint8),
                           random])


@pytest.mark.parametrize("settings, lanes", [
    (["lif_steps=4"], T), (["time_chunk=2", "lif_steps=2"], 2),
    (["dataflow=sequential", "tppes=3"], 1)])
def test_current_based_layers_are_bit_exact(tmp_path, settings, lanes):
    model = current_based_model()
    x = inputs()
    program = compile_program(model, hardware_config.load(None, ["chunk=8", *settings]))
    assert program.lanes == lanes and program.i_bits == 7
    build = build_directory.write(program, model, tmp_path / "build")
    result = cosimulate(build, x, parallel=1)
    first = next((m for m in result.verdict.first_mismatch if m), None)
    assert result.verdict.bit_exact, first.describe()
    ours = reference.run(model, x).spikes
    plain = reference.run(current_based_model(synapses=False), x).spikes
    for name in ("lif1", "lif3"):
        assert np.array_equal(result.verdict.rtl_spikes[name], ours[name])
        assert 0 < ours[name].mean() < 1, name
        assert not np.array_equal(ours[name], plain[name]), name


def test_an_snntorch_synaptic_mlp_in_time_chunks(tmp_path):
    """snnTorch's own Synaptic simulation, the integer reference and the RTL agree: an MLP
    exported with hwgen's helper at T = 32 (two chunks of 16, the joint rounding, the
    delayed subtract reset and the synaptic current carried across the chunk boundary)."""
    pytest.importorskip("snntorch")
    from snntorch_oracle import integer_net, run_snntorch

    from hwgen.compiler.frontends import nir as frontend
    from hwgen.compiler.frontends import snntorch_export
    steps = 32
    net = integer_net(9, [12, 10, 6], alpha=[0.75, 0.5], beta=[0.875, 0.5], threshold=6.0)
    path = tmp_path / "net.nir"
    snntorch_export.export(net, path, (12,), timesteps=steps)
    model = frontend.load(path, source_framework="snntorch")
    assert model["1"].synapse_rounding == "joint" and model["3"].current_based
    rng = np.random.default_rng(8)
    x = (rng.random((6, steps, 12)) < 0.4).astype(np.uint8)
    theirs = run_snntorch(net, x)
    ours = reference.run(model, x).spikes
    for name, expected in theirs.items():
        assert np.array_equal(ours[name], expected), name
        assert 0 < expected.mean() < 1, name
    program = compile_program(model, hardware_config.load(None, ["tppes=2", "chunk=8"]))
    assert (program.lanes, program.time_chunks) == (16, 2)
    build = build_directory.write(program, model, tmp_path / "build")
    result = cosimulate(build, x, parallel=1)
    first = next((m for m in result.verdict.first_mismatch if m), None)
    assert result.verdict.bit_exact, first.describe()
