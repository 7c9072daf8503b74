"""The IR's max pooling and add ops (docs/semantics.md 3a, 3b): checks, types, round trips,
and the integer reference against direct numpy / torch computations."""

import re

import numpy as np
import pytest

from hwgen.errors import ModelError
from hwgen.compiler.frontends import native
from hwgen.compiler.ir import (LIF, Add, Conv2d, Current, Dense, Flatten, Input, Leak, MaxPool2d,
                               Model, Readout, Spikes, reference)


def _direct_max_pool(x, kernel, stride, padding):
    """Loops over (N, C, H, W): the max over the window positions inside the input."""
    n, c, h, w = x.shape
    out_h = (h + 2 * padding[0] - kernel[0]) // stride[0] + 1
    out_w = (w + 2 * padding[1] - kernel[1]) // stride[1] + 1
    result = np.zeros((n, c, out_h, out_w), dtype=np.int64)
    for y in range(out_h):
        for x_ in range(out_w):
            rows = [r for r in range(y * stride[0] - padding[0],
                                     y * stride[0] - padding[0] + kernel[0]) if 0 <= r < h]
            cols = [q for q in range(x_ * stride[1] - padding[1],
                                     x_ * stride[1] - padding[1] + kernel[1]) if 0 <= q < w]
            result[:, :, y, x_] = x[:, :, rows][:, :, :, cols].max(axis=(2, 3))
    return result


def pooled_model(kernel=(2, 2), stride=None, padding=(0, 0)):
    model = Model("pooled", 5)
    model.add(Input("x", (2, 5, 6)))
    weight = (np.arange(3 * 2 * 3 * 3).reshape(3, 2, 3, 3) % 7) - 3
    model.add(Conv2d("c", weight, np.array([1, -2, 0]), padding=1, weight_bits=4, acc_bits=8),
              "x")
    model.add(MaxPool2d("m", kernel, stride, padding), "c")
    model.add(LIF("l", np.full(model["m"].infer([Current((3, 5, 6), 8)], 5).size, 3),
                  leak=Leak.by_multiply(3, 2), v_bits=8, order="delayed", fire="gt"), "m")
    return model


@pytest.mark.parametrize("kernel, stride, padding", [((2, 2), None, (0, 0)),
                                                     ((3, 2), (2, 1), (1, 1)),
                                                     ((3, 3), (1, 2), (1, 0))])
def test_max_pool_of_currents_matches_a_direct_computation(kernel, stride, padding):
    model = pooled_model(kernel, stride, padding)
    types = model.infer()
    assert types["m"] == Current(types["m"].shape, 8)          # a max keeps the width
    rng = np.random.default_rng(1)
    spikes = rng.integers(0, 2, (4, 5, 2, 5, 6))
    trace = reference.run(model, spikes)
    current = trace.currents["c"].reshape(4 * 5, 3, 5, 6)
    expected = _direct_max_pool(current, kernel, stride or kernel, padding)
    assert np.array_equal(trace.currents["m"], expected.reshape(4, 5, -1))
    # the neurons integrate exactly the pooled current
    spikes_out, _ = reference.lif(model["l"], expected.reshape(4, 5, -1))
    assert np.array_equal(trace.spikes["l"], spikes_out)


def test_max_pool_padding_takes_no_part_in_a_max_of_negative_currents():
    model = Model("negative", 1)
    model.add(Input("x", (1, 2, 2)))
    model.add(Conv2d("c", np.full((1, 1, 1, 1), -1), np.array([-2]), weight_bits=2,
                     acc_bits=3), "x")
    model.add(MaxPool2d("m", 3, 1, 1), "c")
    model.add(LIF("l", np.zeros(4, dtype=int), v_bits=4), "m")
    trace = reference.run(model, np.array([[[[[1, 0], [0, 0]]]]]))
    # every window holds the -2 of a silent input; zero padding would have made it 0
    assert trace.currents["m"].tolist() == [[[-2, -2, -2, -2]]]


def test_max_pool_agrees_with_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x = rng.integers(-100, 100, (3, 4, 7, 9))
    op = MaxPool2d("m", (3, 2), (2, 2), (1, 1))
    ours = reference.max_pool(x, op.kernel, op.stride, op.padding)
    theirs = torch.nn.functional.max_pool2d(torch.tensor(x, dtype=torch.float64), (3, 2),
                                            (2, 2), (1, 1)).numpy()
    assert np.array_equal(ours, theirs.astype(np.int64))


def test_max_pool_of_spikes_is_spikes():
    model = Model("or", 2)
    model.add(Input("x", (1, 2, 4)))
    model.add(MaxPool2d("m", 2), "x")
    model.add(Flatten("f"), "m")
    model.add(Dense("d", np.array([[1, 2]]), weight_bits=3, acc_bits=3), "f")
    model.add(LIF("l", np.array([0]), v_bits=4), "d")
    assert model.infer()["m"] == Spikes((1, 1, 2))
    spikes = np.array([[[[[0, 1, 0, 0], [0, 0, 0, 0]]], [[[0, 0, 1, 1], [0, 0, 0, 1]]]]])
    trace = reference.run(model, spikes)
    assert trace.spikes["m"].tolist() == [[[1, 0], [0, 1]]]
    assert trace.currents["d"].tolist() == [[[1], [2]]]


def residual_model():
    model = Model("residual", 6)
    model.add(Input("x", 4))
    model.add(Dense("a", np.array([[2, -1, 0, 1], [0, 3, -2, 1], [1, 1, 1, 1]]),
                    np.array([0, 1, -1]), weight_bits=3, acc_bits=5), "x")
    model.add(LIF("h", np.array([1, 2, 1]), v_bits=5), "a")
    model.add(Dense("skip", np.array([[1, 0, 0, -1], [0, -3, 0, 2], [-1, 0, 2, 0]]),
                    weight_bits=3, acc_bits=4), "x")
    model.add(Dense("b", np.array([[1, 2, -1], [-2, 0, 3], [1, 1, 1]]), weight_bits=3,
                    acc_bits=4), "h")
    model.add(Add("sum"), ("b", "skip"))
    model.add(LIF("out", np.array([2, 1, 3]), leak=Leak.by_shift(2), v_bits=6), "sum")
    model.add(Readout("r"), "out")
    return model


def test_residual_currents_are_summed_into_one_neuron_op():
    model = residual_model()
    types = model.infer()
    assert types["sum"] == Current((3,), 5)              # two 4-bit currents: [-16, 14]
    rng = np.random.default_rng(3)
    spikes = rng.integers(0, 2, (5, 6, 4))
    trace = reference.run(model, spikes)
    x = spikes.astype(np.int64)
    skip = x @ model["skip"].weight.T
    b = trace.spikes["h"].astype(np.int64) @ model["b"].weight.T
    assert np.array_equal(trace.currents["sum"], b + skip)
    assert np.array_equal(trace.spikes["out"], reference.lif(model["out"], b + skip)[0])


def sew_model():
    """SEW-ResNet's ADD: a block's spikes plus its input spikes, then a convolution."""
    model = Model("sew", 4)
    model.add(Input("x", (2, 4, 4)))
    model.add(Conv2d("c1", np.ones((2, 2, 3, 3), dtype=int) - np.eye(3, dtype=int), padding=1,
                     weight_bits=2, acc_bits=7), "x")
    model.add(LIF("l1", np.full(32, 2), v_bits=6), "c1")
    model.add(Add("add"), ("l1", "x"))
    model.add(Conv2d("c2", np.tile([[1, -1], [2, 0]], (2, 2, 1, 1)), weight_bits=3, acc_bits=7),
              "add")
    model.add(LIF("l2", np.full(18, 3), v_bits=7), "c2")
    model.add(Flatten("f"), "l2")
    model.add(Flatten("g"), "l2")         # a graph edge is one port: the same spikes twice
    model.add(Add("add2"), ("f", "g"))
    model.add(Dense("fc", np.arange(36).reshape(2, 18) % 3 - 1, weight_bits=2, acc_bits=7),
              "add2")
    model.add(LIF("out", np.array([1, 1]), v_bits=8), "fc")
    return model


def test_a_sew_spike_add_is_a_count_consumed_by_synapses():
    model = sew_model()
    types = model.infer()
    assert types["add"] == Current((2, 4, 4), 3)          # 0..2 is not a spike
    assert types["add2"] == Current((18,), 3)
    rng = np.random.default_rng(4)
    spikes = rng.integers(0, 2, (3, 4, 2, 4, 4))
    trace = reference.run(model, spikes)
    counts = trace.spikes["l1"].astype(np.int64) + spikes.reshape(3, 4, -1)
    assert np.array_equal(trace.currents["add"], counts)
    assert counts.max() == 2                              # the test reaches a 2
    torch = pytest.importorskip("torch")
    expected = torch.nn.functional.conv2d(
        torch.tensor(counts.reshape(12, 2, 4, 4), dtype=torch.float64),
        torch.tensor(model["c2"].weight, dtype=torch.float64)).numpy()
    assert np.array_equal(trace.currents["c2"], expected.reshape(3, 4, -1).astype(np.int64))
    doubled = 2 * trace.spikes["l2"].astype(np.int64)
    assert np.array_equal(trace.currents["fc"], doubled @ model["fc"].weight.T)


def test_new_ops_round_trip_through_the_native_format():
    for model in (pooled_model((3, 2), (2, 1), (1, 1)), residual_model(), sew_model()):
        data = native.dumps(model)
        assert native.loads(data) == model


@pytest.mark.parametrize("build, message", [
    (lambda: MaxPool2d("m", (3, 3), 1, (2, 1)),
     "max_pool2d 'm': padding [2, 1] must be at most half the kernel [3, 3]"),
    (lambda: MaxPool2d("m", 0), "max_pool2d 'm': kernel = 0 must be at least 1"),
    (lambda: MaxPool2d("m", 2, (1, 0)), "max_pool2d 'm': stride = 0 must be at least 1"),
    (lambda: MaxPool2d("m", (2, 2, 2)), "max_pool2d 'm': kernel must be an integer or a list "
                                        "of 2"),
])
def test_invalid_max_pools_are_refused(build, message):
    with pytest.raises(ModelError, match=re.escape(message)):
        build()


@pytest.mark.parametrize("op, inputs, message", [
    (MaxPool2d("m", 2), [Current((3, 4), 5)],
     "max_pool2d 'm': input must be (channels, height, width), got current[3, 4]:i5"),
    (MaxPool2d("m", 5), [Current((1, 4, 4), 5)],
     "max_pool2d 'm': kernel [5, 5] does not fit the input current[1, 4, 4]:i5"),
    (MaxPool2d("m", 2), [Current((1, 4, 4), 5), Spikes((1, 4, 4))],
     "max_pool2d 'm': takes 1 input(s), got 2"),
    (Add("a"), [Spikes((3,))], "add 'a': takes at least 2 inputs, got 1"),
    (Add("a"), [Spikes((3,)), Current((4,), 3)],
     "add 'a': its inputs have different shapes (spikes[3], current[4]:i3)"),
    (Dense("d", np.full((1, 3), 3), weight_bits=3, acc_bits=5), [Current((3,), 3)],
     "dense 'd': sums of its current[3]:i3 input can reach 36 in magnitude, which overflows "
     "acc_bits=5; it needs 7 bits"),
    (Dense("d", np.ones((2, 3), dtype=int), weight_bits=2, acc_bits=8, recurrent=True),
     [Current((1,), 3)], "dense 'd': expects spikes input, got current[1]:i3"),
])
def test_type_errors_of_the_new_ops(op, inputs, message):
    with pytest.raises(ModelError, match=re.escape(message)):
        op.infer(inputs, 4)


def test_add_of_a_membrane_is_refused():
    from hwgen.compiler.ir import Membrane
    with pytest.raises(ModelError, match=re.escape(
            "add 'a': expects spikes or current inputs, got membrane[2]:i4")):
        Add("a").infer([Spikes((2,)), Membrane((2,), 4)], 3)


def test_add_widths():
    assert Add("a").infer([Spikes((2,)), Spikes((2,)), Spikes((2,))], 1) == Current((2,), 3)
    assert Add("a").infer([Spikes((2,)), Spikes((2,)), Spikes((2,)), Spikes((2,))], 1) \
        == Current((2,), 4)                                 # 0..4
    assert Add("a").infer([Current((2,), 8), Current((2,), 8)], 1) == Current((2,), 9)
    assert Add("a").infer([Current((2,), 8), Spikes((2,))], 1) == Current((2,), 9)  # ..128
    assert Add("a").infer([Current((2,), 2), Current((2,), 6)], 1) == Current((2,), 7)


def test_reachability_bounds_adds_and_max_pools():
    from hwgen.compiler.passes.reachability import silent_layers
    model = residual_model()
    assert silent_layers(model) == []
    quiet = Model("quiet", 6)
    quiet.add(Input("x", 2))
    quiet.add(Dense("a", np.array([[1, 0]]), weight_bits=2, acc_bits=2), "x")
    quiet.add(Dense("b", np.array([[0, 1]]), weight_bits=2, acc_bits=2), "x")
    quiet.add(Add("s"), ("a", "b"))
    quiet.add(LIF("l", np.array([13]), v_bits=6), "s")
    (warning,) = silent_layers(quiet)                      # 1 + 1 per step: 12 < 13
    assert "its largest possible membrane is 12 against threshold 13" in warning
    quiet = Model("quiet", 5)
    quiet.add(Input("x", (1, 2, 2)))
    quiet.add(Conv2d("c", np.ones((1, 1, 1, 1), dtype=int), weight_bits=2, acc_bits=2), "x")
    quiet.add(MaxPool2d("m", 2), "c")
    quiet.add(LIF("l", np.array([6]), v_bits=6), "m")
    (warning,) = silent_layers(quiet)                      # a max of 1 per step: 5 < 6
    assert warning.startswith("layer 'l' can never spike within T = 5 steps")
    assert "its largest possible membrane is 5 against threshold 6" in warning


def test_an_add_too_wide_for_the_ir_is_refused():
    with pytest.raises(ModelError, match=re.escape("add 'a': sums need 49 bits, more than 48")):
        Add("a").infer([Current((1,), 48), Current((1,), 48)], 1)
