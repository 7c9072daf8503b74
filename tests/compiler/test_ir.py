"""The IR: building models, type inference, and every validation error."""

import re

import numpy as np
import pytest

from hwgen.errors import ModelError
from hwgen.compiler.ir import (LIF, Current, Dense, Input, Leak, Model, Prediction, Readout, Spikes)


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
    with pytest.raises(ModelError, match="cycle through .*recurrent connections cannot run "
                                         "temporal-parallel"):
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
