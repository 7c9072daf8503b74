"""Quantizing max pooling, residual currents and spike adds (docs/semantics.md 3a, 3b):
the float side, its reference and the quantizer."""

import re

import numpy as np
import pytest

from hwgen.errors import UnsupportedError
from hwgen.compiler.ir import Add, MaxPool2d, float_reference, reference
from hwgen.compiler.ir.floating import (FloatAdd, FloatConv, FloatDense, FloatFlatten,
                                        FloatInput, FloatMaxPool, FloatNetwork, FloatNeuron,
                                        FloatReadout)
from hwgen.compiler.passes.quantize import quantize


def neuron(name, source, n, theta=2.0, beta=0.5):
    return FloatNeuron(name=name, inputs=[source], shape=(n,) if isinstance(n, int) else n,
                       beta=np.full(int(np.prod(n)), beta), threshold=np.full(int(np.prod(n)),
                                                                              theta),
                       fire="gt", reset="subtract", order="delayed", rounding="floor")


def residual_network(scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    net = FloatNetwork("residual", 8)
    net.add(FloatInput(name="x", inputs=[], shape=(6,)))
    net.add(FloatDense(name="a", inputs=["x"], shape=(5,),
                       weight=rng.integers(-3, 4, (5, 6)) * scale))
    net.add(neuron("h", "a", 5, 2.0 * scale))
    net.add(FloatDense(name="b", inputs=["h"], shape=(4,),
                       weight=rng.integers(-3, 4, (4, 5)) * scale,
                       bias=rng.integers(-1, 2, 4) * scale))
    net.add(FloatDense(name="skip", inputs=["x"], shape=(4,),
                       weight=rng.integers(-2, 3, (4, 6)) * scale))
    net.add(FloatAdd(name="sum", inputs=["b", "skip"], shape=(4,)))
    net.add(neuron("out", "sum", 4, 3.0 * scale))
    net.add(FloatReadout(name="r", inputs=["out"], shape=(), mode="spike_count"))
    return net


def spikes(shape, seed=1, samples=16, steps=8):
    return np.random.default_rng(seed).integers(0, 2, (samples, steps, *shape))


def test_integer_residual_currents_are_kept_exactly():
    net = residual_network()
    model = quantize(net)
    assert isinstance(model["sum"], Add) and model.inputs_of("sum") == ["b", "skip"]
    x = spikes((6,))
    ours = reference.run(model, x)
    theirs = float_reference.run(net, x.reshape(16, 8, 6))
    for name in ("h", "out"):
        assert np.array_equal(ours.spikes[name], theirs.spikes[name])
    assert ours.spikes["out"].any()                # the comparison is not vacuous


def test_residual_synapses_share_one_scale():
    net = residual_network(scale=0.37)
    model = quantize(net)
    report = next(e for e in model.metadata["quantization"]["layers"] if e["layer"] == "out")
    assert report["synapses"] == ["b", "skip"]
    assert "one scale for the summed synapses 'b', 'skip'" in report["scale_source"]
    scale = report["scale"]
    for name in ("b", "skip"):
        assert np.array_equal(model[name].weight, np.round(net[name].weight * scale))
    assert np.abs(model["b"].weight).max() == 127 or np.abs(model["skip"].weight).max() == 127
    assert np.array_equal(model["out"].threshold, np.round(net["out"].threshold * scale))


def conv_pool_network():
    """snnTorch's tutorial shape: Conv2d -> MaxPool2d (of currents) -> Leaky."""
    rng = np.random.default_rng(2)
    net = FloatNetwork("cnn", 6)
    net.add(FloatInput(name="x", inputs=[], shape=(1, 6, 6)))
    net.add(FloatConv(name="c", inputs=["x"], shape=(2, 6, 6),
                      weight=rng.integers(-2, 3, (2, 1, 3, 3)).astype(float),
                      bias=np.array([-1.0, 2.0]), stride=(1, 1), padding=(1, 1),
                      dilation=(1, 1)))
    net.add(FloatMaxPool(name="m", inputs=["c"], shape=(2, 3, 3), kernel=(2, 2),
                         stride=(2, 2), padding=(0, 0)))
    net.add(neuron("l", "m", (2, 3, 3), theta=2.0))
    net.add(FloatFlatten(name="f", inputs=["l"], shape=(18,), start_dim=0, end_dim=2))
    net.add(FloatMaxPool(name="n", inputs=["l"], shape=(2, 1, 1), kernel=(3, 3),
                         stride=(3, 3), padding=(0, 0)))
    return net


def test_a_max_pool_of_currents_joins_its_layer_and_one_of_spikes_stands_alone():
    net = conv_pool_network()
    model = quantize(net)
    report = next(e for e in model.metadata["quantization"]["layers"] if e["layer"] == "l")
    assert report["synapse"] == "c" and report["exact_integers"]
    assert isinstance(model["m"], MaxPool2d) and isinstance(model["n"], MaxPool2d)
    types = model.infer()
    assert types["m"].bits == types["c"].bits and str(types["n"]) == "spikes[2, 1, 1]"
    x = spikes((1, 6, 6), seed=3, steps=6)
    ours = reference.run(model, x)
    theirs = float_reference.run(net, x)
    assert ours.spikes["l"].any()
    # integer weights and thresholds, floored membranes: exact
    assert np.array_equal(ours.spikes["l"], theirs.spikes["l"])
    assert np.array_equal(ours.spikes["n"], theirs.spikes["n"])


def sew_network():
    net = FloatNetwork("sew", 5)
    rng = np.random.default_rng(4)
    net.add(FloatInput(name="x", inputs=[], shape=(2, 4, 4)))
    net.add(FloatConv(name="c1", inputs=["x"], shape=(2, 4, 4),
                      weight=rng.integers(-1, 3, (2, 2, 3, 3)).astype(float), bias=np.zeros(2),
                      stride=(1, 1), padding=(1, 1), dilation=(1, 1)))
    net.add(neuron("l1", "c1", (2, 4, 4)))
    net.add(FloatAdd(name="add", inputs=["l1", "x"], shape=(2, 4, 4)))
    for name, step in (("c2", 1.0), ("c3", 0.3)):   # the block's output feeds two layers
        net.add(FloatConv(name=name, inputs=["add"], shape=(1, 3, 3),
                          weight=rng.integers(-1, 3, (1, 2, 2, 2)) * step, bias=np.zeros(1),
                          stride=(1, 1), padding=(0, 0), dilation=(1, 1)))
        net.add(neuron("l" + name, name, (1, 3, 3), theta=4.0 * step))
    net.add(FloatFlatten(name="f", inputs=["lc2"], shape=(9,), start_dim=0, end_dim=2))
    net.add(FloatFlatten(name="g", inputs=["lc3"], shape=(9,), start_dim=0, end_dim=2))
    net.add(FloatAdd(name="add2", inputs=["f", "g"], shape=(9,)))
    net.add(FloatDense(name="fc", inputs=["add2"], shape=(3,),
                       weight=rng.integers(-2, 3, (3, 9)).astype(float)))
    net.add(neuron("out", "fc", 3))
    return net


def test_a_sew_spike_add_is_quantized_as_an_unscaled_count():
    net = sew_network()
    model = quantize(net, calibration=spikes((2, 4, 4), seed=6, steps=5))
    types = model.infer()
    assert str(types["add"]) == "current[2, 4, 4]:i3" and str(types["add2"]) == "current[9]:i3"
    assert model.consumers_of("add") == ["c2", "c3"]
    entry = next(e for e in model.metadata["quantization"]["layers"] if e["layer"] == "lc3")
    assert "not calibrated" in entry["scale_source"]    # it reads counts, not spikes
    x = spikes((2, 4, 4), seed=7, steps=5)
    ours, theirs = reference.run(model, x), float_reference.run(net, x)
    assert ours.currents["add"].max() == 2
    assert np.array_equal(ours.currents["add"],
                          ours.spikes["l1"].astype(int) + x.reshape(16, 5, -1))
    for name in ("l1", "lc2"):                         # integer layers: exact
        assert np.array_equal(ours.spikes[name], theirs.spikes[name]), name
        assert 0 < ours.spikes[name].mean() < 1
    # the scaled one, rounded: close
    assert np.mean(ours.spikes["lc3"] == theirs.spikes["lc3"]) > 0.9


def test_an_add_of_a_current_and_spikes_is_refused():
    net = residual_network()
    net.add(FloatAdd(name="mixed", inputs=["b", "h"], shape=(4,)))
    with pytest.raises(UnsupportedError, match=re.escape(
            "layer 'mixed': adds 'b' (current), 'h' (spikes); an add sums synapses' currents "
            "(one layer, one scale) or spikes, not both")):
        quantize(net)


def test_a_residual_current_feeding_two_layers_shares_one_scale():
    """Both neuron layers reading the sum, and both synapses summed, get one scale: with
    integer weights the integer model spikes exactly like the float one in both; with float
    weights both thresholds are on the synapses' one scale."""
    net = residual_network()
    net.add(neuron("other", "sum", 4, 4.0))
    model = quantize(net)
    given = spikes((6,))
    ours, theirs = reference.run(model, given), float_reference.run(net, given)
    for name in ("out", "other"):
        assert np.array_equal(ours.spikes[name], theirs.spikes[name]), name
    reports = {r["layer"]: r for r in model.metadata["quantization"]["layers"]}
    assert reports["other"]["shares_scale_with"] == ["out"]
    scaled = quantize(_with_other(residual_network(0.37)))
    reports = {r["layer"]: r for r in scaled.metadata["quantization"]["layers"]}
    assert reports["out"]["scale"] == reports["other"]["scale"] != 1.0
    ratio = scaled["other"].threshold[0] / scaled["out"].threshold[0]
    assert abs(ratio - 4.0 / 3.0) < 0.02


def _with_other(net):
    net.add(neuron("other", "sum", 4, 4.0 * 0.37))
    return net


def test_a_current_feeding_nothing_is_refused():
    net = residual_network()
    net.add(FloatDense(name="dangling", inputs=["h"], shape=(3,), weight=np.ones((3, 5))))
    with pytest.raises(UnsupportedError, match=re.escape(
            "layer 'dangling': its current feeds nothing; hwgen needs a neuron layer after a "
            "synapse")):
        quantize(net)


def test_a_recurrent_layer_on_counts_is_refused():
    net = FloatNetwork("rec", 3)
    net.add(FloatInput(name="x", inputs=[], shape=(2,)))
    net.add(FloatDense(name="d", inputs=["x"], shape=(2,), weight=np.eye(2)))
    net.add(neuron("l", "d", 2))
    net.add(FloatAdd(name="a", inputs=["l", "x"], shape=(2,)))
    net.add(FloatDense(name="r", inputs=["a"], shape=(2,), weight=np.ones((2, 4)),
                       recurrent=True))
    net.add(neuron("m", "r", 2))
    with pytest.raises(UnsupportedError, match=re.escape(
            "layer 'r': a recurrent layer reads spikes, not spike counts")):
        quantize(net)


def test_a_max_pool_of_a_membrane_is_refused():
    from hwgen.compiler.ir.floating import FloatIntegrator
    net = FloatNetwork("mem", 2)
    net.add(FloatInput(name="x", inputs=[], shape=(1, 2, 2)))
    net.add(FloatConv(name="c", inputs=["x"], shape=(1, 2, 2), weight=np.ones((1, 1, 1, 1)),
                      stride=(1, 1), padding=(0, 0), dilation=(1, 1)))
    net.add(FloatIntegrator(name="i", inputs=["c"], shape=(1, 2, 2), beta=np.ones(4)))
    net.add(FloatMaxPool(name="m", inputs=["i"], shape=(1, 1, 1), kernel=(2, 2),
                         stride=(2, 2), padding=(0, 0)))
    with pytest.raises(UnsupportedError, match=re.escape("layer 'm': cannot max-pool a membrane")):
        quantize(net)


def test_a_spike_add_of_pooled_counts_is_refused():
    from hwgen.compiler.ir.floating import FloatSumPool
    net = FloatNetwork("pooled", 2)
    net.add(FloatInput(name="x", inputs=[], shape=(1, 2, 2)))
    net.add(FloatSumPool(name="p", inputs=["x"], shape=(1, 2, 2), kernel=(1, 1), stride=(1, 1),
                         padding=(0, 0)))
    net.add(FloatAdd(name="a", inputs=["p", "x"], shape=(1, 2, 2)))
    with pytest.raises(UnsupportedError, match=re.escape(
            "layer 'a': adds the pooled counts of 'p'; a spike add sums spikes or other spike "
            "adds")):
        quantize(net)


def test_a_layer_other_than_an_add_with_two_inputs_is_refused():
    net = residual_network()
    net.add(FloatDense(name="two", inputs=["h", "out"], shape=(1,), weight=np.ones((1, 5))))
    with pytest.raises(UnsupportedError, match=re.escape(
            "layer 'two': takes 2 inputs; only an add sums several")):
        quantize(net)
