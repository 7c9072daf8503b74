"""The tiled mapping of a convolution (compiler/scheduler/tiled.py): one program walked per
tile, resolved per TPPE, agrees with the reference convolution on every output neuron,
border pixels (forced-zero masks), strides, dilations, groups and channel counts that are
not multiples of the chunk included."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwgen.compiler.ir import Conv1d, Conv2d, reference
from hwgen.compiler.scheduler.tiled import tile_conv
from hwgen.errors import UnsupportedError

import program_model


def conv(weight, bias=None, **geometry):
    """A Conv1d or Conv2d op (by the weight's rank) named "conv" of 4-bit weights."""
    op = Conv1d if np.ndim(weight) == 3 else Conv2d
    return op("conv", weight, bias, weight_bits=4, acc_bits=16, **geometry)


def expected_currents(spikes, weight, bias, stride, padding, dilation, groups):
    """(T, N, Ho, Wo) input currents of the convolution, from the reference."""
    return reference.convolve(spikes.astype(np.int64), weight, bias, stride=stride,
                              padding=padding, dilation=dilation, groups=groups)


@st.composite
def convolutions(draw):
    groups = draw(st.sampled_from([1, 1, 2]))
    channels = groups * draw(st.integers(1, 9))
    out_channels = groups * draw(st.integers(1, 4))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = tuple(draw(st.integers(0, k - 1)) for k in kernel)
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 3)))
    # at least the dilated kernel, less the padding: one output pixel or more
    height, width = (draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), 7))
                     for k, d, p in zip(kernel, dilation, padding))
    seed = draw(st.integers(0, 2**16))
    density = draw(st.sampled_from([0.0, 0.3, 1.0]))
    rng = np.random.default_rng(seed)
    weight = rng.integers(-7, 8, (out_channels, channels // groups, *kernel)) \
        * (rng.random((out_channels, channels // groups, *kernel)) < density)
    bias = rng.integers(-5, 6, out_channels)
    T = draw(st.integers(1, 4))
    spikes = rng.random((T, channels, height, width)) < draw(st.sampled_from([0.0, 0.4, 1.0]))
    return weight, bias, (channels, height, width), stride, padding, dilation, groups, spikes


@settings(max_examples=60, deadline=None)
@given(case=convolutions(), chunk=st.sampled_from([4, 8, 16]),
       tppes=st.sampled_from([1, 2, 3, 5, 16]))
def test_every_tppe_reads_its_own_window_from_the_one_program(case, chunk, tppes):
    weight, bias, in_shape, stride, padding, dilation, groups, spikes = case
    tiled = tile_conv(conv(weight, bias, stride=stride, padding=padding, dilation=dilation,
                           groups=groups),
                      in_shape, np.ones(weight.shape[0], dtype=int), chunk=chunk, tppes=tppes)
    currents, pairs = program_model.run_tiled(tiled, spikes)
    want = expected_currents(spikes, weight, bias, stride, padding, dilation, groups)
    N, rows, columns = tiled.out_shape
    assert want.shape[1:] == tiled.out_shape
    assert len(currents) == N * rows * columns          # every neuron once, by its slot
    for n in range(N):
        for y in range(rows):
            for x in range(columns):
                slot = (y * columns + x) * tiled.out_chunks * chunk + n
                assert np.array_equal(currents[slot], want[:, n, y, x])
    # the matched pairs of all TPPEs are those of the convolution's nonzero products
    active = spikes.any(axis=0).astype(np.int64)
    ones = (weight != 0).astype(np.int64)
    assert sum(map(sum, pairs)) == int(expected_currents(
        active[None], ones, None, stride, padding, dilation, groups).sum())


def test_one_copy_whatever_the_tppes_and_the_map():
    """The program is the kernels once: a header per output channel and an entry per
    nonzero (window position, input chunk), for 1 or 16 TPPEs, on a small or large map."""
    rng = np.random.default_rng(1)
    weight = rng.integers(-3, 4, (6, 20, 3, 3)) * (rng.random((6, 20, 3, 3)) < 0.3)
    blocks = (weight.reshape(6, 2, 10, 3, 3) != 0).any(axis=2).sum()     # chunk 10
    sizes = set()
    for side, tppes in [(5, 1), (5, 16), (32, 1), (32, 16)]:
        tiled = tile_conv(conv(weight, padding=1), (20, side, side), np.ones(6, dtype=int),
                          chunk=10, tppes=tppes)
        sizes.add((len(tiled.entries), len(tiled.weights)))
    assert sizes == {(6 + blocks, len(tiled.weights))}
    assert len(tiled.weights) <= (weight != 0).sum()    # runs stored once, shared
    assert len(tiled.tiles()) == 32 * 32 // 16


def test_a_window_past_the_border_reads_nothing():
    # a 1 x 1 map padded by 1: only the window's centre is inside it
    weight = np.ones((1, 1, 3, 3), dtype=int)
    tiled = tile_conv(conv(weight, padding=1), (1, 1, 1), np.ones(1, dtype=int), chunk=4,
                      tppes=2)
    resolved = [tiled.resolve(fields, 0, 0) for kind, fields in tiled.entries
                if kind == "chunk"]
    assert resolved == [None] * 4 + [0] + [None] * 4
    # TPPE 1 has no pixel in the one-pixel map
    assert all(tiled.resolve(fields, 0, 1) is None
               for kind, fields in tiled.entries if kind == "chunk")


@pytest.mark.parametrize("weight_shape, in_shape, theta_shape, message", [
    ((2, 3, 3), (3, 5, 5), (2,),
     "conv1d 'conv': its input must have 1 spatial dimensions, got shape (3, 5, 5)"),
    ((2, 3, 3, 3), (3, 5), (2,),
     "conv2d 'conv': its input must have 2 spatial dimensions, got shape (3, 5)"),
    ((2, 3, 3, 3), (4, 5, 5), (2,),
     "conv2d 'conv': reads 3 input channels, the input has 4"),
    ((2, 3, 3, 3), (3, 5, 5), (2, 3, 3),
     "conv2d 'conv': the tiled mapping needs one threshold per output channel (2), got "
     "shape (2, 3, 3)"),
    ((2, 3, 3, 3), (3, 2, 5), (2,), "conv2d 'conv': kernel 3 x 3 does not fit the input 2 x 5"),
])
def test_what_it_cannot_tile_is_refused_by_name(weight_shape, in_shape, theta_shape, message):
    with pytest.raises(UnsupportedError) as error:
        tile_conv(conv(np.ones(weight_shape, dtype=int)), in_shape,
                  np.ones(theta_shape, dtype=int))
    assert str(error.value) == message


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), channels=st.integers(1, 9), length=st.integers(3, 12),
       kernel=st.integers(1, 3), stride=st.integers(1, 2), chunk=st.sampled_from([4, 8]),
       tppes=st.sampled_from([1, 3, 16]))
def test_a_1d_convolution_is_a_2d_one_of_height_1(seed, channels, length, kernel, stride,
                                                   chunk, tppes):
    rng = np.random.default_rng(seed)
    weight = rng.integers(-7, 8, (3, channels, kernel)) * (rng.random((3, channels,
                                                                       kernel)) < 0.5)
    spikes = rng.random((2, channels, length)) < 0.5
    padding = kernel // 2
    tiled = tile_conv(conv(weight, stride=stride, padding=padding), (channels, length),
                      np.ones(3, dtype=int), chunk=chunk, tppes=tppes)
    currents, _ = program_model.run_tiled(tiled, spikes[:, :, None, :])
    want = reference.convolve(spikes.astype(np.int64), weight, None, stride=(stride,),
                              padding=(padding,), dilation=(1,), groups=1)
    for n in range(3):
        for x in range(want.shape[2]):
            assert np.array_equal(currents[x * tiled.out_chunks * chunk + n], want[:, n, x])
