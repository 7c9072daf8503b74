"""Unrolling the linear ops between two spiking layers into the one matrix the accelerator
walks.

Between a spike source (the input or a ``lif`` op) and the ``lif`` op it feeds, every op
hwgen has is linear in the source's spikes plus a constant: convolutions, sum pooling,
flatten, dense layers, adds of those (docs/semantics.md 3-3b), and column sums over tokens
(``token_sum``, 4d: a row of ones per feature over its positions). The current the neurons
integrate is therefore ``I[n, t] = b[n] + sum_k M[n, k] * s[k, t]`` for one integer matrix
``M`` (outputs x source neurons, both numbered in C order) and bias ``b``, exactly: every
intermediate value is an integer the IR proves cannot overflow (each op's declared width
holds its bound), so composing the ops changes nothing but the order of exact sums.

``M`` is built sparse, op by op: each op's own matrix (outputs x its input) comes from
the integer reference's own window function (:func:`~hwgen.compiler.ir.reference.windows`)
applied to a map of input indices, so a window's positions, stride, dilation and padding
cannot drift from what the reference computes (a padded position holds index 0 and drops
out), and the layer's matrix is their product in scipy.sparse CSR form, in int64 (exact:
every intermediate value is bounded by an op's declared width, below 2**47). A
convolution's receptive fields and padding come out as the nonzero pattern of its rows:
each output neuron's weight fiber lists exactly the input positions its window covers, so
the accelerator needs no im2col'd copy of the spikes. Sparse, a layer costs memory and time
in proportion to its nonzero weights, not to outputs x inputs: a 65,536 x 65,536
convolution with 7.5 M nonzero weights unrolls in seconds.

The price is in the weights: an unrolled convolution has one row per output pixel and
channel, so its kernel is repeated once per output pixel in ``M``. The scheduler stores a
repeated weight fiber once per TPPE where it can (it deduplicates weight values,
compiler/scheduler/program.py); what is left is counted and refused by the capacity check
when it does not fit.
"""

import numpy as np
import scipy.sparse

from hwgen.errors import FitError, UnsupportedError
from ..ir import Add, Conv1d, Conv2d, Dense, Flatten, SumPool2d, TokenSum
from ..ir import reference
from ..ir.ops import _require_int
from ..ir.widths import MAX_IR_ACC_BITS, MAX_WEIGHT_BITS, MIN_BITS

LINEAR_OPS = (Dense, Conv1d, Conv2d, SumPool2d, Flatten, Add, TokenSum)
"""The ops a layer's synapse may be made of: each linear in its inputs plus a constant."""

MAX_UNROLLED_NONZEROS = 1 << 28
"""The most nonzero entries the compiler builds an unrolled matrix with (256 Mi, about
3 GiB as CSR with int64 values): a bound on memory, not on the outputs x inputs size."""


class UnrolledDense(Dense):
    """The :class:`Dense` an unrolled layer becomes, with its ``weight`` a
    ``scipy.sparse.csr_array`` (int64, sorted indices, no stored zeros) instead of a
    dense array: an unrolled convolution is mostly zeros, and dense it would not fit in
    memory for layers of LoAS's size. Never recurrent; never part of a model (legalise
    makes it, the scheduler reads it), so it is not serialised."""

    def __init__(self, name, weight, bias=None, *, weight_bits, acc_bits):
        super(Dense, self).__init__(name)              # not Dense's: its checks are dense
        self.recurrent = False
        self.weight_bits = _require_int(self.where, "weight_bits", weight_bits, MIN_BITS,
                                        MAX_WEIGHT_BITS)
        self.acc_bits = _require_int(self.where, "acc_bits", acc_bits, MIN_BITS,
                                     MAX_IR_ACC_BITS)
        self.weight = weight
        self.bias = bias

    def dense_weight(self):
        """The weight as a dense array (tests and small layers only)."""
        return self.weight.toarray()


def signed_bits(low, high):
    """The narrowest signed width (at least 2) holding every integer in [low, high]."""
    return max(2, max(int(high).bit_length(), (-int(low) - 1).bit_length() if low < 0 else 0)
               + 1)


def unroll(model, sources, ops, output, types, zero=None, extra_bound=None):
    """Compose ``ops`` (linear, in the model's topological order, fed only by the spiking
    ops ``sources`` and each other) into one :class:`UnrolledDense` named ``output`` (the
    op feeding the neurons), whose ``weight`` is ``M`` (sparse) and ``bias`` is ``b`` (None
    if zero); ``M``'s columns are the neurons of ``sources[0]``, then those of
    ``sources[1]``, ...

    ``types``: the model's inferred value types. The weight width is the narrowest holding
    ``M``, the accumulator width the narrowest holding ``M``'s bound
    ``max_n (sum_k |M[n, k]| + |b[n]|)``, so the composed sum never overflows.

    ``zero``: an op whose value is left out (a kept current the hardware adds to the
    neurons' own, :mod:`.legalise`), with ``extra_bound`` its bound per output neuron,
    added to ``M``'s in the accumulator width (the neurons receive the whole sum).
    """
    sizes = [types[source.name].size for source in sources]
    inputs = sum(sizes)
    # {op: (matrix over the sources' neurons, bias)}; a source selects its own columns
    values, offset = {}, 0
    for source, size in zip(sources, sizes):
        select = scipy.sparse.csr_array(
            (np.ones(size, dtype=np.int64), (np.arange(size), offset + np.arange(size))),
            shape=(size, inputs))
        values[source.name] = (select, np.zeros(size, dtype=np.int64))
        offset += size
    if zero is not None:
        size = types[zero].size
        values[zero] = (scipy.sparse.csr_array((size, inputs), dtype=np.int64),
                        np.zeros(size, dtype=np.int64))
    for op in ops:
        feeds = model.inputs_of(op.name)
        matrix, bias = values[feeds[0]]
        if isinstance(op, Add):
            matrix = sum((values[f][0] for f in feeds[1:]), matrix).tocsr()
            bias = sum(values[f][1] for f in feeds)
        elif not isinstance(op, Flatten):                # a flatten keeps the numbering
            operator, own_bias = _operator(op, types[feeds[0]].shape)
            matrix, bias = (operator @ matrix).tocsr(), operator @ bias + own_bias
        if matrix.nnz > MAX_UNROLLED_NONZEROS:
            raise FitError(f"{model[output].where}: unrolled, {op.where} makes a "
                           f"{matrix.shape[0]} x {matrix.shape[1]} matrix with "
                           f"{matrix.nnz:,} nonzero entries, more than the compiler holds "
                           f"({MAX_UNROLLED_NONZEROS:,})")
        values[op.name] = (matrix, bias)
    weight, bias = values[output]
    weight = scipy.sparse.csr_array(weight, dtype=np.int64)
    weight.eliminate_zeros()                     # cancelled sums are no weight at all
    weight.sort_indices()
    bias = np.asarray(bias, dtype=np.int64)
    names = ", ".join(op.name for op in ops)
    weight_bits = signed_bits(weight.data.min(initial=0), weight.data.max(initial=0))
    if weight_bits > MAX_WEIGHT_BITS:
        raise UnsupportedError(f"{model[output].where}: unrolled with {names}, its weights "
                               f"reach {weight_bits} bits, more than the accelerator's "
                               f"{MAX_WEIGHT_BITS}")
    # The neurons' declared input width bounds any input of the ops' declared widths
    # (m = 2**(bits-1) for a current); the matrix's own bound is exact and often narrower.
    rows = abs(weight).sum(axis=1) + np.abs(bias)
    if extra_bound is not None:
        rows = rows + extra_bound
    bound = int(rows.max(initial=0))
    acc_bits = signed_bits(-bound, bound)
    if acc_bits > MAX_IR_ACC_BITS:        # cannot happen while every op's width is checked
        raise UnsupportedError(f"{model[output].where}: unrolled with {names}, its sums need "
                               f"{acc_bits} bits")
    return UnrolledDense(output, weight, bias if bias.any() else None,
                         weight_bits=weight_bits, acc_bits=acc_bits)


def _operator(op, shape):
    """One op's own matrix (outputs x inputs, sparse int64) and bias (outputs,), for an
    input of per-step ``shape``."""
    if isinstance(op, Dense):
        bias = op.bias if op.bias is not None else np.zeros(op.outputs, dtype=np.int64)
        return scipy.sparse.csr_array(op.feedforward_weight.astype(np.int64)), bias
    channels, spatial = shape[0], tuple(shape[1:])
    size = int(np.prod(shape))
    if isinstance(op, TokenSum):
        # feature c's positions are the consecutive elements c P .. c P + P - 1 (C order)
        positions = size // channels
        return (scipy.sparse.csr_array(
            (np.ones(size, dtype=np.int64), (np.arange(size) // positions, np.arange(size))),
            shape=(channels, size)), np.zeros(channels, dtype=np.int64))
    # input index + 1 at every position: windows() pads with 0, so padding is index -1
    index = np.arange(1, size + 1, dtype=np.int64).reshape(1, *shape)
    if isinstance(op, SumPool2d):
        kernel_weight = np.ones((channels, 1, *op.kernel), dtype=np.int64)
        stride, padding, dilation, groups = op.stride, op.padding, (1,) * len(op.kernel), \
            channels
        bias = None
    else:
        kernel_weight = op.weight.astype(np.int64)
        stride, padding, dilation, groups = op.stride, op.padding, op.dilation, op.groups
        bias = op.bias
    kernel = kernel_weight.shape[2:]
    patches = reference.windows(index, kernel, stride, padding, dilation)[0] - 1
    out = patches.shape[1:1 + len(kernel)]
    pixels = int(np.prod(out))
    per_group_in = kernel_weight.shape[1]
    per_group_out = kernel_weight.shape[0] // groups
    rows, cols, data = [], [], []
    for g in range(groups):
        block = patches[g * per_group_in:(g + 1) * per_group_in]          # (c, *out, *k)
        block = np.moveaxis(block, 0, len(out)).reshape(pixels, -1)      # (pixels, c * k)
        for o in range(g * per_group_out, (g + 1) * per_group_out):
            taps = kernel_weight[o].reshape(-1)
            used = np.flatnonzero(taps)
            sources = block[:, used]                                   # (pixels, taps)
            inside = sources >= 0
            rows.append(np.broadcast_to(o * pixels + np.arange(pixels)[:, None],
                                        sources.shape)[inside])
            cols.append(sources[inside])
            data.append(np.broadcast_to(taps[used], sources.shape)[inside])
    outputs = kernel_weight.shape[0] * pixels
    matrix = scipy.sparse.csr_array(
        (np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))),
        shape=(outputs, size), dtype=np.int64)
    own_bias = (np.repeat(np.asarray(bias, dtype=np.int64), pixels) if bias is not None
                else np.zeros(outputs, dtype=np.int64))
    return matrix, own_bias


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
