"""Residual connections across layers on the RTL: a layer reads the spikes of an earlier
layer besides its input's, kept for it in a region pair of the spike buffers
(docs/architecture.md, "Residual connections").

- SEW-ResNet's spike add (``h1 + h3`` into a synapse) and a residual of currents (a
  synapse of ``h1`` summed into the current of ``h2``'s successor), in dense layers, under
  time chunks, the wide fetch and the laggy join;
- a SEW-ResNet block of convolutions in NIR (a 1x1 shortcut convolution summed into the
  block's second neuron, the block's output spike-added to its middle layer's), against
  the integer reference and NIR's float semantics.
"""

import nir
import numpy as np
import pytest

from hwgen import build_directory
from hwgen.compiler import hardware_config
from hwgen.compiler.frontends import nir as frontend
from hwgen.compiler.ir import LIF, Add, Dense, Input, Model, Readout, float_reference, reference
from hwgen.compiler.scheduler.program import compile_program
from hwgen.sim.cosim import cosimulate

pytestmark = [pytest.mark.verilator, pytest.mark.slow]


def lif_for(model, name, source, threshold=2):
    model.add(LIF(name, np.full(model.infer()[source].size, threshold), v_bits=12), source)


def dense_residual_model():
    """x -> h1 -> h2 -> h3; out reads h3 + h1 (a spike add); h4 reads a current of h3
    plus one of h1 (a residual of currents, from two layers back)."""
    rng = np.random.default_rng(31)
    model = Model("residual", 6)
    model.add(Input("x", (13,)))
    sizes = {"h1": 11, "h2": 9, "h3": 11}
    previous = "x"
    for name, size in sizes.items():
        fan_in = model.infer()[previous].size
        model.add(Dense(f"to_{name}", rng.integers(-3, 4, (size, fan_in)), weight_bits=4,
                        acc_bits=9), previous)
        lif_for(model, name, f"to_{name}")
        previous = name
    model.add(Add("sew"), ["h3", "h1"])
    model.add(Dense("to_h4", rng.integers(-3, 4, (10, 11)), weight_bits=4, acc_bits=10), "sew")
    model.add(Dense("short", rng.integers(-3, 4, (10, 11)), weight_bits=4, acc_bits=9), "h1")
    model.add(Add("currents"), ["to_h4", "short"])
    lif_for(model, "h4", "currents", threshold=3)
    model.add(Dense("to_out", rng.integers(-3, 4, (6, 10)), weight_bits=4, acc_bits=9), "h4")
    lif_for(model, "out", "to_out")
    model.add(Readout("r"), "out")
    return model


@pytest.mark.parametrize("settings", [
    ["tppes=3", "chunk=4"],
    ["tppes=2", "chunk=8", "time_chunk=3", "fetch_width=4"],
    ["tppes=4", "chunk=4", "join=laggy", "lif_steps=2"],
])
def test_dense_residuals_are_bit_exact(settings, tmp_path):
    model = dense_residual_model()
    x = (np.random.default_rng(32).random((12, 6, 13)) < 0.45).astype(np.uint8)
    x[0] = 0
    program = compile_program(model, hardware_config.load(None, settings))
    assert [plan.aux for plan in program.layers] == [(), (), (), ("h1",), ()]
    assert program.state_pairs == 1          # h1, kept for h4 (h3 is its input)
    result = cosimulate(build_directory.write(program, model, tmp_path / "b"), x)
    assert result.verdict.bit_exact, result.verdict.first_mismatch
    for name in ("h1", "h3", "h4", "out"):
        assert result.trace.spikes[name].any(), f"{name} never spiked: a weak test"


def conv(weight, padding=1):
    return nir.Conv2d(input_shape=None, weight=weight.astype(float), stride=1, padding=padding,
                      dilation=1, groups=1, bias=np.zeros(weight.shape[0]))


def lif(shape, threshold):
    full = lambda x: np.full(shape, float(x))                             # noqa: E731
    return nir.LIF(tau=full(2e-4), r=full(2.0), v_leak=full(0), v_threshold=full(threshold),
                   v_reset=full(0), metadata={"hwgen.membrane_rounding": "floor"})


def test_a_nir_sew_resnet_block_is_bit_exact_and_computes_what_nir_means(tmp_path):
    rng = np.random.default_rng(33)
    shape = (3, 5, 5)
    g = nir.NIRGraph(nodes={
        "in": nir.Input(np.array([2, 5, 5])),
        "stem": conv(rng.integers(-1, 3, (3, 2, 3, 3))),
        "l0": lif(shape, 2.0),
        "c1": conv(rng.integers(-1, 3, (3, 3, 3, 3))),
        "l1": lif(shape, 2.0),
        "c2": conv(rng.integers(-1, 3, (3, 3, 3, 3))),
        "short": conv(rng.integers(-1, 2, (3, 3, 1, 1)), padding=0),
        "l2": lif(shape, 3.0),
        "c3": conv(rng.integers(-1, 3, (2, 3, 3, 3)), padding=0),
        "l3": lif((2, 3, 3), 2.0),
    }, edges=[("in", "stem"), ("stem", "l0"), ("l0", "c1"), ("c1", "l1"), ("l1", "c2"),
              ("c2", "l2"), ("l0", "short"), ("short", "l2"), ("l2", "c3"), ("l1", "c3"),
              ("c3", "l3")], metadata={}, type_check=False)
    model = frontend.load(g, timesteps=6)
    x = (rng.random((10, 6, 2, 5, 5)) < 0.4).astype(np.uint8)
    ours = reference.run(model, x)
    theirs = float_reference.run(frontend.to_float(g, timesteps=6), x)
    for name in ("l0", "l1", "l2", "l3"):
        assert np.array_equal(ours.spikes[name], theirs.spikes[name]), name
        assert 0 < ours.spikes[name].mean() < 1, name
    program = compile_program(model, hardware_config.load(None, ["tppes=3"]))
    assert [plan.aux for plan in program.layers] == [(), (), ("l0",), ("l1",)]
    result = cosimulate(build_directory.write(program, model, tmp_path / "b"), x)
    assert result.verdict.bit_exact, result.verdict.first_mismatch
