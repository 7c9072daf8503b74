"""The integer reference model: the definition of correct.

It implements docs/semantics.md with exact integer arithmetic, vectorised over samples and
neurons (only the time loop of a neuron is sequential), and returns every op's output so a
mismatch in the hardware can be located to a layer, neuron and step.

It depends on numpy and the IR only. Nothing here may approximate: if an op cannot be
computed exactly it is refused.
"""

from dataclasses import dataclass, field

import numpy as np

from compiler.errors import InputError, UnsupportedError
from compiler.ir import LIF, Dense, Input, Readout, saturate


@dataclass
class Trace:
    """Everything one reference run computed, per op name.

    ``spikes[name]``: uint8 (samples, T, neurons) for the input and every LIF op.
    ``currents[name]``: int64 (samples, T, neurons) for every Dense op.
    ``membranes[name]``: int64 (samples, neurons), the membrane after the last step.
    ``counts`` / ``predictions``: spike counts (samples, classes) and the predicted class per
    sample, if the model has a readout.
    """

    spikes: dict = field(default_factory=dict)
    currents: dict = field(default_factory=dict)
    membranes: dict = field(default_factory=dict)
    counts: np.ndarray = None
    predictions: np.ndarray = None

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

    ``inputs`` is either integers (samples, inputs) for a model with an integer encoding, or
    spike trains (samples, T, inputs) of 0/1 for any model.
    """
    source = model.input
    if len(source.shape) != 1:
        raise UnsupportedError(f"{source.where}: only 1-D inputs are supported, got "
                               f"{source.shape}")
    (size,) = source.shape
    T = model.timesteps
    inputs = np.asarray(inputs)
    if inputs.dtype.kind not in "iub":
        raise InputError(f"inputs must be integers, got dtype {inputs.dtype}")
    if inputs.ndim == 3:
        if inputs.shape[1:] != (T, size):
            raise InputError(f"spike trains have shape {inputs.shape}; model {model.name!r} "
                             f"expects (samples, {T}, {size})")
        if inputs.size and (inputs.min() < 0 or inputs.max() > 1):
            raise InputError("spike trains must hold only 0 and 1")
        return inputs.astype(np.uint8)
    if inputs.ndim == 2:
        if source.encoding != "if":
            raise InputError(f"model {model.name!r} takes spike trains (samples, {T}, {size}); "
                             f"got integers of shape {inputs.shape}")
        if inputs.shape[1] != size:
            raise InputError(f"inputs have shape {inputs.shape}; model {model.name!r} expects "
                             f"(samples, {size})")
        if inputs.size and (inputs.min() < 0 or inputs.max() > source.threshold):
            raise InputError(f"input values must be between 0 and the encoder threshold "
                             f"{source.threshold}, got {inputs.min()}..{inputs.max()}")
        return if_encode(inputs, source.threshold, T)
    raise InputError(f"inputs must be 2-D (samples, inputs) or 3-D (samples, T, inputs), "
                     f"got shape {inputs.shape}")


def dense(op, spikes):
    """current[s, t, n] = sum_k weight[n, k] * spikes[s, t, k] + bias[n], exactly.

    float64 products are exact here: every partial sum is an integer below 2**47 in
    magnitude (the IR bounds acc_bits at 48), well inside float64's 2**53.
    """
    current = np.rint(spikes.astype(np.float64) @ op.weight.T.astype(np.float64))
    current = current.astype(np.int64)
    if op.bias is not None:
        current += op.bias
    return current


def lif(op, current):
    """Run ``op``'s neurons over the T steps of ``current`` (samples, T, neurons).

    Returns (spikes uint8 (samples, T, neurons), final membrane int64 (samples, neurons)).
    """
    samples, steps, neurons = current.shape
    theta = op.threshold[np.newaxis, :]
    v = np.zeros((samples, neurons), dtype=np.int64)
    fired = np.zeros((samples, neurons), dtype=bool)
    spikes = np.zeros(current.shape, dtype=np.uint8)
    for t in range(steps):
        leaked = op.leak.apply(v)
        if op.order == "same_step":
            h = saturate(leaked + current[:, t], op.v_bits)
            fired = h >= theta if op.fire == "ge" else h > theta
            if op.reset == "subtract":
                v = h - np.where(fired, theta, 0)
            elif op.reset == "zero":
                v = np.where(fired, 0, h)
            else:
                v = h
        else:
            # Delayed: the spike of step t-1 (``fired`` still holds it) resets now.
            if op.reset == "subtract":
                h = saturate(leaked + current[:, t] - np.where(fired, theta, 0), op.v_bits)
            elif op.reset == "zero":
                h = saturate(np.where(fired, 0, leaked) + current[:, t], op.v_bits)
            else:
                h = saturate(leaked + current[:, t], op.v_bits)
            fired = h >= theta if op.fire == "ge" else h > theta
            v = h
        spikes[:, t] = fired
    return spikes, v


def run(model, inputs):
    """Run ``model`` on ``inputs`` (see :func:`encode`) and return a :class:`Trace`."""
    model.validate()
    trace = Trace()
    for op in model.ops:
        sources = model.inputs_of(op.name)
        if isinstance(op, Input):
            trace.spikes[op.name] = encode(model, inputs)
        elif isinstance(op, Dense):
            trace.currents[op.name] = dense(op, trace.spikes[sources[0]])
        elif isinstance(op, LIF):
            spikes, membrane = lif(op, trace.currents[sources[0]])
            trace.spikes[op.name] = spikes
            trace.membranes[op.name] = membrane
        elif isinstance(op, Readout):
            trace.counts = trace.spikes[sources[0]].sum(axis=1, dtype=np.int64)
            trace.predictions = np.argmax(trace.counts, axis=1)
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
