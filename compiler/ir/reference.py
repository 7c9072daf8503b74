"""The integer reference model: the definition of correct.

It implements docs/semantics.md with exact integer arithmetic, vectorised over samples and
neurons (only the time loop of a neuron is sequential), and returns every op's output so a
mismatch in the hardware can be located to a layer, neuron and step.

It depends on numpy and the IR only. Nothing here may approximate: if an op cannot be
computed exactly it is refused.
"""

from dataclasses import dataclass, field

import numpy as np

from hwgen.errors import InputError, UnsupportedError
from hwgen.compiler.ir import early_exit as exit_rules
from hwgen.compiler.ir import (LI, LIF, Add, Conv1d, Conv2d, CurrentMatmul, Dense, Flatten, Input,
                               MaxPool2d, Readout, SpikeAnd, SpikeMatmul, SumPool2d, TokenSum,
                               saturate)
from hwgen.compiler.ir.neuron import joint_leak


@dataclass
class Trace:
    """Everything one reference run computed, per op name.

    ``spikes[name]``: uint8 (samples, T, neurons) for the input and every LIF op (and LI
    op: all 0, an integrator never spikes).
    ``currents[name]``: int64 (samples, T, neurons) for every Dense, convolution, pooling (a
    max pool of spikes is in ``spikes``), add, token_sum, spike_matmul and current_matmul
    op; a spike_and's spikes are in ``spikes``.
    ``membranes[name]``: int64 (samples, neurons), the membrane after the last step, for every
    LIF and LI op.
    ``potentials[name]``: int64 (samples, T, neurons), the membrane at every step, for LI ops.
    ``counts`` / ``predictions``: spike counts (samples, classes) and the predicted class per
    sample, if the model has a readout (``counts`` only for a spike-count readout).
    ``steps``: the steps each sample ran, if it ran with an early exit (:func:`run`).

    Multi-dimensional values (a convolution's channels x positions) are flattened in C order,
    so every array here is (samples, T, neurons) whatever the op.
    """

    spikes: dict = field(default_factory=dict)
    currents: dict = field(default_factory=dict)
    membranes: dict = field(default_factory=dict)
    potentials: dict = field(default_factory=dict)
    counts: np.ndarray = None
    predictions: np.ndarray = None
    steps: np.ndarray = None            # steps run per sample, with an early exit

    @property
    def samples(self):
        return next(iter(self.spikes.values())).shape[0]


def if_encode(values, threshold, timesteps):
    """The integrate-and-fire encoder: integers (samples, inputs) -> spikes (samples, T, inputs).

    v starts at 0; each step v += x, and if v >= threshold the input spikes and
    v -= threshold. With 0 <= x <= threshold this spikes round(x / threshold * T) times,
    give or take one, evenly spread.
    """
    values = np.asarray(values, dtype=np.int64)
    v = np.zeros_like(values)
    spikes = np.zeros((values.shape[0], timesteps, values.shape[1]), dtype=np.uint8)
    for t in range(timesteps):
        v += values
        fired = v >= threshold
        spikes[:, t] = fired
        v -= np.where(fired, threshold, 0)
    return spikes


def encode(model, inputs):
    """Validate ``inputs`` for ``model`` and return spikes (samples, T, inputs) as uint8.

    ``inputs`` is either integers (samples, *shape) for a model with an integer encoding, or
    spike trains (samples, T, *shape) of 0/1 for any model, where ``shape`` is the input op's
    shape. Multi-dimensional inputs are flattened in C order; they may also be given
    flattened already, (samples, size) or (samples, T, size) -- what the accelerator
    receives -- where the shaped reading does not fit.
    """
    source = model.input
    shape = tuple(source.shape)
    size = int(np.prod(shape))
    T = model.timesteps
    shown = ", ".join(map(str, shape))
    inputs = np.asarray(inputs)
    if inputs.dtype.kind not in "iub":
        raise InputError(f"inputs must be integers, got dtype {inputs.dtype}")
    # Flat inputs, (samples, T, size) or (samples, size), unless they read as shaped ones; a
    # model of spike trains takes no integers, so (samples, *shape) is no reading for it
    # (with T = 1 and an input of (1, n), (samples, 1, n) is flat spike trains)
    shaped = ((T, *shape), shape) if source.encoding == "if" else ((T, *shape),)
    if len(shape) > 1 and inputs.ndim >= 2 and inputs.shape[1:] in ((T, size), (size,)) \
            and inputs.shape[1:] not in shaped:
        shape, shown = (size,), str(size)
    if inputs.ndim == len(shape) + 2:
        if inputs.shape[1:] != (T, *shape):
            raise InputError(f"spike trains have shape {inputs.shape}; model {model.name!r} "
                             f"expects (samples, {T}, {shown})")
        if inputs.size and (inputs.min() < 0 or inputs.max() > 1):
            raise InputError("spike trains must hold only 0 and 1")
        return inputs.reshape(inputs.shape[0], T, size).astype(np.uint8)
    if inputs.ndim == len(shape) + 1:
        if source.encoding != "if":
            raise InputError(f"model {model.name!r} takes spike trains (samples, {T}, {shown}); "
                             f"got integers of shape {inputs.shape}")
        if inputs.shape[1:] != shape:
            raise InputError(f"inputs have shape {inputs.shape}; model {model.name!r} expects "
                             f"(samples, {shown})")
        if inputs.size and (inputs.min() < 0 or inputs.max() > source.threshold):
            raise InputError(f"input values must be between 0 and the encoder threshold "
                             f"{source.threshold}, got {inputs.min()}..{inputs.max()}")
        return if_encode(inputs.reshape(inputs.shape[0], size), source.threshold, T)
    raise InputError(f"inputs must be {len(shape) + 1}-D (samples, {shown}) or "
                     f"{len(shape) + 2}-D (samples, T, {shown}), got shape {inputs.shape}")


def windows(x, kernel, stride, padding, dilation):
    """Every kernel window of a zero-padded batch: (N, C, *spatial) -> (N, C, *out, *kernel).

    A strided view where possible; ``out`` follows PyTorch's formula
    floor((n + 2p - d(k-1) - 1) / s) + 1 per spatial dimension.
    """
    dims = len(kernel)
    x = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in padding])
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    view = np.lib.stride_tricks.sliding_window_view(x, span, axis=tuple(range(2, 2 + dims)))
    index = ((slice(None), slice(None)) + tuple(slice(None, None, s) for s in stride)
             + tuple(slice(None, None, d) for d in dilation))
    return view[index]


def convolve(x, weight, bias, *, stride, padding, dilation, groups):
    """Grouped N-d convolution of (N, C, *spatial) by (O, C/groups, *kernel), in float64.

    Exact for integers: every partial sum is an integer below 2**47 in magnitude (the IR's
    accumulator bound), well inside float64's 2**53. Returns float64 (N, O, *out).
    """
    dims = weight.ndim - 2
    kernel = weight.shape[2:]
    patches = windows(x.astype(np.float64), kernel, stride, padding, dilation)
    n, out = patches.shape[0], patches.shape[2:2 + dims]
    per_group_in, per_group_out = weight.shape[1], weight.shape[0] // groups
    results = []
    for g in range(groups):
        block = patches[:, g * per_group_in:(g + 1) * per_group_in]
        # (N, c, *out, *k) -> (N * out, c * k)
        block = np.moveaxis(block, 1, 1 + dims).reshape(n * int(np.prod(out)), -1)
        w = weight[g * per_group_out:(g + 1) * per_group_out].reshape(per_group_out, -1)
        results.append(block @ w.T.astype(np.float64))
    result = np.concatenate(results, axis=1).reshape(n, *out, weight.shape[0])
    result = np.moveaxis(result, -1, 1)
    if bias is not None:
        result = result + np.asarray(bias, dtype=np.float64).reshape(-1, *([1] * dims))
    return result


def sum_pool(x, kernel, stride, padding):
    """Window sums of (N, C, H, W) with zero padding: (N, C, H', W'), in x's dtype."""
    patches = windows(x, kernel, stride, padding, (1,) * len(kernel))
    return patches.sum(axis=tuple(range(-len(kernel), 0)))


def max_pool(x, kernel, stride, padding):
    """Window maxima of (N, C, H, W), padded positions taking no part: (N, C, H', W').

    Padding with the dtype's lowest value is the same as leaving padded positions out,
    since every window holds an input position (``padding`` <= kernel // 2)."""
    lowest = np.iinfo(x.dtype).min if x.dtype.kind in "iu" else -np.inf
    x = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in padding], constant_values=lowest)
    patches = windows(x, kernel, stride, (0,) * len(kernel), (1,) * len(kernel))
    return patches.max(axis=tuple(range(-len(kernel), 0)))


def _per_step(values, shape, function):
    """Apply ``function`` to (samples*T, *shape) and return (samples, T, outputs) again."""
    samples, steps = values.shape[:2]
    result = function(values.reshape(samples * steps, *shape))
    return result.reshape(samples, steps, -1)


def dense(op, spikes):
    """current[s, t, n] = sum_k weight[n, k] * spikes[s, t, k] + bias[n], exactly (the
    feed-forward columns of a recurrent synapse).

    float64 products are exact here: every partial sum is an integer below 2**47 in
    magnitude (the IR bounds acc_bits at widths.MAX_IR_ACC_BITS = 48), well inside float64's 2**53.
    """
    current = np.rint(spikes.astype(np.float64) @ op.feedforward_weight.T.astype(np.float64))
    current = current.astype(np.int64)
    if op.bias is not None:
        current += op.bias
    return current


class _Integrator:
    """What a neuron integrates each step, in the order docs/semantics.md gives.

    :meth:`step` takes the membrane v stored by step t-1 and this step's input current I[t]
    and returns D, the leaked membrane plus what it integrates, unsaturated: L(v) + I[t]
    for a voltage-based op; for a current-based one (section 4b) the synaptic current is
    updated first, i' = sat(L_syn(i) + I[t]), and D = L(v) + i' (``separate``) or
    floor(L°(v) + L°_syn(i)) + I[t] (``joint``, one floor).
    """

    def __init__(self, op, samples, neurons):
        self.op = op
        self.i = np.zeros((samples, neurons), dtype=np.int64)

    def step(self, v, current):
        op = self.op
        if op.synapse is None:
            return op.leak.apply(v) + current
        previous, self.i = self.i, saturate(op.synapse.apply(self.i) + current, op.i_bits)
        if op.synapse_rounding == "separate":
            return op.leak.apply(v) + self.i
        return joint_leak(op.leak, v, op.synapse, previous) + current


def lif(op, current):
    """Run ``op``'s neurons over the T steps of ``current`` (samples, T, neurons).

    Returns (spikes uint8 (samples, T, neurons), final membrane int64 (samples, neurons)).
    """
    return recurrent_lif(op, current, None)[:2]


def recurrent_lif(op, current, recurrent):
    """:func:`lif` with ``recurrent`` (neurons, neurons) weights, if not None, adding
    ``recurrent @ s[t-1]`` (the op's own spikes of the previous step; none before step 0)
    to the current of step t (section 4c). Returns (spikes, final membrane, the currents
    integrated (samples, T, neurons): ``current`` plus the recurrent part).
    """
    samples, steps, neurons = current.shape
    integrator = _Integrator(op, samples, neurons)
    theta = op.threshold[np.newaxis, :]
    v = np.zeros((samples, neurons), dtype=np.int64)
    fired = np.zeros((samples, neurons), dtype=bool)
    spikes = np.zeros(current.shape, dtype=np.uint8)
    currents = np.array(current, dtype=np.int64)

    def fire(h):
        return h >= theta if op.fire == "ge" else h > theta

    for t in range(steps):
        if recurrent is not None and t:
            currents[:, t] += (spikes[:, t - 1].astype(np.int64) @ recurrent.T)
        i_t = currents[:, t]
        if op.order == "snntorch_same_step" and op.reset == "subtract":
            # r: did the membrane stored at step t-1 fire? snnTorch subtracts its reset
            # before deciding and gives it back after (it "avoids a double reset").
            h = saturate(integrator.step(v, i_t), op.v_bits)
            fired = fire(h - np.where(fire(v), theta, 0))
            v = h - np.where(fired, theta, 0)
        elif op.order == "delayed" and op.reset == "zero" and op.current_based:
            # snnTorch's Synaptic zeroes the whole step after a spike, current included.
            h = np.where(fired, 0, saturate(integrator.step(v, i_t), op.v_bits))
            fired = fire(h)
            v = h
        elif op.order in ("same_step", "snntorch_same_step"):
            h = saturate(integrator.step(v, i_t), op.v_bits)
            fired = fire(h)
            if op.reset == "subtract":
                v = h - np.where(fired, theta, 0)
            elif op.reset == "zero":
                v = np.where(fired, 0, h)
            else:
                v = h
        else:
            # Delayed: the spike of step t-1 (``fired`` still holds it) resets now.
            if op.reset == "subtract":
                h = saturate(integrator.step(v, i_t) - np.where(fired, theta, 0), op.v_bits)
            elif op.reset == "zero":      # voltage-based: the leaked membrane only
                h = saturate(np.where(fired, 0, op.leak.apply(v)) + i_t, op.v_bits)
            else:
                h = saturate(integrator.step(v, i_t), op.v_bits)
            fired = fire(h)
            v = h
        spikes[:, t] = fired
    return spikes, v, currents


def conv(op, values, shape):
    """A Conv1d / Conv2d op on (samples, T, inputs) values whose per-step shape is ``shape``."""
    def step(x):
        result = convolve(x, op.weight, op.bias, stride=op.stride, padding=op.padding,
                          dilation=op.dilation, groups=op.groups)
        return np.rint(result).astype(np.int64)
    return _per_step(values, shape, step)


def pool(op, values, shape):
    """A SumPool2d op on (samples, T, inputs) values whose per-step shape is ``shape``."""
    return _per_step(values.astype(np.int64), shape,
                     lambda x: sum_pool(x, op.kernel, op.stride, op.padding))


def max_pool2d(op, values, shape):
    """A MaxPool2d op on (samples, T, inputs) values (spikes stay uint8 spikes)."""
    dtype = np.uint8 if values.dtype == np.uint8 else np.int64
    return _per_step(values.astype(dtype), shape,
                     lambda x: max_pool(x, op.kernel, op.stride, op.padding))


def add(values):
    """Element-wise sum of (samples, T, elements) arrays, as int64 (never a spike)."""
    total = np.zeros(values[0].shape, dtype=np.int64)
    for value in values:
        total += value
    return total


def spike_and(first, second):
    """The AND of spikes (samples, T, elements); ``second`` either has the same elements or
    one per feature (the first dimension of ``shape``), repeated at every position."""
    if second.shape[-1] != first.shape[-1]:
        # C order: feature c's positions are the P consecutive elements c P .. c P + P - 1
        second = np.repeat(second, first.shape[-1] // second.shape[-1], axis=-1)
    return (first & second).astype(np.uint8)


def token_sum(spikes, shape):
    """Per feature, the number of spiking positions: (samples, T, C * P) -> (samples, T, C)."""
    samples, steps = spikes.shape[:2]
    return spikes.reshape(samples, steps, shape[0], -1).sum(axis=-1, dtype=np.int64)


def spike_matmul(op, keys, values, shape):
    """M[h, i, j] = sum_p K[h d + i, p] V[h d + j, p] per sample and step, flattened in C
    order: (samples, T, C * P) twice -> (samples, T, H * d * d)."""
    samples, steps = keys.shape[:2]
    d = shape[0] // op.heads
    k = keys.reshape(samples, steps, op.heads, d, -1).astype(np.int64)
    v = values.reshape(samples, steps, op.heads, d, -1).astype(np.int64)
    return np.einsum("sthip,sthjp->sthij", k, v).reshape(samples, steps, -1)


def current_matmul(queries, matrices, shape, matrix_shape):
    """O[h d + j, p] = sum_i Q[h d + i, p] M[h, i, j] per sample and step:
    (samples, T, C * P) and (samples, T, H * d * d) -> (samples, T, C * P). Exact: int64,
    and the IR bounds every sum below 2**47."""
    samples, steps = queries.shape[:2]
    heads, d = matrix_shape[:2]
    q = queries.reshape(samples, steps, heads, d, -1).astype(np.int64)
    m = matrices.reshape(samples, steps, heads, d, d)
    return np.einsum("sthip,sthij->sthjp", q, m).reshape(samples, steps, -1)


def li(op, current):
    """A leaky integrator: v = sat(L(v) + I[t]) (I through the synapse of a current-based
    one). Returns (membrane per step, final membrane)."""
    samples, steps, neurons = current.shape
    integrator = _Integrator(op, samples, neurons)
    v = np.zeros((samples, neurons), dtype=np.int64)
    potentials = np.zeros(current.shape, dtype=np.int64)
    for t in range(steps):
        v = saturate(integrator.step(v, current[:, t]), op.v_bits)
        potentials[:, t] = v
    return potentials, v


def run(model, inputs, *, early_exit=None, time_chunk=None):
    """Run ``model`` on ``inputs`` (see :func:`encode`) and return a :class:`Trace`.

    ``early_exit`` ("certain" or a margin; None or "off": run every step) stops each sample
    after the first time chunk of ``time_chunk`` steps (default T) after which the rule of
    :mod:`.early_exit` decides; the trace then holds what was computed up to there and the
    steps each sample ran (``steps``).
    """
    rule = exit_rules.check_rule(early_exit)
    trace = _run(model, inputs)
    if rule is not None:
        _exit_early(model, trace, rule, time_chunk or model.timesteps)
    return trace


def _exit_early(model, trace, rule, lanes):
    readout = next((op for op in model.ops if isinstance(op, Readout)), None)
    if readout is None or readout.mode != "spike_count":
        raise UnsupportedError(f"model {model.name!r}: early exit needs a spike-count readout")
    output = model.inputs_of(readout.name)[0]
    steps = exit_rules.exit_steps(trace.spikes[output], lanes, rule)
    trace.steps = steps
    T = model.timesteps
    lifs = [op for op in model.ops if isinstance(op, LIF)]
    # Nothing after the exit is computed: no op's spikes (a LIF's, a spike gate's), only
    # the model's inputs are there
    computed = [name for name in trace.spikes
                if not isinstance(model[name], Input)] if trace.spikes else []
    for s in np.unique(steps[steps < T]):
        rows = np.flatnonzero(steps == s)
        for name in computed:
            trace.spikes[name][rows, s:] = 0
        for op in lifs:
            # A step depends only on earlier steps, so the membrane at the exit is that of
            # a run of s steps.
            # The currents recorded include any recurrent part, which depends on spikes
            # before the exit only.
            current = trace.currents[model.inputs_of(op.name)[0]][rows, :s]
            trace.membranes[op.name][rows] = lif(op, current)[1]
    trace.counts = trace.spikes[output].sum(axis=1, dtype=np.int64)
    trace.predictions = np.argmax(trace.counts, axis=1)


def _run(model, inputs):
    model.validate()
    types = model.infer()
    trace = Trace()
    values = {}           # every op's output, (samples, T, elements), for its consumers
    for op in model.ops:
        sources = model.inputs_of(op.name)
        source = values.get(sources[0]) if sources else None
        shape = types[sources[0]].shape if sources else None
        if isinstance(op, Input):
            values[op.name] = trace.spikes[op.name] = encode(model, inputs)
        elif isinstance(op, Dense):
            # A recurrent synapse's own-spike part is added as its lif op runs.
            values[op.name] = trace.currents[op.name] = dense(op, source)
        elif isinstance(op, (Conv1d, Conv2d)):
            values[op.name] = trace.currents[op.name] = conv(op, source, shape)
        elif isinstance(op, SumPool2d):
            values[op.name] = trace.currents[op.name] = pool(op, source, shape)
        elif isinstance(op, MaxPool2d):
            pooled = max_pool2d(op, source, shape)
            values[op.name] = pooled
            if pooled.dtype == np.uint8:
                trace.spikes[op.name] = pooled
            else:
                trace.currents[op.name] = pooled
        elif isinstance(op, Add):
            values[op.name] = trace.currents[op.name] = add([values[s] for s in sources])
        elif isinstance(op, Flatten):
            values[op.name] = source              # C-order numbering is unchanged
        elif isinstance(op, SpikeAnd):
            values[op.name] = trace.spikes[op.name] = spike_and(
                source, values[sources[1]])
        elif isinstance(op, TokenSum):
            values[op.name] = trace.currents[op.name] = token_sum(source, shape)
        elif isinstance(op, SpikeMatmul):
            values[op.name] = trace.currents[op.name] = spike_matmul(
                op, source, values[sources[1]], shape)
        elif isinstance(op, CurrentMatmul):
            values[op.name] = trace.currents[op.name] = current_matmul(
                source, values[sources[1]], shape, types[sources[1]].shape)
        elif isinstance(op, LIF):
            synapse = model.recurrent_synapse(op.name)
            spikes, membrane, currents = recurrent_lif(
                op, source, None if synapse is None else synapse.recurrent_weight)
            values[op.name] = trace.spikes[op.name] = spikes
            trace.membranes[op.name] = membrane
            if synapse is not None:
                trace.currents[synapse.name] = currents
        elif isinstance(op, LI):
            potentials, membrane = li(op, source)
            values[op.name] = trace.potentials[op.name] = potentials
            trace.membranes[op.name] = membrane
            # it never spikes; recorded so that every neuron op has spikes (the accelerator
            # runs it as neurons that never fire, checked like any layer)
            trace.spikes[op.name] = np.zeros(potentials.shape, dtype=np.uint8)
        elif isinstance(op, Readout):
            if op.mode == "spike_count":
                trace.counts = source.sum(axis=1, dtype=np.int64)
                trace.predictions = np.argmax(trace.counts, axis=1)
            else:
                trace.predictions = np.argmax(trace.membranes[sources[0]], axis=1)
        else:
            raise UnsupportedError(f"{op.where}: the integer reference cannot run "
                                   f"op type {op.type_name!r} yet")
    return trace


def accuracy(predictions, labels):
    """Fraction of ``predictions`` equal to ``labels``."""
    labels = np.asarray(labels)
    if labels.shape != predictions.shape:
        raise InputError(f"labels have shape {labels.shape}, predictions {predictions.shape}")
    return float(np.mean(predictions == labels)) if labels.size else float("nan")
