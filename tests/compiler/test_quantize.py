"""Post-training quantization: scales, clipping, leaks, membrane widths and the report."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwgen.errors import ConfigError, UnsupportedError
from hwgen.compiler.ir import LIF, Leak
from hwgen.compiler.ir.floating import FloatDense, FloatInput, FloatNetwork, FloatNeuron, FloatReadout
from hwgen.compiler.passes.quantize import (QuantizeOptions, quantize, quantize_betas,
                                           quantize_leak)
from hwgen.compiler.ir import float_reference, reference


def network(weights, thresholds, *, beta=0.875, fire="gt", reset="subtract", order="delayed",
            timesteps=8, bias=None):
    """Input -> (dense -> LIF) per weight matrix -> spike-count readout."""
    net = FloatNetwork("net", timesteps)
    net.add(FloatInput(name="x", inputs=[], shape=(weights[0].shape[1],)))
    source = "x"
    for i, (w, theta) in enumerate(zip(weights, thresholds), start=1):
        net.add(FloatDense(name=f"fc{i}", inputs=[source], shape=(w.shape[0],), weight=w,
                           bias=None if bias is None else bias[i - 1]))
        net.add(FloatNeuron(name=f"lif{i}", inputs=[f"fc{i}"], shape=(w.shape[0],),
                            beta=np.resize(np.asarray(beta, dtype=float), w.shape[0]),
                            threshold=np.full(w.shape[0], float(theta)), fire=fire,
                            reset=reset, order=order))
        source = f"lif{i}"
    net.add(FloatReadout(name="out", inputs=[source], shape=(), mode="spike_count"))
    return net


def spikes(seed, samples=64, steps=8, inputs=20, density=0.3):
    return (np.random.default_rng(seed).random((samples, steps, inputs)) < density).astype(
        np.uint8)


@pytest.mark.parametrize("beta, form, expected, exact", [
    (1.0, "multiply", Leak.none(), True),
    (0.0, "multiply", Leak.by_multiply(0, 1), True),
    (0.875, "multiply", Leak.by_multiply(7, 3), True),
    (0.8750000001, "multiply", Leak.by_multiply(7, 3), True),
    (1 - 2 ** -16, "multiply", Leak.by_multiply(65535, 16), True),
    (0.9, "multiply", Leak.by_multiply(115, 7), False),            # 230/256 in lowest terms
    (0.9999995, "multiply", Leak.none(), True),
    (0.99, "multiply", Leak.by_multiply(253, 8), False),           # 253.44 / 256
    (0.875, "shift", Leak.by_shift(3), True),
    (0.9, "shift", Leak.by_shift(3), False),                       # 0.875 is nearest
    (0.3, "shift", Leak.by_shift(1), False),
])
def test_leaks_round_to_the_nearest_supported_form(beta, form, expected, exact):
    leak, is_exact = quantize_leak(beta, form=form, frac_bits=8, v_bits=12)
    assert (leak, is_exact) == (expected, exact)
    assert abs(leak.beta - beta) <= 2 ** -9 or form == "shift"


def test_float_weights_get_one_scale_per_layer():
    rng = np.random.default_rng(0)
    w1, w2 = rng.normal(0, 1, (16, 20)), rng.normal(0, 0.1, (4, 16))
    model = quantize(network([w1, w2], [1.5, 0.2]), QuantizeOptions(weight_bits=5))
    for name, w, theta in (("fc1", w1, 1.5), ("fc2", w2, 0.2)):
        scale = 15 / np.abs(w).max()
        assert np.array_equal(model[name].weight, np.round(w * scale))
        assert model[name].weight_bits == 5 and np.abs(model[name].weight).max() == 15
        assert model["lif" + name[-1]].threshold.tolist() == [round(theta * scale)] * w.shape[0]
    layers = model.metadata["quantization"]["layers"]
    assert [layer["clipped_weights"] for layer in layers] == [0, 0]
    assert layers[0]["scale_source"].startswith("max |w| = ")


def test_integer_weights_keep_scale_one_and_the_narrowest_width():
    w = np.array([[-8.0, 3.0], [7.0, 0.0]])
    model = quantize(network([w], [4.0]))
    assert model["fc1"].weight_bits == 4 and np.array_equal(model["fc1"].weight, w)
    layer = model.metadata["quantization"]["layers"][0]
    assert layer["scale"] == 1.0 and layer["exact_integers"]
    # Asked for narrower weights than the integers need: quantized like float weights.
    narrow = quantize(network([w], [4.0]), QuantizeOptions(weight_bits=3))
    assert not narrow.metadata["quantization"]["layers"][0]["exact_integers"]
    assert np.abs(narrow["fc1"].weight).max() == 3


def test_calibration_clips_outliers_when_that_agrees_better():
    rng = np.random.default_rng(1)
    w = rng.normal(0, 0.3, (16, 20))
    w[0, 0] = 6.0                                       # one outlier stretches the scale
    net = network([w], [0.9], beta=0.5)
    x = spikes(1)
    plain = quantize(net, QuantizeOptions(weight_bits=4))
    calibrated = quantize(net, QuantizeOptions(weight_bits=4), calibration=x)
    layer = calibrated.metadata["quantization"]["layers"][0]
    tried = {c["clip"]: c["agreement"] for c in layer["calibration_candidates"]}
    assert set(tried) == {1.0, 0.9, 0.8, 0.7, 0.6, 0.5}
    best = max(tried.values())
    chosen = [c for c in layer["calibration_candidates"] if c["scale"] == layer["scale"]][0]
    assert chosen["agreement"] == best and chosen["clip"] < 1.0
    assert layer["clipped_weights"] >= 1 and best > tried[1.0]
    assert layer["scale"] == pytest.approx(7 / (6.0 * chosen["clip"]))
    float_spikes = float_reference.run(net, x).spikes["lif1"]
    agreement = lambda m: np.mean(reference.run(m, x).spikes["lif1"] == float_spikes)  # noqa
    assert agreement(calibrated) > agreement(plain)
    report = calibrated.metadata["quantization"]["calibration"]
    assert report["samples"] == 64
    assert report["layers"]["lif1"]["spike_agreement"] == pytest.approx(agreement(calibrated))
    assert 0 <= report["prediction_agreement"] <= 1


def test_eight_bit_quantization_of_a_float_network_agrees_closely():
    rng = np.random.default_rng(2)
    net = network([rng.normal(0, 0.5, (32, 20)), rng.normal(0, 0.3, (10, 32))], [1.0, 0.8],
                  beta=0.9)
    x = spikes(2, density=0.4)
    model = quantize(net, calibration=x)
    layers = model.metadata["quantization"]["calibration"]["layers"]
    assert layers["lif1"]["spike_agreement"] > 0.97 and layers["lif2"]["spike_agreement"] > 0.95
    assert model["lif1"].leak == Leak.by_multiply(115, 7)
    leak = model.metadata["quantization"]["layers"][0]["leak"]
    assert leak["error"] == pytest.approx(abs(0.9 - 115 / 128)) and not leak["exact"]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), order=st.sampled_from(["same_step", "delayed"]),
       reset=st.sampled_from(["subtract", "zero", "none"]),
       beta=st.sampled_from([0.0, 0.5, 0.875, 0.9, 1.0, (0.0, 0.9, 1.0, 0.5),
                             (0.99, 0.25)]),
       form=st.sampled_from(["multiply", "shift"]), steps=st.integers(1, 12))
def test_automatic_membrane_width_never_saturates(seed, order, reset, beta, form, steps):
    """The automatic v_bits must give exactly the spikes of an unbounded membrane, even with
    every input spiking and negative currents (floor rounding grows negative membranes)."""
    rng = np.random.default_rng(seed)
    w = rng.integers(-7, 8, (8, 12)).astype(float)
    net = network([w], [float(rng.integers(0, 20))], beta=beta, reset=reset, order=order,
                  timesteps=steps, bias=[rng.integers(-3, 4, 8).astype(float)])
    if isinstance(beta, tuple):
        form = "multiply"           # betas that differ per neuron need the multiply form
    model = quantize(net, QuantizeOptions(leak_form=form))
    narrow = model["lif1"]
    assert (narrow.leak.kind == "per_neuron") == isinstance(beta, tuple)
    wide = LIF("lif1", narrow.threshold, leak=narrow.leak, fire=narrow.fire,
               reset=narrow.reset, order=narrow.order, v_bits=32)
    x = spikes(seed, samples=16, steps=steps, inputs=12, density=float(rng.choice([0.1, 0.9])))
    current = reference.run(model, x).currents["fc1"]
    assert np.array_equal(reference.lif(narrow, current)[0], reference.lif(wide, current)[0])
    assert np.array_equal(reference.lif(narrow, current)[1], reference.lif(wide, current)[1])


def test_given_membrane_width_reports_whether_it_can_saturate():
    w = np.full((2, 10), 7.0)
    layer = quantize(network([w], [5.0]), QuantizeOptions(v_bits=8)).metadata[
        "quantization"]["layers"][0]
    assert layer["v_bits"] == 8 and layer["v_bits_source"].endswith("can saturate")
    layer = quantize(network([w], [5.0])).metadata["quantization"]["layers"][0]
    # 8 steps of at most 70 + 5 (delayed subtract), each leaking by 7/8 (plus 1 for the
    # floor): 75, 141, 199, 250, 294, 333, 367, 397 -- well under 8 * 75 = 600.
    assert layer["v_bits_source"] == "auto: |h| <= 397, never saturates" and layer["v_bits"] == 10


def test_options_are_checked():
    with pytest.raises(ConfigError, match="weight bits must be between 2 and 16, got 1"):
        QuantizeOptions(weight_bits=1).check()
    with pytest.raises(ConfigError, match="leak form 'exp' is not one of multiply, shift"):
        QuantizeOptions(leak_form="exp").check()


@pytest.mark.parametrize("betas, expected, exact", [
    ([0.5, 0.75, 0.875, 1.0], Leak.per_neuron([4, 6, 7, 8], 3), True),
    ([0.0, 0.25, 0.0], Leak.per_neuron([0, 1, 0], 2), True),
    ([0.5, 0.5], Leak.by_multiply(1, 1), True),                     # all equal: one for all
    ([1.0, 1.0], Leak.none(), True),
    ([0.9, 0.5], Leak.per_neuron([115, 64], 7), False),             # 230/256, 128/256
    ([0.9, 0.9002], Leak.by_multiply(115, 7), False),               # both round to 230/256
    ([2 ** -10, 0.9], Leak.per_neuron([0, 115], 7), False),         # not all exact: F = 8
    ([2 ** -10, 0.5], Leak.per_neuron([1, 512], 10), True),
    ([0.5, 1 - 2 ** -16], Leak.per_neuron([32768, 65535], 16), True),
])
def test_betas_that_differ_get_one_multiplier_each(betas, expected, exact):
    leak, is_exact = quantize_betas(betas, frac_bits=8)
    assert (leak, is_exact) == (expected, exact)
    assert np.abs(leak.betas - np.asarray(betas)).max() <= 2 ** -9 or leak.kind != "per_neuron"


def test_a_layer_whose_neurons_decay_differently_is_quantized_per_neuron():
    """An integer-valued layer with betas 1/2, 3/4, 7/8, 0 keeps every neuron's own decay
    exactly (it used to get one median leak for all), and the report says so."""
    w = np.array([[2.0, 1.0], [1.0, 2.0], [3.0, -1.0], [1.0, 1.0]])
    betas = [0.5, 0.75, 0.875, 0.0]
    model = quantize(network([w], [3.0], beta=betas))
    assert model["lif1"].leak == Leak.per_neuron([4, 6, 7, 0], 3)
    leak = model.metadata["quantization"]["layers"][0]["leak"]
    assert leak["exact"] and leak["error"] == 0.0
    assert leak["beta_range"] == [0.0, 0.875] and leak["beta_quantized_range"] == [0.0, 0.875]
    assert leak["quantized"] == {"kind": "per_neuron", "frac_bits": 3,
                                 "multiplier_range": [0, 7], "distinct": 4}
    assert "median" not in str(leak)
    # floor((a[n] * v) / 8): the float model with a floored membrane is the same model
    x = spikes(4, samples=32, inputs=2, density=0.6)
    net = network([w], [3.0], beta=betas)
    for layer in net:
        if isinstance(layer, FloatNeuron):
            layer.rounding = "floor"
    expected = float_reference.run(net, x).spikes["lif1"]
    assert np.array_equal(reference.run(model, x).spikes["lif1"], expected)
    assert 0 < expected.mean() < 1


def test_equal_betas_keep_the_cheaper_per_layer_leak():
    w = np.array([[2.0, 1.0], [1.0, 2.0]])
    model = quantize(network([w], [3.0], beta=[0.75, 0.75]))
    assert model["lif1"].leak == Leak.by_multiply(3, 2)
    assert "beta_range" not in model.metadata["quantization"]["layers"][0]["leak"]


def test_per_neuron_betas_need_the_multiply_form():
    w = np.array([[2.0, 1.0], [1.0, 2.0]])
    with pytest.raises(UnsupportedError, match="layer 'lif1': its neurons decay differently "
                                               r"\(beta 0.5 to 0.75\); a leak per neuron is a "
                                               "multiply"):
        quantize(network([w], [3.0], beta=[0.5, 0.75]), QuantizeOptions(leak_form="shift"))
