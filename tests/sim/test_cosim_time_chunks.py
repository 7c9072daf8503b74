"""Time chunks on Verilator: any T, at the area of T_c lanes, bit-exact.

An inference of T steps runs as T / T_c passes over the network (docs/architecture.md,
"Time chunks"), the membranes and order bits waiting in each TPPE's membrane memory between
passes. These designs run the exact flow of `hwgen compile` and `hwgen simulate`: the
bundled model in time chunks and as the temporal-sequential baseline (T_c = 1), an snnTorch
MLP exported by hwgen's helper at T = 64 (checked against snnTorch's own simulation too),
an MLP at T = 256, and early exits after a chunk. Zero mismatching bits is the only pass.
"""

import numpy as np
import pytest

from cosim_designs import cosimulate_design, edge_stimulus
from hwgen import bundled
from hwgen.compiler.ir import reference

pytestmark = [pytest.mark.verilator, pytest.mark.slow]


def spikes(seed, samples, T, inputs, density=0.3):
    return edge_stimulus(seed, T, inputs, samples, density)


@pytest.mark.parametrize("settings, lanes", [
    (["time_chunk=2"], 2),
    (["dataflow=sequential", "tppes=3", "chunk=8"], 1),
])
def test_the_bundled_model_in_time_chunks(tmp_path, settings, lanes):
    model = bundled.digits_model()
    inputs, _ = bundled.digits_test_set()
    program, result = cosimulate_design(model, settings, tmp_path, inputs[:12])
    assert program.lanes == lanes and program.time_chunks == model.timesteps // lanes
    # The trace saw every pass: a layer's cycles are its chunks' sum, all of them nonzero.
    assert (result.layer_cycles > 0).all()


@pytest.mark.parametrize("settings", [["time_chunk=2", "early_exit=certain"],
                                      ["time_chunk=1", "early_exit=2", "tppes=3"]])
def test_an_early_exit_runs_the_steps_the_reference_runs(tmp_path, settings):
    """The core stops after the chunk the rule of docs/semantics.md section 8 names: every
    layer's spikes up to there, the exit membranes, and the steps run are the reference's
    (compare() checks all three); a certain exit keeps every prediction."""
    model = bundled.digits_model()
    inputs, labels = bundled.digits_test_set()
    _, result = cosimulate_design(model, settings, tmp_path, inputs[:16])
    assert result.steps.min() < model.timesteps
    assert np.array_equal(result.steps, result.trace.steps)
    assert (result.layer_cycles >= result.ideal).all()
    if "early_exit=certain" in settings:
        full = reference.run(model, inputs[:16])
        assert np.array_equal(result.rtl_predictions, full.predictions)


def soak_layer(size, current_based=False):
    """One drawn dense -> lif layer as the soak's shrunk cases below have them."""
    from model_strategies import LayerDraw
    return LayerDraw(size=size, weight_bits=2, weight_style="random", bias_style="none",
                     acc_slack=0, v_bits=2, threshold_style="random", leak=("none",),
                     fire="ge", reset="subtract", order="same_step", seed=0,
                     synapse=("none",) if current_based else None,
                     i_bits=2 if current_based else None,
                     synapse_rounding="separate" if current_based else None,
                     recurrent=False, skip=False)


def run_soak_case(timesteps, layers, overrides, stimulus, input_shape=None, attention=None):
    """A shrunk soak case (one sample of ``stimulus``), run as the soak runs it; it must
    be bit-exact, every layer's cycles at least its ideal bound."""
    from model_strategies import Case, run_case
    case = Case(timesteps=timesteps, inputs=1, encoding="spikes", encoder_threshold=0,
                layers=layers, readout=True, overrides=overrides, stimulus=stimulus,
                flaw=None, depth_pad=(), wide_acc=False, input_shape=input_shape, convs=(),
                attention=attention)
    outcome = run_case(case)
    assert outcome.kind == "exact", outcome.message


def test_the_ideal_bound_counts_only_the_chunks_an_early_exit_ran():
    """Found by the soak: 17 chunks of one step, an exit after the first. The model's input
    spikes on after the exit, and the bound counted its pairs in all 17 chunks: 51 cycles
    against the 49 the core took to run one. run_case checks every layer's cycles against
    its bound."""
    run_soak_case(17, (soak_layer(5, current_based=True), soak_layer(1)),
                  ("tppes=1", "chunk=4", "early_exit=certain", "fifo_depth=2"),
                  (("spiking",),))


def test_the_laggy_bound_counts_only_the_passes_an_early_exit_ran():
    """Found by the soak: with the laggy join a neuron's walk costs at least a cycle a
    pass (its end), and the bound counted that cycle in all 32 passes of one step after an
    exit after the first: 32 cycles against the 28 the core took."""
    run_soak_case(32, (soak_layer(1, current_based=True),),
                  ("tppes=1", "chunk=4", "dataflow=sequential", "early_exit=certain",
                   "fifo_depth=2", "join=laggy"), (("random", 0.02, 0),))


def test_an_early_exit_keeps_no_input_copy_after_it():
    """Found by the soak: an attention block reads the model's input, which a layer of
    identity gates named as the input keeps. After an exit after step 3 that copy writes
    nothing, as no layer does, but the comparison expected the input's spikes there."""
    from model_strategies import AttentionDraw
    run_soak_case(17, (soak_layer(1, current_based=True),),
                  ("tppes=1", "chunk=4", "early_exit=certain", "fifo_depth=2",
                   "weight_bits=2", "v_bits=6"), (("random", 0.02, 0),), input_shape=(1, 1),
                  attention=AttentionDraw(seed=0, weight_bits=2, thresholds=("zero",) * 5,
                                          leak_shift=0, fire="ge", reset="zero",
                                          order="same_step", v_bits=6, mask="feature",
                                          shortcut=False))


def test_a_long_inference_of_shared_weights_is_not_taken_for_a_hang():
    """Found by the soak: 64 neurons of all-one weights share one stored weight run, so each
    TPPE matches far more pairs than it stores weights. At one step per chunk and T = 17
    the core needs 9,061 cycles; the hang limit, from entries and weights alone, was 8,752.
    It now also counts the layers' ideal bounds."""
    from model_strategies import Case, LayerDraw, run_case
    case = Case(timesteps=17, inputs=64, encoding="spikes", encoder_threshold=0,
                layers=(LayerDraw(size=64, weight_bits=2, weight_style="max",
                                  bias_style="none", acc_slack=0, v_bits=2,
                                  threshold_style="random", leak=("none",), fire="ge",
                                  reset="subtract", order="same_step", seed=0, synapse=None,
                                  i_bits=None, synapse_rounding=None, recurrent=False,
                                  skip=False),),
                readout=True, overrides=("tppes=9", "chunk=64", "fifo_depth=2",
                                         "timesteps=17", "weight_bits=2"),
                stimulus=(("spiking",),), flaw=None,
                depth_pad=(("program_depth", 0), ("weight_depth", 0), ("spike_depth", 0)),
                wide_acc=False, input_shape=None, convs=(), attention=None)
    outcome = run_case(case)
    assert outcome.kind == "exact", outcome.message
    assert outcome.cycles > 9000


def test_an_snntorch_mlp_at_64_steps(tmp_path):
    """hwgen's snnTorch helper at T = 64: snnTorch's own simulation, the integer reference
    and the RTL (four chunks of 16, delayed subtract reset carried across chunks) agree."""
    pytest.importorskip("snntorch")
    from snntorch_oracle import integer_net, run_snntorch

    from hwgen.compiler.frontends import nir as frontend
    from hwgen.compiler.frontends import snntorch_export
    T = 64
    net = integer_net(5, [12, 10, 6], beta=[0.875, 0.5], threshold=3.0)
    path = tmp_path / "net.nir"
    snntorch_export.export(net, path, (12,), timesteps=T)
    model = frontend.load(path, source_framework="snntorch")
    x = spikes(7, 6, T, 12, density=0.4)
    theirs = run_snntorch(net, x)
    ours = reference.run(model, x).spikes
    for name, expected in theirs.items():
        assert np.array_equal(ours[name], expected), name
    assert 0 < theirs["3"].mean() < 1
    program, _ = cosimulate_design(model, ["tppes=2", "chunk=8"], tmp_path, x)
    assert (program.lanes, program.time_chunks) == (16, 4)


def test_an_mlp_at_256_steps(tmp_path):
    """Sixteen chunks of 16 steps; with lif_steps 4 and a zero reset in the second layer."""
    from hwgen.compiler.ir import LIF, Dense, Input, Leak, Model, Readout
    rng = np.random.default_rng(3)
    T = 256
    model = Model("long", T)
    model.add(Input("input", (20,), encoding="spikes"))
    previous = "input"
    for index, (fan_in, fan_out, leak, reset) in enumerate(
            [(20, 24, Leak.by_shift(3), "subtract"), (24, 8, Leak.none(), "zero")], start=1):
        weight = rng.integers(-3, 4, (fan_out, fan_in))
        model.add(Dense(f"fc{index}", weight, None, weight_bits=3, acc_bits=8), previous)
        model.add(LIF(f"lif{index}", np.full(fan_out, 4), leak=leak, fire="ge", reset=reset,
                      order="same_step", v_bits=8), f"fc{index}")
        previous = f"lif{index}"
    model.add(Readout("readout"), previous)
    model.validate()
    program, result = cosimulate_design(model, ["lif_steps=4"], tmp_path,
                                        spikes(11, 3, T, 20))
    assert (program.lanes, program.time_chunks) == (16, 16)
    assert result.verdict.rtl_spikes["lif2"].any()
