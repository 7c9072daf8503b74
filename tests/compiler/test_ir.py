"""The IR: building models, type inference, and every validation error."""

import re

import numpy as np
import pytest

from hwgen.errors import ModelError
from hwgen.compiler.ir import (LI, LIF, Current, Dense, Input, Leak, Model, Prediction, Readout,
                               Spikes, reference)


def chain(weight=None, *, acc_bits=8, threshold=(5, 5), size_in=3, v_bits=8):
    model = Model("m", 4)
    model.add(Input("x", (size_in,)))
    weight = np.ones((2, size_in), dtype=int) if weight is None else weight
    model.add(Dense("fc", weight, None, weight_bits=4, acc_bits=acc_bits), "x")
    model.add(LIF("lif", np.array(threshold), v_bits=v_bits), "fc")
    model.add(Readout("out"), "lif")
    return model


def test_types_are_inferred_along_edges():
    types = chain().infer()
    assert types == {"x": Spikes((3,)), "fc": Current((2,), 8), "lif": Spikes((2,)),
                     "out": Prediction(2)}


def test_ops_come_in_insertion_order_and_outputs_are_found():
    model = chain()
    assert [op.name for op in model.ops] == ["x", "fc", "lif", "out"]
    assert [op.name for op in model.outputs] == ["out"]
    assert model.inputs_of("lif") == ["fc"]
    assert model.consumers_of("fc") == ["lif"]


def test_float_tensors_holding_integers_are_accepted():
    op = Dense("fc", np.array([[1.0, -2.0]]), None, weight_bits=4, acc_bits=8)
    assert op.weight.dtype == np.int64 and op.weight.tolist() == [[1, -2]]


@pytest.mark.parametrize("build, message", [
    (lambda: Model("", 4), "model name must be a non-empty string"),
    (lambda: Model("m", 0), "timesteps must be an integer between 1 and 1024, got 0"),
    (lambda: Model("m", 1025), "timesteps must be an integer between 1 and 1024, got 1025"),
    (lambda: Input("x", (0,)), "shape = 0 must be at least 1"),
    (lambda: Input("x", ()), "shape must have at least one dimension"),
    (lambda: Input("x", (3,), "rate"), "encoding 'rate' is not one of spikes, if"),
    (lambda: Input("x", (3,), "if"), "encoder threshold must be an integer, got None"),
    (lambda: Input("x", (3,), "spikes", 4), "a threshold only applies to the 'if' encoding"),
    (lambda: Dense("fc", np.ones(3), weight_bits=4, acc_bits=8),
     "weight must be a 2-D (outputs, inputs) matrix, got shape (3,)"),
    (lambda: Dense("fc", np.ones((2, 3)) * 0.5, weight_bits=4, acc_bits=8),
     "weight must hold integers (dtype float64); quantize the model first"),
    (lambda: Dense("fc", np.full((2, 3), 8), weight_bits=4, acc_bits=8),
     "weight value 8 does not fit in 4 signed bits [-8, 7]"),
    (lambda: Dense("fc", np.full((2, 3), -9), weight_bits=4, acc_bits=8),
     "weight value -9 does not fit in 4 signed bits [-8, 7]"),
    (lambda: Dense("fc", np.ones((2, 3)), np.ones(3), weight_bits=4, acc_bits=8),
     "bias has shape (3,), expected (2,)"),
    (lambda: Dense("fc", np.full((2, 40), 7), weight_bits=4, acc_bits=8),
     "sums can reach 280 in magnitude, which overflows acc_bits=8; it needs 10 bits"),
    (lambda: Dense("fc", np.ones((2, 3)), weight_bits=1, acc_bits=8),
     "weight_bits = 1 must be between 2 and 16"),
    (lambda: Dense("fc", np.ones((2, 3)), weight_bits=4, acc_bits=64),
     "acc_bits = 64 must be between 2 and 48"),
    (lambda: LIF("l", np.array([1]), v_bits=1), "v_bits = 1 must be between 2 and 32"),
    (lambda: LIF("l", np.array([[1]]), v_bits=8),
     "threshold must be a 1-D per-neuron array, got shape (1, 1)"),
    (lambda: LIF("l", np.array([-1]), v_bits=8), "threshold -1 must be between 0 and 127"),
    (lambda: LIF("l", np.array([128]), v_bits=8), "threshold 128 must be between 0 and 127"),
    (lambda: LIF("l", np.array([1]), fire="geq", v_bits=8), "fire 'geq' is not one of ge, gt"),
    (lambda: LIF("l", np.array([1]), reset="hard", v_bits=8),
     "reset 'hard' is not one of subtract, zero, none"),
    (lambda: LIF("l", np.array([1]), order="later", v_bits=8),
     "order 'later' is not one of same_step, delayed"),
    (lambda: LIF("l", np.array([1]), leak=Leak.by_shift(0), v_bits=8),
     "leak shift 0 must be between 1 and the membrane width 8"),
    (lambda: LIF("l", np.array([1]), leak=Leak.by_shift(9), v_bits=8),
     "leak shift 9 must be between 1 and the membrane width 8"),
    (lambda: LIF("l", np.array([1]), leak=Leak.by_multiply(9, 3), v_bits=8),
     "leak multiplier 9 must be between 0 and 2**frac_bits = 8"),
    (lambda: LIF("l", np.array([1]), leak=Leak.by_multiply(1, 0), v_bits=8),
     "leak frac_bits 0 must be between 1 and 16"),
    (lambda: LIF("l", np.array([1]), leak=Leak("exp"), v_bits=8),
     "leak kind 'exp' is not one of none, shift, multiply"),
    (lambda: LIF("l", np.array([1]), leak=0.9, v_bits=8), "leak must be a Leak"),
    (lambda: Readout("r", "rate"), "mode 'rate' is not one of spike_count"),
])
def test_invalid_ops_are_refused_with_a_message_naming_them(build, message):
    with pytest.raises(ModelError, match=re.escape(message)):
        build()


def test_messages_name_the_op():
    with pytest.raises(ModelError, match=r"^dense 'fc1': weight value 8"):
        Dense("fc1", np.full((2, 3), 8), weight_bits=4, acc_bits=8)


def test_duplicate_and_unknown_names():
    model = chain()
    with pytest.raises(ModelError, match="op name 'fc' is used twice"):
        model.add(Readout("fc"), "lif")
    with pytest.raises(ModelError, match="input 'nope' is not an op of this model"):
        model.add(Readout("r2"), "nope")


def test_shape_mismatches_are_located():
    model = Model("m", 4)
    model.add(Input("x", (4,)))
    model.add(Dense("fc", np.ones((2, 3)), weight_bits=4, acc_bits=8), "x")
    with pytest.raises(ModelError, match="dense 'fc': weight expects 3 inputs, but its input "
                                         "has 4"):
        model.validate()
    model = chain(threshold=(1, 1, 1))
    with pytest.raises(ModelError, match=r"lif 'lif': has 3 neurons but its input is "
                                         r"current\[2\]:i8"):
        model.validate()


def test_kinds_of_values_are_checked():
    model = Model("m", 4)
    model.add(Input("x", (2,)))
    model.add(LIF("lif", np.array([1, 1]), v_bits=8), "x")
    with pytest.raises(ModelError, match=r"lif 'lif': expects current input, got spikes\[2\]"):
        model.validate()
    model = Model("m", 4)
    model.add(Input("x", (2, 2)))
    model.add(Dense("fc", np.ones((2, 4)), weight_bits=4, acc_bits=8), "x")
    with pytest.raises(ModelError, match=r"input must be 1-D, got spikes\[2, 2\]; flatten"):
        model.validate()


def test_a_model_needs_exactly_one_input():
    model = Model("m", 4)
    with pytest.raises(ModelError, match="needs exactly one input op, has 0"):
        model.validate()
    model.add(Input("a", (1,)))
    model.add(Input("b", (1,)))
    with pytest.raises(ModelError, match="needs exactly one input op, has 2"):
        model.validate()


def test_cycles_are_refused():
    model = chain()
    model._graph.add_edge("lif", "fc", port=1)
    with pytest.raises(ModelError, match="cycle through .*a recurrent connection is a dense op "
                                         "with recurrent weights, not an edge"):
        model.ops


def test_accumulator_bound_counts_bias():
    op = Dense("fc", np.array([[3, -4], [1, 1]]), np.array([-2, 0]), weight_bits=4,
               acc_bits=8)
    assert op.accumulator_bound() == 9


def test_leak_forms():
    v = np.array([-9, -1, 0, 1, 9])
    assert Leak.none().apply(v).tolist() == [-9, -1, 0, 1, 9]
    assert Leak.by_shift(1).apply(v).tolist() == [-4, 0, 0, 1, 5]
    assert Leak.by_multiply(1, 1).apply(v).tolist() == [-5, -1, 0, 0, 4]
    assert Leak.by_multiply(7, 3).beta == 0.875 and Leak.by_shift(3).beta == 0.875


def test_leak_json_round_trip_and_errors():
    for leak in (Leak.none(), Leak.by_shift(3), Leak.by_multiply(5, 4)):
        assert Leak.from_json(leak.to_json(), "here") == leak
    with pytest.raises(ModelError, match="here: leak of kind 'shift' takes exactly "
                                         r"\['shift'\], got \['multiplier'\]"):
        Leak.from_json({"kind": "shift", "multiplier": 2}, "here")
    with pytest.raises(ModelError, match="here: leak parameters must be integers"):
        Leak.from_json({"kind": "shift", "shift": 1.5}, "here")
    with pytest.raises(ModelError, match="here: leak must be an object with a 'kind'"):
        Leak.from_json(3, "here")


def test_models_compare_by_value():
    assert chain() == chain()
    assert chain() != chain(threshold=(5, 6))


def test_per_neuron_leak_applies_each_neurons_multiplier_with_floor():
    leak = Leak.per_neuron([8, 4, 1, 0, 7], 3)
    v = np.array([[-9, -9, -9, -9, -9], [9, 9, 9, 9, 9]])
    # floor((a * v) / 8): -9, -4.5 -> -5, -1.125 -> -2, 0, -7.875 -> -8; and for +9
    assert leak.apply(v).tolist() == [[-9, -5, -2, 0, -8], [9, 4, 1, 0, 7]]
    assert leak.beta == 1.0 and leak.betas.tolist() == [1.0, 0.5, 0.125, 0.0, 0.875]
    assert "(a_n * v) >> 3, a_n in 0..8 per neuron" in leak.describe()
    op = LIF("l", np.array([3, 3, 3, 3, 3]), leak=leak, v_bits=8)
    spikes, v = reference.lif(op, np.full((1, 2, 5), 2, dtype=np.int64))
    # step 0: h = 2 everywhere; step 1: L(2) = 2, 1, 0, 0, 1 (+2), theta 3, subtract
    assert v.tolist() == [[1, 0, 2, 2, 0]] and not spikes[:, 0].any()
    assert spikes[0, 1].tolist() == [1, 1, 0, 0, 1]
    assert Leak.per_neuron([8, 4, 1], 3) != Leak.per_neuron([8, 4, 2], 3)


@pytest.mark.parametrize("build, message", [
    (lambda: LIF("l", np.array([1, 1]), leak=Leak.per_neuron([1, 9], 3), v_bits=8),
     "lif 'l': leak multipliers[1] = 9 must be between 0 and 2**frac_bits = 8"),
    (lambda: LIF("l", np.array([1, 1]), leak=Leak.per_neuron([1, -1], 3), v_bits=8),
     "lif 'l': leak multipliers[1] = -1 must be between 0"),
    (lambda: LIF("l", np.array([1, 1]), leak=Leak.per_neuron([1, 1], 17), v_bits=8),
     "lif 'l': leak frac_bits 17 must be between 1 and 16"),
    (lambda: LIF("l", np.array([1, 1]), leak=Leak.per_neuron([1, 1], 0), v_bits=8),
     "lif 'l': leak frac_bits 0 must be between 1 and 16"),
    (lambda: LIF("l", np.array([1, 1, 1]), leak=Leak.per_neuron([1, 1], 3), v_bits=8),
     "lif 'l': leak has 2 multipliers for 3 neurons (one per neuron)"),
])
def test_per_neuron_leak_errors_name_the_op(build, message):
    with pytest.raises(ModelError, match="^" + re.escape(message)):
        build()


def test_per_neuron_leak_of_an_integrator_must_cover_its_input():
    model = Model("m", 4)
    model.add(Input("x", (3,)))
    model.add(Dense("fc", np.ones((2, 3), dtype=int), None, weight_bits=4, acc_bits=8), "x")
    model.add(LI("li", leak=Leak.per_neuron([1, 2, 3], 2), v_bits=8), "fc")
    with pytest.raises(ModelError, match=re.escape(
            "li 'li': leak has 3 multipliers for 2 neurons (one per neuron)")):
        model.validate()


def test_per_neuron_leak_json_round_trip_and_errors():
    leak = Leak.per_neuron([0, 3, 4], 2)
    assert leak.to_json() == {"kind": "per_neuron", "multipliers": [0, 3, 4], "frac_bits": 2}
    assert Leak.from_json(leak.to_json(), "here") == leak
    for data, message in [
            ({"kind": "per_neuron", "frac_bits": 2}, "leak of kind 'per_neuron' takes exactly "
                                                     "['frac_bits', 'multipliers']"),
            ({"kind": "per_neuron", "multipliers": 3, "frac_bits": 2},
             "leak multipliers must be a list of integers"),
            ({"kind": "per_neuron", "multipliers": [1, 2.5], "frac_bits": 2},
             "leak multipliers must be a list of integers"),
            ({"kind": "per_neuron", "multipliers": [1, True], "frac_bits": 2},
             "leak multipliers must be a list of integers"),
            ({"kind": "per_neuron", "multipliers": [1], "frac_bits": "2"},
             "leak parameters must be integers")]:
        with pytest.raises(ModelError, match="^here: " + re.escape(message)):
            Leak.from_json(data, "here")
