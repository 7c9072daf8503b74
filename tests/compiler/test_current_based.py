"""Current-based neurons in the IR (docs/semantics.md section 4b): errors naming the op, the
native format, the integer reference against a scalar model written from the document, and
the reachability warning."""

import itertools
import re

import numpy as np
import pytest

from hwgen.compiler.frontends import native
from hwgen.compiler.ir import LI, LIF, Dense, Input, Leak, Model, Readout, reference
from hwgen.compiler.passes.reachability import silent_layers
from hwgen.errors import ModelError


@pytest.mark.parametrize("build, message", [
    (lambda: LIF("cell", np.array([1]), v_bits=8, synapse=Leak.none()),
     "lif 'cell': a current-based neuron (synapse given) needs i_bits"),
    (lambda: LIF("cell", np.array([1]), v_bits=8, i_bits=8),
     "lif 'cell': i_bits 8 is given without a synapse leak"),
    (lambda: LIF("cell", np.array([1]), v_bits=8, synapse=0.5, i_bits=8),
     "lif 'cell': synapse must be a Leak"),
    (lambda: LIF("cell", np.array([1]), v_bits=8, synapse=Leak.by_shift(7), i_bits=6),
     "lif 'cell': synapse: leak shift 7 must be between 1 and the synaptic current width 6"),
    (lambda: LIF("cell", np.array([1]), v_bits=8, synapse=Leak.none(), i_bits=1),
     "lif 'cell': i_bits = 1 must be between 2 and 32"),
    (lambda: LIF("cell", np.array([1]), v_bits=8, synapse=Leak.none(), i_bits=8,
                 synapse_rounding="round"),
     "lif 'cell': synapse_rounding 'round' is not one of separate, joint"),
    (lambda: LIF("cell", np.array([1]), v_bits=8, synapse_rounding="joint"),
     "lif 'cell': synapse_rounding 'joint' is given without a synapse leak"),
    (lambda: LI("out", v_bits=8, synapse=Leak.by_multiply(5, 2), i_bits=8),
     "li 'out': synapse: leak multiplier 5 must be between 0 and 2**frac_bits = 4"),
])
def test_malformed_current_based_ops_are_refused_naming_the_op(build, message):
    with pytest.raises(ModelError, match=re.escape(message)):
        build()


def cuba_model(T=6, order="delayed", reset="subtract", fire="gt", li=False):
    rng = np.random.default_rng(2)
    model = Model("cuba", T)
    model.add(Input("input", (5,), encoding="spikes"))
    model.add(Dense("fc", rng.integers(-3, 4, (4, 5)), np.array([1, 0, -1, 0]), weight_bits=3,
                    acc_bits=6), "input")
    if li:
        model.add(LI("out", leak=Leak.by_shift(2), v_bits=10, synapse=Leak.by_multiply(3, 2),
                     i_bits=7), "fc")
        model.add(Readout("readout", "final_membrane"), "out")
    else:
        model.add(LIF("lif", np.array([3, 0, 5, 2]), leak=Leak.by_multiply(7, 3), fire=fire,
                      reset=reset, order=order, v_bits=9, synapse=Leak.by_shift(1), i_bits=6),
                  "fc")
        model.add(Readout("readout"), "lif")
    return model.validate()


def test_native_format_round_trip(tmp_path):
    for li in (False, True):
        model = cuba_model(li=li)
        native.save(model, tmp_path / "m.hwgen")
        again = native.load(tmp_path / "m.hwgen")
        assert again == model
        op = again["out" if li else "lif"]
        assert op.synapse == (Leak.by_multiply(3, 2) if li else Leak.by_shift(1))
        assert op.i_bits == (7 if li else 6)
    # a voltage-based op writes no synapse attributes (its JSON is as before)
    assert "synapse" not in LIF("plain", np.array([1]), v_bits=8).attributes()


def scalar_neuron(I, theta, leak, synapse, B, Bi, fire, reset, order, rounding="separate"):
    """One neuron, step by step, straight from docs/semantics.md sections 4 and 4b (joint
    rounding: floor(beta*v + alpha*i[t-1]) + I[t] in exact fractions)."""
    from fractions import Fraction
    import math
    def sat(x, bits):
        return max(-(1 << (bits - 1)), min((1 << (bits - 1)) - 1, x))

    def L(x, form):
        kind, a, b = form
        if kind == "shift":
            return x - (x >> a)
        if kind == "multiply":
            return (a * x) >> b
        return x

    def fires(h):
        return h >= theta if fire == "ge" else h > theta

    def exact(x, form):
        kind, a, b = form
        if kind == "shift":
            return Fraction(x - (x >> a))
        if kind == "multiply":
            return Fraction(a * x, 1 << b)
        return Fraction(x)

    v = i = p = 0
    spikes = []
    for current in I:
        if rounding == "joint":
            total = math.floor(exact(v, leak) + exact(i, synapse)) + current
        i = sat(L(i, synapse) + current, Bi)
        if rounding == "separate":
            total = L(v, leak) + i
        if order == "delayed":
            if reset == "subtract":
                h = sat(total - p * theta, B)
            elif reset == "zero":
                h = 0 if p else sat(total, B)
            else:
                h = sat(total, B)
            s = fires(h)
            v, p = h, s
        else:
            h = sat(total, B)
            r = fires(v) if order == "snntorch_same_step" and reset == "subtract" else False
            s = fires(h - theta) if r else fires(h)
            v = h - theta if (s and reset == "subtract") else 0 if (s and reset == "zero") \
                else h
        spikes.append(int(s))
    return spikes, v


@pytest.mark.parametrize("rounding", ["separate", "joint"])
@pytest.mark.parametrize("fire, reset, order", list(itertools.product(
    ("ge", "gt"), ("subtract", "zero", "none"), ("same_step", "delayed", "snntorch_same_step"))))
def test_reference_matches_a_scalar_model(fire, reset, order, rounding):
    rng = np.random.default_rng(hash((fire, reset, order)) % 1000)
    forms = [(Leak.by_multiply(7, 3), ("multiply", 7, 3)), (Leak.by_shift(2), ("shift", 2, 0)),
             (Leak.none(), ("none", 0, 0)), (Leak.by_multiply(0, 2), ("multiply", 0, 2))]
    for (leak, leak_t), (synapse, synapse_t) in itertools.product(forms, forms):
        current = rng.integers(-40, 60, (1, 12, 5))
        thetas = np.array([0, 3, 17, 63, 127])
        op = LIF("l", thetas, leak=leak, fire=fire, reset=reset, order=order, v_bits=8,
                 synapse=synapse, i_bits=6, synapse_rounding=rounding)
        spikes, v = reference.lif(op, current)
        for n, theta in enumerate(thetas):
            want = scalar_neuron(current[0, :, n].tolist(), int(theta), leak_t, synapse_t, 8,
                                 6, fire, reset, order, rounding)
            assert (spikes[0, :, n].tolist(), int(v[0, n])) == want, (leak, synapse, theta)


def test_li_filters_its_input_too():
    model = cuba_model(li=True)
    x = (np.random.default_rng(0).random((3, 6, 5)) < 0.5).astype(np.uint8)
    trace = reference.run(model, x)
    current = trace.currents["fc"]
    i = np.zeros((3, 4), dtype=np.int64)
    v = np.zeros((3, 4), dtype=np.int64)
    for t in range(6):
        i = np.clip(((3 * i) >> 2) + current[:, t], -64, 63)
        v = np.clip(v - (v >> 2) + i, -512, 511)
        assert np.array_equal(trace.potentials["out"][:, t], v)


def test_reachability_counts_the_synaptic_current():
    """One input of weight 1, T = 4, no membrane leak: a voltage-based neuron reaches 4, a
    current-based one with no synaptic leak 1 + 2 + 3 + 4 = 10."""
    def model(threshold, synapse):
        m = Model("reach", 4)
        m.add(Input("input", (1,), encoding="spikes"))
        m.add(Dense("fc", np.array([[1]]), None, weight_bits=2, acc_bits=2), "input")
        m.add(LIF("lif", np.array([threshold]), v_bits=8, synapse=synapse,
                  i_bits=None if synapse is None else 6), "fc")
        return m.validate()

    assert silent_layers(model(5, None))
    assert not silent_layers(model(10, Leak.none()))
    (warning,) = silent_layers(model(11, Leak.none()))
    assert "its largest possible membrane is 10 against threshold 11" in warning


def test_inspect_describes_the_synapse():
    from hwgen.cli.inspect import describe
    op = LIF("l", np.array([3]), v_bits=8, synapse=Leak.by_multiply(3, 2), i_bits=6,
             synapse_rounding="joint")
    assert describe(op).startswith("synapse (3 * i) >> 2 (alpha 0.75), joint rounding, i i6; "
                                   "leak none (IF)")
    assert not describe(LIF("l", np.array([3]), v_bits=8)).startswith("synapse")
