"""Unrolling a layer's linear synapse ops into one matrix (compiler/passes/unroll.py,
legalise): the matrix times the source's spikes, plus the bias, is exactly the current the
integer reference computes through the ops themselves, for every shape the IR accepts; and
what the accelerator cannot run is refused by name."""

import re

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from hwgen.compiler import hardware_config
from hwgen.compiler.ir import (LIF, Add, Conv1d, Conv2d, Dense, Flatten, Input, MaxPool2d,
                               Model, Readout, SumPool2d, reference)
from hwgen.compiler.passes import unroll as unroll_module
from hwgen.compiler.passes.legalise import legalise
from hwgen.compiler.scheduler.program import compile_program
from hwgen.errors import FitError, ModelError, UnsupportedError


def check_exact(model, samples=6, seed=0):
    """Every layer's unrolled matrix reproduces the reference's current into its lif op on
    random spikes (and on all-silent and all-spiking inputs)."""
    rng = np.random.default_rng(seed)
    shape = model.input.shape
    x = (rng.random((samples, model.timesteps, *shape)) < 0.5).astype(np.uint8)
    x[0] = 0
    x[1] = 1
    trace = reference.run(model, x)
    chain = legalise(model)
    for layer in chain.layers:
        spikes = layer.input_spikes(trace.spikes)    # kept layers' columns follow its source's
        dense = layer.dense
        if layer.unrolled:                      # the reference's dense() takes an array
            dense = Dense(dense.name, dense.dense_weight(), dense.bias,
                          weight_bits=dense.weight_bits, acc_bits=dense.acc_bits)
        current = reference.dense(dense, spikes)
        if not isinstance(model[layer.name], LIF):
            # a layer of gates (a copy of the input, an AND): no current in the model, its
            # spikes are the op's
            gated = reference.lif(layer.lif, current)[0]
            assert np.array_equal(gated, trace.spikes[layer.name].reshape(gated.shape))
            continue
        expected = trace.currents[model.inputs_of(layer.name)[0]]
        assert np.array_equal(current, expected), layer.name
    return chain


def lif_for(model, name, source, threshold=2):
    size = model.infer()[source].size
    model.add(LIF(name, np.full(size, threshold), v_bits=12), source)


def conv_model(draw, dims):
    channels = draw(st.integers(1, 5))
    size = tuple(draw(st.integers(1, 7)) for _ in range(dims))
    kernel = tuple(draw(st.integers(1, min(3, s + 2))) for s in size)
    padding = tuple(draw(st.integers(0, k - 1)) for k in kernel)
    stride = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(dims))
    groups = draw(st.sampled_from([g for g in (1, 2, 3) if channels % g == 0]))
    out_channels = groups * draw(st.integers(1, 3))
    for n, k, p, d in zip(size, kernel, padding, dilation):
        if n + 2 * p - d * (k - 1) < 1:
            return None
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    weight = rng.integers(-8, 8, (out_channels, channels // groups, *kernel))
    weight[rng.random(weight.shape) < 0.3] = 0
    bias = rng.integers(-5, 5, out_channels) if draw(st.booleans()) else None
    op = (Conv1d if dims == 1 else Conv2d)(
        "conv", weight, bias, stride=stride, padding=padding, dilation=dilation,
        groups=groups, weight_bits=4, acc_bits=16)
    model = Model("m", draw(st.integers(1, 3)))
    model.add(Input("x", (channels, *size)))
    if dims == 2 and draw(st.booleans()):
        # sum pooling of the input spikes before the convolution: composed into it
        model.add(SumPool2d("pool", draw(st.integers(1, 2)), padding=0), "x")
        model.add(op, "pool")
    else:
        model.add(op, "x")
    try:
        model.infer()
    except ModelError:                        # a window larger than its padded input
        return None
    lif_for(model, "lif", "conv")
    return model


@settings(max_examples=60, deadline=None)
@given(st.data(), st.sampled_from([1, 2]))
def test_unrolled_convolutions_compute_what_the_reference_computes(data, dims):
    model = conv_model(data.draw, dims)
    assume(model is not None)
    chain = check_exact(model)
    (layer,) = chain.layers
    assert layer.unrolled[-1] == model["conv"].where and layer.where.endswith("(unrolled)")
    assert layer.dense.outputs == model.infer()["conv"].size


def two_convs_model(add_spikes=False):
    """Two convolutions of one source summed into one neuron op, then flatten -> dense; or
    a spike add of the input with itself feeding a convolution."""
    rng = np.random.default_rng(4)
    model = Model("m", 4)
    model.add(Input("x", (2, 5, 5)))
    if add_spikes:
        model.add(Flatten("same", 0, 0), "x")        # the input again, as a second edge
        model.add(Add("twice"), ["x", "same"])
        model.add(Conv2d("c", rng.integers(-3, 4, (3, 2, 3, 3)), stride=2, padding=1,
                         weight_bits=4, acc_bits=10), "twice")
        lif_for(model, "l1", "c")
    else:
        model.add(Conv2d("a", rng.integers(-3, 4, (3, 2, 3, 3)), padding=1, weight_bits=4,
                         acc_bits=10), "x")
        model.add(Conv2d("b", rng.integers(-3, 4, (3, 2, 1, 1)), rng.integers(-2, 3, 3),
                         weight_bits=4, acc_bits=10), "x")
        model.add(Add("sum"), ["a", "b"])
        lif_for(model, "l1", "sum")
    size = model.infer()["l1"].size
    model.add(Flatten("flat"), "l1")
    model.add(Dense("fc", rng.integers(-3, 4, (4, size)), weight_bits=4, acc_bits=12), "flat")
    lif_for(model, "l2", "fc")
    model.add(Readout("r"), "l2")
    return model


@pytest.mark.parametrize("add_spikes", [False, True])
def test_adds_of_one_source_unroll_and_a_plain_dense_stays_the_models_op(add_spikes):
    model = two_convs_model(add_spikes)
    chain = check_exact(model)
    first, second = chain.layers
    assert first.unrolled == (("flatten 'same'", "add 'twice'", "conv2d 'c'") if add_spikes else
                              ("conv2d 'a'", "conv2d 'b'", "add 'sum'"))
    assert second.dense is model["fc"] and second.unrolled == ()
    assert second.source == "l1" and chain.readout is model["r"]


def test_the_unrolled_weight_and_accumulator_widths_hold_the_composed_matrix():
    model = Model("m", 2)
    model.add(Input("x", (1, 4, 4)))
    model.add(SumPool2d("pool", 2), "x")
    model.add(Conv2d("c", np.full((1, 1, 2, 2), 7), weight_bits=4, acc_bits=9), "pool")
    lif_for(model, "l", "c")
    (layer,) = check_exact(model).layers
    # one output: 7 on each of the 16 inputs (each reaches it through one pool window)
    assert layer.dense.dense_weight().tolist() == [[7] * 16]
    assert layer.dense.weight_bits == 4 and layer.dense.acc_bits >= 8


def test_a_composed_weight_wider_than_the_accelerator_is_refused():
    model = Model("m", 2)
    model.add(Input("x", (1, 4, 4)))
    model.add(SumPool2d("pool", 2, stride=1), "x")
    model.add(Conv2d("c", np.full((1, 1, 2, 2), 2 ** 15 - 1), weight_bits=16, acc_bits=24),
              "pool")
    lif_for(model, "l", "c")
    with pytest.raises(UnsupportedError, match=re.escape(
            "conv2d 'c': unrolled with pool, c, its weights reach 18 bits, more than the "
            "accelerator's 16")):
        legalise(model)


def test_a_layer_too_large_to_unroll_is_refused_with_its_size(monkeypatch):
    monkeypatch.setattr(unroll_module, "MAX_UNROLLED_NONZEROS", 500)
    model = two_convs_model()
    # the first op whose matrix is too large is named: conv 'a' (75 x 50, 3 x 3 windows)
    with pytest.raises(FitError, match=r"^add 'sum': unrolled, conv2d 'a' makes a 75 x 50 "
                                       r"matrix with [0-9,]+ nonzero entries, more than the "
                                       r"compiler holds \(500\)$"):
        compile_program(model, hardware_config.load(None, []))


def residual_model():
    rng = np.random.default_rng(5)
    model = Model("m", 3)
    model.add(Input("x", (6,)))
    model.add(Dense("a", rng.integers(-3, 4, (6, 6)), weight_bits=4, acc_bits=8), "x")
    lif_for(model, "h", "a")
    model.add(Dense("b", rng.integers(-3, 4, (6, 6)), weight_bits=4, acc_bits=8), "h")
    model.add(Dense("skip", rng.integers(-3, 4, (6, 6)), weight_bits=4, acc_bits=8), "x")
    model.add(Add("sum"), ["b", "skip"])
    lif_for(model, "out", "sum")
    return model


def test_a_residual_from_the_model_input_reads_a_kept_copy_of_it():
    """The input's own region is overwritten by the second layer, so a later layer reading
    the input reads a layer of identity gates that copied it (named as the input)."""
    chain = check_exact(residual_model())
    assert [(layer.name, layer.source, layer.aux) for layer in chain.layers] == [
        ("x", "x", ()), ("h", "x", ()), ("out", "h", ("x",))]
    copy = chain.layers[0]
    assert (copy.dense.dense_weight() == np.eye(6, dtype=int)).all()
    assert copy.where == "input 'x' (copied, kept) (unrolled)"


def test_what_the_accelerator_cannot_run_is_refused_by_name():
    model = Model("m", 2)
    model.add(Input("x", (2, 4, 4)))
    model.add(Conv2d("c", np.ones((2, 2, 3, 3), dtype=int), padding=1, weight_bits=2,
                     acc_bits=7), "x")
    lif_for(model, "l", "c")
    model.add(Conv2d("c2", np.ones((2, 2, 1, 1), dtype=int), weight_bits=2, acc_bits=4), "l")
    model.add(Conv2d("skip", np.ones((2, 2, 1, 1), dtype=int), weight_bits=2, acc_bits=4),
              "x")
    with pytest.raises(UnsupportedError, match=re.escape(
            "conv2d 'c2': its output feeds no neuron; the accelerator runs a single "
            "sequence of layers")):
        legalise(model)


def sew_model(skip_into_current=False):
    """x -> a -> h1 -> b -> h2, then h1 + h2 (SEW-ResNet's spike add) -> c -> out; or
    (``skip_into_current``) a dense of h1 added to b's current into h2 instead."""
    rng = np.random.default_rng(6)
    model = Model("m", 3)
    model.add(Input("x", (6,)))
    model.add(Dense("a", rng.integers(-3, 4, (6, 6)), weight_bits=4, acc_bits=8), "x")
    lif_for(model, "h1", "a")
    model.add(Dense("b", rng.integers(-3, 4, (5, 6)), weight_bits=4, acc_bits=8), "h1")
    if skip_into_current:
        model.add(Dense("c", rng.integers(-3, 4, (4, 6)), weight_bits=4, acc_bits=8), "h1")
        lif_for(model, "h2", "b")
        model.add(Dense("d", rng.integers(-3, 4, (4, 5)), weight_bits=4, acc_bits=8), "h2")
        model.add(Add("sum"), ["d", "c"])
        lif_for(model, "out", "sum")
        return model
    lif_for(model, "h2", "b")
    model.add(Dense("b2", rng.integers(-3, 4, (6, 5)), weight_bits=4, acc_bits=8), "h2")
    lif_for(model, "h3", "b2")
    model.add(Add("sew"), ["h1", "h3"])
    model.add(Dense("c", rng.integers(-3, 4, (4, 6)), weight_bits=4, acc_bits=9), "sew")
    lif_for(model, "out", "c")
    return model


@pytest.mark.parametrize("skip_into_current", [False, True])
def test_a_residual_from_an_earlier_layer_reads_it_as_a_second_source(skip_into_current):
    model = sew_model(skip_into_current)
    chain = check_exact(model)
    last = chain.layers[-1]
    assert (last.source, last.aux) == ("h2" if skip_into_current else "h3", ("h1",))
    assert last.dense.inputs == (5 if skip_into_current else 6) + 6
    assert [layer.aux for layer in chain.layers[:-1]] == [()] * (len(chain.layers) - 1)


def test_a_layer_reads_any_number_of_earlier_layers():
    rng = np.random.default_rng(1)
    model = Model("m", 2)
    model.add(Input("x", (4,)))
    for i, source in enumerate(["x", "l0", "l1"]):
        model.add(Dense(f"d{i}", rng.integers(-2, 3, (4, 4)), weight_bits=3, acc_bits=6),
                  source)
        lif_for(model, f"l{i}", f"d{i}")
    model.add(Add("three"), ["l0", "l1", "l2", "x"])
    model.add(Dense("d3", rng.integers(-2, 3, (4, 4)), weight_bits=3, acc_bits=8), "three")
    lif_for(model, "l3", "d3")
    last = check_exact(model).layers[-1]
    assert (last.source, last.aux) == ("l2", ("x", "l0", "l1"))
    assert last.dense.inputs == 16


def test_a_residual_in_a_recurrent_model_is_refused():
    model = Model("m", 2)
    model.add(Input("x", (4,)))
    model.add(Dense("d0", np.ones((4, 4), dtype=int), weight_bits=2, acc_bits=4), "x")
    lif_for(model, "l0", "d0")
    model.add(Dense("rec", np.ones((4, 8), dtype=int), weight_bits=2, acc_bits=5,
                    recurrent=True), "l0")
    model.add(LIF("l1", np.full(4, 2), v_bits=12), "rec")
    model.add(Dense("d2", np.ones((4, 4), dtype=int), weight_bits=2, acc_bits=4), "l1")
    model.add(Dense("skip", np.ones((4, 4), dtype=int), weight_bits=2, acc_bits=4), "l0")
    model.add(Add("sum"), ["d2", "skip"])
    lif_for(model, "l2", "sum")
    with pytest.raises(UnsupportedError, match=re.escape(
            "lif 'l2': a residual connection (from 'l0') in a model with a recurrent layer "
            "('l1') is not supported by the accelerator yet")):
        legalise(model)


def test_a_layer_that_skips_its_predecessor_reads_what_it_reads_and_nothing_else():
    rng = np.random.default_rng(2)
    model = Model("m", 2)
    model.add(Input("x", (4,)))
    model.add(Dense("d0", rng.integers(-2, 3, (4, 4)), weight_bits=3, acc_bits=6), "x")
    lif_for(model, "l0", "d0")
    model.add(Dense("d1", rng.integers(-2, 3, (4, 4)), weight_bits=3, acc_bits=6), "x")
    lif_for(model, "l1", "d1")
    chain = check_exact(model)
    assert [(layer.name, layer.source, layer.aux) for layer in chain.layers] == [
        ("x", "x", ()), ("l0", "x", ()), ("l1", "l0", ("x",))]
    # no weight on the columns of the layer before it, which it does not read
    assert chain.layers[-1].dense.dense_weight()[:, :4].any() == 0


def test_a_max_pool_of_currents_groups_the_rows_of_each_window():
    """conv -> max_pool2d -> lif: the layer's matrix has the convolution's rows, and each
    neuron lists the rows of its window, padding left out."""
    model = Model("m", 2)
    model.add(Input("x", (1, 4, 4)))
    model.add(Conv2d("c", np.arange(18).reshape(2, 1, 3, 3) - 9, padding=1, weight_bits=5,
                     acc_bits=9), "x")
    model.add(MaxPool2d("mp", 3, stride=2, padding=1), "c")
    lif_for(model, "l", "mp")
    (layer,) = legalise(model).layers
    assert layer.dense.outputs == 2 * 16 and layer.outputs == 2 * 2 * 2
    assert layer.pool[0] == (0, 1, 4, 5)                 # the corner window, padding out
    assert layer.pool[3] == (5, 6, 7, 9, 10, 11, 13, 14, 15)
    assert layer.pool[4][0] == 16 and layer.where.endswith("max_pool2d 'mp' (unrolled)")
    rng = np.random.default_rng(3)
    x = (rng.random((5, 2, 1, 4, 4)) < 0.5).astype(np.uint8)
    trace = reference.run(model, x)
    dense = Dense("rows", layer.dense.dense_weight(), layer.dense.bias,
                  weight_bits=layer.dense.weight_bits, acc_bits=layer.dense.acc_bits)
    rows = reference.dense(dense, trace.spikes["x"])
    pooled = np.stack([rows[..., list(r)].max(axis=-1) for r in layer.pool], axis=-1)
    assert np.array_equal(pooled, trace.currents["mp"])


def test_a_max_pool_of_spikes_is_refused_by_name():
    model = Model("m", 2)
    model.add(Input("x", (1, 4, 4)))
    model.add(MaxPool2d("mp", 2), "x")
    model.add(Flatten("f"), "mp")
    model.add(Dense("d", np.ones((2, 4), dtype=int), weight_bits=2, acc_bits=4), "f")
    lif_for(model, "l", "d")
    with pytest.raises(UnsupportedError, match=re.escape(
            "max_pool2d 'mp': op type 'max_pool2d' is not supported by the accelerator yet")):
        legalise(model)
