"""The spiking-transformer ops (docs/semantics.md 4d): types, widths, one-line refusals,
the integer reference against loops written from the document's formulas, and the native
format's round trip."""

import itertools
import re

import numpy as np
import pytest

from hwgen.compiler.frontends import native
from hwgen.compiler.ir import (LIF, Conv2d, CurrentMatmul, Current, Flatten, Input, Model, SpikeAnd,
                               SpikeMatmul, Spikes, TokenSum, reference)
from hwgen.errors import ModelError


def test_types_and_widths():
    q = Spikes((8, 4, 4))
    assert SpikeAnd("a").infer([q, q], 4) == Spikes((8, 4, 4))
    assert SpikeAnd("a").infer([q, Spikes((8,))], 4) == Spikes((8, 4, 4))
    # 16 positions: counts 0..16 need 6 signed bits
    assert TokenSum("s").infer([q], 4) == Current((8,), 6)
    assert TokenSum("s").infer([Spikes((3, 15))], 4) == Current((3,), 5)
    assert SpikeMatmul("m", heads=2).infer([q, q], 4) == Current((2, 4, 4), 6)
    # d = 4 times |M| <= 2**5: 128 needs 9 bits
    assert CurrentMatmul("o").infer([q, Current((2, 4, 4), 6)], 4) == Current((8, 4, 4), 9)


@pytest.mark.parametrize("op, inputs, message", [
    (SpikeAnd("a"), [Spikes((8, 16)), Spikes((16,))], "spike_and 'a': its second input"),
    (SpikeAnd("a"), [Spikes((8, 16)), Current((8, 16), 4)], "spike_and 'a': its second input "
                                                            "must be spikes"),
    (SpikeAnd("a"), [Spikes((8, 16))], "spike_and 'a': takes 2 input(s), got 1"),
    (TokenSum("s"), [Current((8, 16), 4)], "token_sum 's': its input must be spikes"),
    (TokenSum("s"), [Spikes((8,))], "token_sum 's': its input must be tokens"),
    (SpikeMatmul("m", heads=3), [Spikes((8, 16))] * 2, "spike_matmul 'm': 8 features do not "
                                                       "split into heads=3"),
    (SpikeMatmul("m"), [Spikes((8, 16)), Spikes((8, 15))], "spike_matmul 'm': K spikes[8, 16] "
                                                           "and V spikes[8, 15]"),
    (CurrentMatmul("o"), [Spikes((8, 16)), Current((2, 4, 3), 6)],
     "current_matmul 'o': its second input must be a current of per-head square matrices"),
    (CurrentMatmul("o"), [Spikes((6, 16)), Current((2, 4, 4), 6)],
     "current_matmul 'o': Q has 6 features, but 2 head(s) of 4 x 4 need 8"),
    (CurrentMatmul("o"), [Spikes((8, 16)), Current((2, 4, 4), 48)],
     "current_matmul 'o': sums need 51 bits"),
])
def test_bad_inputs_are_refused_naming_the_op(op, inputs, message):
    with pytest.raises(ModelError, match="^" + re.escape(message)):
        op.infer(inputs, 4)


def test_heads_must_be_a_positive_integer():
    with pytest.raises(ModelError, match=r"^spike_matmul 'm': heads = 0 must be"):
        SpikeMatmul("m", heads=0)
    with pytest.raises(ModelError, match=r"^spike_matmul 'm': heads must be an integer"):
        SpikeMatmul("m", heads=None)


def attention_model(heads=2, channels=4, grid=(2, 3), T=5):
    """input -> Q, K, V (1x1 convolutions + lif) -> every transformer op."""
    model = Model("attention", T)
    model.add(Input("x", (channels, *grid)))
    rng = np.random.default_rng(3)
    for name in "qkv":
        weight = rng.integers(-3, 4, size=(channels, channels, 1, 1))
        model.add(Conv2d(f"{name}_conv", weight, weight_bits=3, acc_bits=8), "x")
        model.add(LIF(name, np.full(channels * grid[0] * grid[1], 1), v_bits=8), f"{name}_conv")
    model.add(SpikeAnd("kv"), ["k", "v"])
    model.add(TokenSum("column"), "kv")
    model.add(LIF("mask", np.ones(channels, dtype=int), v_bits=8, reset="zero"), "column")
    model.add(SpikeAnd("masked"), ["q", "mask"])
    model.add(SpikeMatmul("ktv", heads=heads), ["k", "v"])
    model.add(CurrentMatmul("qktv"), ["q", "ktv"])
    return model


def test_reference_computes_the_documented_sums():
    model = attention_model()
    heads, C, P, T = 2, 4, 6, 5
    d = C // heads
    rng = np.random.default_rng(0)
    spikes = rng.integers(0, 2, size=(7, T, C, 2, 3))
    trace = reference.run(model, spikes)
    q, k, v = (trace.spikes[n].reshape(7, T, C, P) for n in "qkv")
    assert 0 < q.mean() < 1 and 0 < k.mean() < 1       # neither all-silent nor all-spiking
    kv = trace.spikes["kv"].reshape(7, T, C, P)
    column = trace.currents["column"]
    mask = trace.spikes["mask"]
    masked = trace.spikes["masked"].reshape(7, T, C, P)
    ktv = trace.currents["ktv"].reshape(7, T, heads, d, d)
    qktv = trace.currents["qktv"].reshape(7, T, C, P)
    for s, t in itertools.product(range(7), range(T)):
        for c, p in itertools.product(range(C), range(P)):
            assert kv[s, t, c, p] == (k[s, t, c, p] and v[s, t, c, p])
            assert masked[s, t, c, p] == (q[s, t, c, p] and mask[s, t, c])
        for c in range(C):
            assert column[s, t, c] == sum(kv[s, t, c, p] for p in range(P))
            # the mask lif (threshold 1, reset to zero, no leak) spikes iff the count >= 1
            assert mask[s, t, c] == (column[s, t, c] >= 1)
        for h, i, j in itertools.product(range(heads), range(d), range(d)):
            assert ktv[s, t, h, i, j] == sum(k[s, t, h * d + i, p] * v[s, t, h * d + j, p]
                                             for p in range(P))
        for h, j, p in itertools.product(range(heads), range(d), range(P)):
            assert qktv[s, t, h * d + j, p] == sum(q[s, t, h * d + i, p] * ktv[s, t, h, i, j]
                                                   for i in range(d))
        # Q (K^T V) is (Q K^T) V, the P x P attention matrix never formed
        for h in range(heads):
            features = slice(h * d, h * d + d)
            scores = q[s, t, features].T @ k[s, t, features]        # (P, P)
            assert np.array_equal(scores @ v[s, t, features].T, qktv[s, t, features].T)


def test_all_silent_inputs_give_no_spikes_and_zero_products():
    model = attention_model(heads=1)
    silent = reference.run(model, np.zeros((1, 5, 4, 2, 3), dtype=np.uint8))
    assert not silent.currents["ktv"].any() and not silent.spikes["masked"].any()
    assert not silent.currents["qktv"].any() and not silent.currents["column"].any()


def test_products_at_their_largest():
    """Every Q, K, V spiking: counts reach P, products d * P, within the declared widths."""
    model = Model("full", 2)
    model.add(Input("x", (4, 6)))
    # the graph has one edge per pair of ops: the second operand is the same spikes relabelled
    model.add(Flatten("same", 1, 1), "x")
    model.add(SpikeMatmul("ktv", heads=1), ["x", "same"])
    model.add(CurrentMatmul("qktv"), ["x", "ktv"])
    model.add(TokenSum("column"), "x")
    trace = reference.run(model, np.ones((1, 2, 4, 6), dtype=np.uint8))
    types = model.infer()
    assert np.all(trace.currents["ktv"] == 6) and np.all(trace.currents["qktv"] == 4 * 6)
    assert np.all(trace.currents["column"] == 6)
    for name in ("ktv", "qktv", "column"):
        assert trace.currents[name].max() < 1 << (types[name].bits - 1)


def test_native_format_round_trips_every_op():
    model = attention_model()
    again = native.loads(native.dumps(model))
    assert again == model
    assert again["ktv"].heads == 2
    spikes = np.random.default_rng(1).integers(0, 2, size=(3, 5, 4, 2, 3))
    ours, theirs = reference.run(model, spikes), reference.run(again, spikes)
    for name in ("masked", "mask"):
        assert np.array_equal(ours.spikes[name], theirs.spikes[name])
    assert np.array_equal(ours.currents["qktv"], theirs.currents["qktv"])


# --- float layers and the quantizer ------------------------------------------------------

def _float_attention(product_source="ktv", sum_source="k"):
    """input -> K, V (1x1 convolutions + IF neurons) -> token_sum / K^T V products."""
    from hwgen.compiler.ir.floating import (FloatConv, FloatCurrentMatmul, FloatInput,
                                            FloatNetwork, FloatNeuron, FloatSpikeMatmul,
                                            FloatTokenSum)
    network = FloatNetwork("attention", 3)
    network.add(FloatInput(name="x", inputs=[], shape=(4, 2, 2)))
    rng = np.random.default_rng(0)
    for name in "kv":
        network.add(FloatConv(name=f"{name}_conv", inputs=["x"], shape=(4, 2, 2),
                              weight=rng.normal(size=(4, 4, 1, 1)), stride=(1, 1),
                              padding=(0, 0), dilation=(1, 1)))
        network.add(FloatNeuron(name=name, inputs=[f"{name}_conv"], shape=(4, 2, 2),
                                beta=np.ones(16), threshold=np.full(16, 0.5), fire="ge",
                                reset="subtract", order="same_step"))
    network.add(FloatSpikeMatmul(name="ktv", inputs=["k", "v"], shape=(2, 2, 2), heads=2))
    network.add(FloatCurrentMatmul(name="qktv", inputs=["k", product_source], shape=(4, 2, 2)))
    network.add(FloatNeuron(name="attn", inputs=["qktv"], shape=(4, 2, 2), beta=np.ones(16),
                            threshold=np.full(16, 1.0), fire="ge", reset="zero",
                            order="same_step"))
    network.add(FloatTokenSum(name="column", inputs=[sum_source], shape=(4,)))
    network.add(FloatNeuron(name="mask", inputs=["column"], shape=(4,), beta=np.ones(4),
                            threshold=np.full(4, 2.0), fire="ge", reset="zero",
                            order="same_step"))
    return network


def test_quantized_attention_counts_are_exact_and_unscaled():
    from hwgen.compiler.ir import float_reference
    from hwgen.compiler.passes.quantize import quantize
    network = _float_attention()
    model = quantize(network)
    layers = {entry["layer"]: entry for entry in model.metadata["quantization"]["layers"]}
    assert layers["attn"]["scale"] == layers["mask"]["scale"] == 1.0
    assert layers["k"]["scale"] != 1.0                      # float weights were scaled
    spikes = np.random.default_rng(2).integers(0, 2, size=(60, 3, 4, 2, 2)).astype(np.uint8)
    ours = reference.run(model, spikes)
    theirs = float_reference.run(network, spikes)
    # wherever K and V agree, the products and the neurons reading them agree too
    same = np.all(ours.spikes["k"] == theirs.spikes["k"], axis=(1, 2)) & \
        np.all(ours.spikes["v"] == theirs.spikes["v"], axis=(1, 2))
    assert same.sum() >= 10
    for name in ("attn", "mask"):
        assert np.array_equal(ours.spikes[name][same], theirs.spikes[name][same]), name
        assert 0 < ours.spikes[name][same].mean() < 1, name


@pytest.mark.parametrize("product_source, sum_source, message", [
    ("k", "k", "layer 'qktv': multiplies Q by 'k'; hwgen quantizes Q (K^T V) with K^T V a "
               "spike_matmul"),
    ("ktv", "k_conv", "layer 'column': reads 'k_conv' (current); it needs spikes"),
])
def test_the_quantizer_refuses_what_it_cannot_keep_exact(product_source, sum_source, message):
    from hwgen.compiler.passes.quantize import quantize
    from hwgen.errors import UnsupportedError
    with pytest.raises(UnsupportedError, match="^" + re.escape(message)):
        quantize(_float_attention(product_source, sum_source))


@pytest.mark.parametrize("heads, d, grid", [(1, 1, (1,)), (3, 2, (5,)), (2, 3, (1, 1)),
                                            (1, 4, (3, 2)), (4, 1, (2, 2))])
def test_every_op_matches_its_formula_at_the_corners(heads, d, grid):
    """One token, one feature per head, 1-D and 2-D token grids: the reference against
    loops over the formulas of docs/semantics.md 4d, on random, silent and full spikes."""
    C, P, T = heads * d, int(np.prod(grid)), 3
    model = Model("corners", T)
    model.add(Input("q", (C, *grid)))
    # K and V are the input relabelled (the graph holds one edge per pair of ops)
    model.add(Flatten("k", 1, 1), "q")
    model.add(Flatten("v", 0, 0), "q")
    model.add(SpikeAnd("kv"), ["k", "v"])
    model.add(TokenSum("column"), "kv")
    model.add(SpikeMatmul("ktv", heads=heads), ["k", "v"])
    model.add(CurrentMatmul("qktv"), ["q", "ktv"])
    rng = np.random.default_rng(heads * 100 + d)
    for given in (rng.integers(0, 2, (4, T, C, *grid)), np.zeros((1, T, C, *grid), int),
                  np.ones((1, T, C, *grid), int)):
        trace = reference.run(model, given)
        x = given.reshape(len(given), T, C, P)
        column = trace.currents["column"]
        ktv = trace.currents["ktv"].reshape(len(given), T, heads, d, d)
        qktv = trace.currents["qktv"].reshape(len(given), T, C, P)
        for s, t in itertools.product(range(len(given)), range(T)):
            for c in range(C):
                assert column[s, t, c] == x[s, t, c].sum()
            for h, i, j in itertools.product(range(heads), range(d), range(d)):
                assert ktv[s, t, h, i, j] == sum(x[s, t, h * d + i, p] * x[s, t, h * d + j, p]
                                                 for p in range(P))
            for h, j, p in itertools.product(range(heads), range(d), range(P)):
                assert qktv[s, t, h * d + j, p] == sum(
                    x[s, t, h * d + i, p] * ktv[s, t, h, i, j] for i in range(d))
        types = model.infer()
        for name in ("column", "ktv", "qktv"):
            bound = 1 << (types[name].bits - 1)
            assert -bound <= trace.currents[name].min() and trace.currents[name].max() < bound


def test_an_op_reading_one_producer_twice_is_refused():
    model = Model("twice", 2)
    model.add(Input("x", (4, 6)))
    with pytest.raises(ModelError, match=r"^spike_matmul 'm': takes 'x' more than once; an op "
                                         r"reads each producer once"):
        model.add(SpikeMatmul("m"), ["x", "x"])
