"""Unrolling the linear ops between two spiking layers into the one matrix the accelerator
walks.

Between a spike source (the input or a ``lif`` op) and the ``lif`` op it feeds, every op
hwgen has is linear in the source's spikes plus a constant: convolutions, sum pooling,
flatten, dense layers, adds of those (docs/semantics.md 3-3b). The current the neurons
integrate is therefore ``I[n, t] = b[n] + sum_k M[n, k] * s[k, t]`` for one integer matrix
``M`` (outputs x source neurons, both numbered in C order) and bias ``b``, exactly: every
intermediate value is an integer the IR proves cannot overflow (each op's declared width
holds its bound), so composing the ops changes nothing but the order of exact sums.

``M`` is found by running the ops themselves -- the integer reference's own functions, so
it cannot drift from what the reference computes -- on the zero input (giving ``b``) and on
one-hot inputs (column k of ``M`` is the output for ``e_k``, less ``b``), in blocks of
columns to bound memory. A convolution's receptive fields and padding come out as the
nonzero pattern of its rows: each output neuron's weight fiber lists exactly the input
positions its window covers, so the accelerator needs no im2col'd copy of the spikes.

The price is in the weights: an unrolled convolution has one row per output pixel and
channel, so its kernel is repeated once per output pixel in ``M``. The scheduler stores a
repeated weight fiber once per TPPE where it can (it deduplicates weight values,
compiler/scheduler/program.py); what is left is counted and refused by the capacity check
when it does not fit.
"""

import numpy as np

from hwgen.errors import FitError, UnsupportedError
from ..ir import Add, Conv1d, Conv2d, Dense, Flatten, SumPool2d
from ..ir import reference
from ..ir.widths import MAX_IR_ACC_BITS, MAX_WEIGHT_BITS

LINEAR_OPS = (Dense, Conv1d, Conv2d, SumPool2d, Flatten, Add)
"""The ops a layer's synapse may be made of: each linear in its inputs plus a constant."""

MAX_UNROLLED_ENTRIES = 1 << 26
"""The largest outputs x inputs matrix the compiler builds (64 Mi entries, 512 MiB as
int64): the scheduler holds each layer's matrix densely."""

_BLOCK = 256
"""One-hot columns evaluated at a time."""


def signed_bits(low, high):
    """The narrowest signed width (at least 2) holding every integer in [low, high]."""
    return max(2, max(int(high).bit_length(), (-int(low) - 1).bit_length() if low < 0 else 0)
               + 1)


def unroll(model, sources, ops, output, types):
    """Compose ``ops`` (linear, in the model's topological order, fed only by the spiking
    ops ``sources`` and each other) into one :class:`Dense` named ``output`` (the op feeding
    the neurons), whose ``weight`` is ``M`` and ``bias`` is ``b`` (None if zero); ``M``'s
    columns are the neurons of ``sources[0]``, then those of ``sources[1]``, ...

    ``types``: the model's inferred value types. The weight width is the narrowest holding
    ``M``, the accumulator width the narrowest holding ``M``'s bound
    ``max_n (sum_k |M[n, k]| + |b[n]|)``, so the composed sum never overflows.
    """
    sizes = [types[source.name].size for source in sources]
    inputs = sum(sizes)
    outputs = types[output].size
    entries = inputs * outputs
    if entries > MAX_UNROLLED_ENTRIES:
        raise FitError(f"{model[output].where}: unrolled, its layer is a {outputs} x {inputs} "
                       f"matrix ({entries:,} entries), more than the compiler holds "
                       f"({MAX_UNROLLED_ENTRIES:,})")

    def evaluate(spikes):
        split = np.split(spikes, np.cumsum(sizes)[:-1], axis=1)
        return _evaluate(model, {source.name: part for source, part in zip(sources, split)},
                         ops, output, types)

    bias = evaluate(np.zeros((1, inputs), np.uint8))[0]
    weight = np.empty((outputs, inputs), dtype=np.int64)
    for start in range(0, inputs, _BLOCK):
        stop = min(inputs, start + _BLOCK)
        basis = np.zeros((stop - start, inputs), dtype=np.uint8)
        basis[np.arange(stop - start), np.arange(start, stop)] = 1
        weight[:, start:stop] = (evaluate(basis) - bias).T
    names = ", ".join(op.name for op in ops)
    weight_bits = signed_bits(weight.min(initial=0), weight.max(initial=0))
    if weight_bits > MAX_WEIGHT_BITS:
        raise UnsupportedError(f"{model[output].where}: unrolled with {names}, its weights "
                               f"reach {weight_bits} bits, more than the accelerator's "
                               f"{MAX_WEIGHT_BITS}")
    # The neurons' declared input width bounds any input of the ops' declared widths
    # (m = 2**(bits-1) for a current); the matrix's own bound is exact and often narrower.
    bound = int((np.abs(weight).sum(axis=1) + np.abs(bias)).max(initial=0))
    acc_bits = signed_bits(-bound, bound)
    if acc_bits > MAX_IR_ACC_BITS:        # cannot happen while every op's width is checked
        raise UnsupportedError(f"{model[output].where}: unrolled with {names}, its sums need "
                               f"{acc_bits} bits")
    return Dense(output, weight, bias if bias.any() else None, weight_bits=weight_bits,
                 acc_bits=acc_bits)


def _evaluate(model, spikes, ops, output, types):
    """Run ``ops`` on one step of ``spikes`` ({source name: (batch, its neurons)}) and
    return the output op's current (batch, outputs) as int64."""
    values = {name: value[:, np.newaxis, :] for name, value in spikes.items()}
    for op in ops:
        feeds = model.inputs_of(op.name)
        value = values[feeds[0]]
        shape = types[feeds[0]].shape
        if isinstance(op, Dense):
            values[op.name] = reference.dense(op, value)
        elif isinstance(op, (Conv1d, Conv2d)):
            values[op.name] = reference.conv(op, value, shape)
        elif isinstance(op, SumPool2d):
            values[op.name] = reference.pool(op, value, shape)
        elif isinstance(op, Add):
            values[op.name] = reference.add([values[f] for f in feeds])
        else:                                            # Flatten: the same numbering
            values[op.name] = value
    return np.asarray(values[output], dtype=np.int64)[:, 0, :]


def pool_windows(pool, shape):
    """Per output of ``pool`` (a ``max_pool2d``) on an input of ``shape`` (C, H, W), in C
    order: the C-order indices of the input positions in its window, padding left out
    (docs/semantics.md 3a: a padded position takes no part in the max)."""
    channels, height, width = shape
    (kh, kw), (sh, sw), (ph, pw) = pool.kernel, pool.stride, pool.padding
    rows = (height + 2 * ph - kh) // sh + 1
    columns = (width + 2 * pw - kw) // sw + 1
    windows = []
    for c in range(channels):
        for y in range(rows):
            for x in range(columns):
                windows.append(tuple(
                    (c * height + i) * width + j
                    for i in range(y * sh - ph, y * sh - ph + kh) if 0 <= i < height
                    for j in range(x * sw - pw, x * sw - pw + kw) if 0 <= j < width))
    return tuple(windows)
