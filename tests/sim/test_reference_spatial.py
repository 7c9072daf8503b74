"""The reference's convolution, pooling, flatten and leaky integrator, against PyTorch and by hand.

PyTorch's float64 convolution is exact on these small integers, so it is an independent
oracle for the integer reference's im2col arithmetic (stride, padding, dilation, groups).
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hwgen.errors import InputError
from hwgen.compiler.ir import LI, LIF, Conv1d, Conv2d, Dense, Flatten, Input, Leak, Model, Readout, \
    SumPool2d
from hwgen.compiler.ir import reference


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), dims=st.sampled_from([1, 2]), groups=st.sampled_from([1, 2]),
       stride=st.integers(1, 3), padding=st.integers(0, 2), dilation=st.integers(1, 2),
       kernel=st.integers(1, 3), current_input=st.booleans())
def test_convolution_matches_pytorch(seed, dims, groups, stride, padding, dilation, kernel,
                                     current_input):
    rng = np.random.default_rng(seed)
    size = 7
    in_channels, out_channels = 2 * groups, 2 * groups
    weight = rng.integers(-7, 8, size=(out_channels, in_channels // groups) + (kernel,) * dims)
    bias = rng.integers(-3, 4, size=out_channels)
    cls = Conv1d if dims == 1 else Conv2d
    op = cls("c", weight, bias, stride=stride, padding=padding, dilation=dilation,
             groups=groups, weight_bits=4, acc_bits=20)
    shape = (in_channels,) + (size,) * dims
    if current_input:
        values = rng.integers(-8, 8, size=(2, 3) + shape)
    else:
        values = (rng.random((2, 3) + shape) < 0.4).astype(np.int64)
    result = reference.conv(op, values.reshape(2, 3, -1), shape)
    function = torch.nn.functional.conv1d if dims == 1 else torch.nn.functional.conv2d
    expected = function(torch.tensor(values.reshape(6, *shape), dtype=torch.float64),
                        torch.tensor(weight, dtype=torch.float64),
                        torch.tensor(bias, dtype=torch.float64), stride=stride,
                        padding=padding, dilation=dilation, groups=groups)
    assert result.dtype == np.int64
    assert np.array_equal(result, expected.numpy().reshape(2, 3, -1).astype(np.int64))


def test_sum_pool_is_a_window_sum_with_zero_padding():
    x = np.arange(16).reshape(1, 1, 1, 4, 4)
    op = SumPool2d("p", 2, 2, 1)
    result = reference.pool(op, x.reshape(1, 1, -1), (1, 4, 4)).reshape(3, 3)
    assert result.tolist() == [[0, 1 + 2, 3], [4 + 8, 5 + 6 + 9 + 10, 7 + 11],
                               [12, 13 + 14, 15]]
    avg = torch.nn.functional.avg_pool2d(torch.tensor(x[0], dtype=torch.float64), 2, 2, 1)
    assert np.array_equal(result, (avg.numpy() * 4).reshape(3, 3))


def test_a_convolutional_network_runs_end_to_end():
    model = Model("cnn", 4)
    model.add(Input("x", (1, 4, 4), encoding="if", threshold=4))
    model.add(Conv2d("c", np.ones((2, 1, 2, 2), dtype=int), weight_bits=2, acc_bits=4), "x")
    model.add(LIF("l", np.full(2 * 3 * 3, 2), v_bits=6), "c")
    model.add(SumPool2d("p", (3, 3)), "l")
    model.add(LIF("l2", np.full(2, 4), v_bits=6), "p")
    model.add(Flatten("f"), "l2")
    model.add(Dense("fc", np.array([[1, -1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1]]).reshape(2, 6)[:, :2],
                    weight_bits=2, acc_bits=3), "f")
    model.add(LI("o", leak=Leak.none(), v_bits=8), "fc")
    model.add(Readout("r", "final_membrane"), "o")
    inputs = np.array([[[4, 4, 0, 0], [4, 4, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]])
    trace = reference.run(model, inputs.reshape(1, 1, 4, 4))
    assert trace.spikes["x"].shape == (1, 4, 16)
    # the conv sees 4 active pixels in its top-left window at every step
    assert trace.currents["c"][0, 0].reshape(2, 3, 3)[0].tolist() == [[4, 2, 0], [2, 1, 0],
                                                                       [0, 0, 0]]
    assert trace.spikes["l"].shape == (1, 4, 18)
    assert set(trace.potentials) == {"o"} and trace.potentials["o"].shape == (1, 4, 2)
    assert trace.predictions.tolist() == [int(np.argmax(trace.membranes["o"][0]))]
    assert "f" not in trace.spikes and "f" not in trace.currents


def test_leaky_integrator_saturates_and_leaks():
    op = LI("o", leak=Leak.by_multiply(1, 1), v_bits=5)      # floor(v / 2), range -16..15
    potentials, final = reference.li(op, np.array([[[10], [10], [20], [-40]]]))
    assert potentials[0, :, 0].tolist() == [10, 15, 15, -16]
    assert final.tolist() == [[-16]]


@pytest.mark.parametrize("inputs, message", [
    (np.zeros((1, 2, 3, 3), dtype=int), r"takes spike trains \(samples, 2, 1, 3, 3\); got "
                                        r"integers of shape \(1, 2, 3, 3\)"),
    (np.zeros((1, 3, 3), dtype=int), r"inputs must be 4-D \(samples, 1, 3, 3\) or 5-D"),
    (np.zeros((1, 2, 1, 3, 4), dtype=int), r"expects \(samples, 2, 1, 3, 3\)"),
])
def test_multidimensional_inputs_are_checked(inputs, message):
    model = Model("m", 2)
    model.add(Input("x", (1, 3, 3)))
    with pytest.raises(InputError, match=message):
        reference.encode(model, inputs)


@pytest.mark.parametrize("encoding", ["spikes", "if"])
def test_flat_inputs_of_a_1_by_n_input_at_one_step_read_as_the_encoding_takes_them(encoding):
    """With T = 1 and an input of (1, 3), (samples, 1, 3) is both flat spike trains and
    shaped integers: spike trains for a model of spike trains (which takes no integers),
    integers for one with the IF encoder (found by the soak)."""
    model = Model("m", 1)
    model.add(Input("x", (1, 3), encoding=encoding, threshold=4 if encoding == "if" else None))
    x = np.array([[[1, 0, 1]], [[0, 1, 1]]])
    spikes = reference.encode(model, x)
    if encoding == "spikes":
        assert spikes.tolist() == x.tolist()
    else:
        assert spikes.tolist() == reference.encode(model, x.reshape(2, 3)).tolist()
