"""The IR's convolution, pooling, flatten and leaky-integrator ops: checks, types, round trips."""

import re

import numpy as np
import pytest

from hwgen.errors import ModelError
from hwgen.compiler.frontends import native
from hwgen.compiler.ir import (LI, LIF, Conv1d, Conv2d, Current, Dense, Flatten, Input, Leak, Membrane,
                         Model, Prediction, Readout, Spikes, SumPool2d)


def conv_model():
    model = Model("conv", 3, metadata={"source": "test"})
    model.add(Input("x", (2, 6, 6)))
    model.add(Conv2d("c1", np.arange(-8, 10).reshape(3, 2, 1, 3) % 5 - 2, np.array([1, 0, -1]),
                     stride=(1, 2), padding=(0, 1), dilation=1, groups=1, weight_bits=4,
                     acc_bits=6), "x")
    model.add(LIF("l1", np.full(3 * 6 * 3, 2), leak=Leak.by_shift(1), v_bits=8), "c1")
    model.add(SumPool2d("p", (2, 1), (2, 1), (0, 0)), "l1")
    model.add(Flatten("f", 0, -1), "l1")
    model.add(Dense("fc", np.ones((2, 54), dtype=int), weight_bits=2, acc_bits=8), "f")
    model.add(LI("out", leak=Leak.by_multiply(3, 2), v_bits=10), "fc")
    model.add(Readout("r", "final_membrane"), "out")
    return model


def test_types_of_spatial_ops():
    model = conv_model()
    types = model.infer()
    assert types["c1"] == Current((3, 6, 3), 6)
    assert types["l1"] == Spikes((3, 6, 3))
    assert types["p"] == Current((3, 3, 3), 3)          # 2 spikes summed: 2 bits + sign
    assert types["f"] == Spikes((54,))
    assert types["out"] == Membrane((2,), 10)
    assert types["r"] == Prediction(2)


def test_spatial_ops_round_trip_through_the_native_format():
    model = conv_model()
    data = native.dumps(model)
    assert native.loads(data) == model
    assert native.dumps(native.loads(data)) == data


def test_conv1d_and_grouped_shapes():
    op = Conv1d("c", np.ones((4, 1, 3), dtype=int), groups=2, stride=2, padding=1, dilation=2,
                weight_bits=2, acc_bits=4)
    assert op.in_channels == 2 and op.infer([Spikes((2, 9))], 4) == Current((4, 4), 4)
    with pytest.raises(ModelError, match="weight expects 2 input channels, but its input has 3"):
        op.infer([Spikes((3, 9))], 4)


def test_conv_accumulator_is_checked_against_its_input():
    op = Conv2d("c", np.full((1, 1, 2, 2), 3), weight_bits=3, acc_bits=5)
    assert op.infer([Spikes((1, 4, 4))], 2) == Current((1, 3, 3), 5)      # bound 12
    with pytest.raises(ModelError, match=re.escape("sums can reach 48 in magnitude, which "
                                                   "overflows acc_bits=5; it needs 7 bits")):
        op.infer([Current((1, 4, 4), 3)], 2)                              # inputs up to 4


def test_sum_pool_widths_grow_with_the_window():
    op = SumPool2d("p", 3)
    assert op.stride == (3, 3)
    assert op.infer([Spikes((2, 6, 6))], 1) == Current((2, 2, 2), 5)      # up to 9: 4 bits + 1
    assert op.infer([Current((2, 6, 6), 6)], 1) == Current((2, 2, 2), 10)


@pytest.mark.parametrize("build, message", [
    (lambda: Conv2d("c", np.ones((2, 3)), weight_bits=4, acc_bits=8),
     "weight must be 4-D (out_channels, in_channels/groups, kernel...), got shape (2, 3)"),
    (lambda: Conv2d("c", np.ones((3, 1, 1, 1)), groups=2, weight_bits=4, acc_bits=8),
     "3 output channels are not divisible by groups=2"),
    (lambda: Conv2d("c", np.ones((2, 1, 1, 1)), stride=0, weight_bits=4, acc_bits=8),
     "stride = 0 must be at least 1"),
    (lambda: Conv2d("c", np.ones((2, 1, 1, 1)), padding=(1, 2, 3), weight_bits=4, acc_bits=8),
     "padding must be an integer or a list of 2"),
    (lambda: Conv1d("c", np.full((2, 1, 1), 9), weight_bits=4, acc_bits=8),
     "weight value 9 does not fit in 4 signed bits"),
    (lambda: Conv1d("c", np.ones((2, 1, 1)), np.ones(3), weight_bits=4, acc_bits=8),
     "bias has shape (3,), expected (2,)"),
    (lambda: SumPool2d("p", (0, 2)), "kernel = 0 must be at least 1"),
    (lambda: LI("o", leak=Leak.by_shift(0), v_bits=8), "leak shift 0 must be between 1"),
    (lambda: Readout("r", "max"), "mode 'max' is not one of spike_count, final_membrane"),
])
def test_invalid_spatial_ops_are_refused(build, message):
    with pytest.raises(ModelError, match=re.escape(message)):
        build()


def test_type_errors_of_spatial_ops():
    model = Model("m", 2)
    model.add(Input("x", (1, 3, 3)))
    model.add(Conv2d("c", np.ones((1, 1, 4, 4), dtype=int), weight_bits=2, acc_bits=6), "x")
    with pytest.raises(ModelError, match=r"kernel \[4, 4\] does not fit the input "
                                         r"spikes\[1, 3, 3\]"):
        model.validate()
    with pytest.raises(ModelError, match=r"dimensions 1..3 do not fit an input of shape "
                                         r"\(1, 3, 3\)"):
        Flatten("f", 1, 3).infer([Spikes((1, 3, 3))], 2)
    with pytest.raises(ModelError, match=r"readout 'r': expects membrane input, got spikes\[3\]"):
        Readout("r", "final_membrane").infer([Spikes((3,))], 2)
    with pytest.raises(ModelError, match=r"li 'o': expects current input"):
        LI("o", v_bits=4).infer([Spikes((3,))], 2)


def test_lif_on_a_multidimensional_current_keeps_its_shape():
    op = LIF("l", np.ones(12, dtype=int), v_bits=4)
    assert op.infer([Current((3, 2, 2), 5)], 2) == Spikes((3, 2, 2))
    with pytest.raises(ModelError, match=r"has 12 neurons but its input is current\[3, 2, 1\]"):
        op.infer([Current((3, 2, 1), 5)], 2)
