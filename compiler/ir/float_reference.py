"""The float model a frontend described, simulated in float64.

This is what the source framework computes, in hwgen's terms (docs/frontends.md): exact
float arithmetic (unless the source floors its membrane), no saturation, the same
comparison, reset and order as the integer model. Post-training quantization compares its
spikes with the integer reference's to report what quantization changed; it is never the
definition of correct (that is :mod:`hwgen.compiler.ir.reference`).
"""

from dataclasses import dataclass, field

import numpy as np

from hwgen.compiler.ir.floating import (FloatAdd, FloatConv, FloatCurrentMatmul, FloatDense,
                                        FloatFlatten, FloatInput, FloatIntegrator, FloatMaxPool,
                                        FloatNeuron, FloatReadout, FloatSpikeAnd,
                                        FloatSpikeMatmul, FloatSumPool, FloatTokenSum)

from . import reference
from .reference import convolve, max_pool, sum_pool


@dataclass
class FloatTrace:
    """``spikes[name]``: uint8 (samples, T, neurons) for the input and every spiking layer;
    ``potentials[name]``: float64 (samples, T, neurons) for integrators; ``predictions``
    for the first readout, if any."""

    spikes: dict = field(default_factory=dict)
    potentials: dict = field(default_factory=dict)
    predictions: np.ndarray = None


def _per_step(values, shape, function):
    samples, steps = values.shape[:2]
    return function(values.reshape(samples * steps, *shape)).reshape(samples, steps, -1)


def synaptic_current(layer, current):
    """``current`` through the layer's synaptic filter i = alpha*i + I (floored with
    ``rounding = floor``), or unchanged for a voltage-based layer."""
    if layer.alpha is None:
        return current
    drive = _Drive(layer, current.shape[::2])
    filtered = np.zeros(current.shape, dtype=np.float64)
    for t in range(current.shape[1]):
        drive.step(current[:, t])
        filtered[:, t] = drive.i
    return filtered


class _Drive:
    """What the membrane adds to beta*v, one step at a time: I[t], or a current-based
    layer's i[t] = alpha*i[t-1] + I[t] (floored with ``rounding = floor``), written as
    alpha*i[t-1] + I[t] for a joint rounding so that the membrane's floor is taken once over
    the whole sum (snnTorch's Synaptic). Stepwise, because a recurrent layer's I[t] depends
    on its own spikes of step t-1."""

    def __init__(self, layer, shape):
        self.layer = layer
        self.i = np.zeros(shape, dtype=np.float64)

    def step(self, current):
        layer = self.layer
        if layer.alpha is None:
            return current
        alpha = layer.alpha[np.newaxis, :]
        previous = self.i
        self.i = alpha * previous + current
        if layer.rounding == "floor":
            self.i = np.floor(self.i)
        if layer.synapse_rounding == "separate":
            return self.i
        return alpha * previous + current


def neuron(layer, current, recurrent=None):
    """Float LIF over T steps of ``current`` (samples, T, neurons): uint8 spikes.

    ``recurrent``: (neurons, neurons) weights of the layer's own spikes of step t-1, added
    to the current of step t (docs/semantics.md section 4c), or None."""
    drive = _Drive(layer, current.shape[::2])
    synaptic_zero = layer.alpha is not None and layer.order == "delayed" \
        and layer.reset == "zero"
    beta, theta = layer.beta[np.newaxis, :], layer.threshold[np.newaxis, :]
    v = np.zeros(current.shape[::2], dtype=np.float64)
    fired = np.zeros(v.shape, dtype=bool)
    spikes = np.zeros(current.shape, dtype=np.uint8)
    snntorch_subtract = layer.order == "snntorch_same_step" and layer.reset == "subtract"
    same_step = layer.order in ("same_step", "snntorch_same_step")
    for t in range(current.shape[1]):
        current_t = current[:, t]
        if recurrent is not None and t:
            current_t = current_t + spikes[:, t - 1].astype(np.float64) @ recurrent.T
        driven = drive.step(current_t)
        if snntorch_subtract:
            # snnTorch's own order of operations (rounding included): subtract the reset of
            # a stored membrane that fires, round, decide, then give that reset back.
            stored_fired = v >= theta if layer.fire == "ge" else v > theta
            h = beta * v + driven - np.where(stored_fired, theta, 0.0)
        elif same_step:
            h = beta * v + driven
        elif layer.reset == "subtract":
            h = beta * v + driven - np.where(fired, theta, 0.0)
        elif synaptic_zero:
            # snnTorch's Synaptic: the reset zeroes the whole step, current included
            h = np.where(fired, 0.0, beta * v + driven)
        elif layer.reset == "zero":
            h = np.where(fired, 0.0, beta * v) + current_t
        else:
            h = beta * v + driven
        if layer.rounding == "floor":
            h = np.floor(h)
        fired = h >= theta if layer.fire == "ge" else h > theta
        if snntorch_subtract:
            v = h - (fired.astype(np.float64) - stored_fired) * theta
        elif same_step and layer.reset == "subtract":
            v = h - np.where(fired, theta, 0.0)
        elif same_step and layer.reset == "zero":
            v = np.where(fired, 0.0, h)
        else:
            v = h
        spikes[:, t] = fired
    return spikes


def integrator(layer, current):
    drive = _Drive(layer, current.shape[::2])
    beta = layer.beta[np.newaxis, :]
    v = np.zeros(current.shape[::2], dtype=np.float64)
    potentials = np.zeros(current.shape, dtype=np.float64)
    for t in range(current.shape[1]):
        v = beta * v + drive.step(current[:, t])
        if layer.rounding == "floor":
            v = np.floor(v)
        potentials[:, t] = v
    return potentials


def run(network, spikes):
    """Run ``network`` on input spike trains (samples, T, inputs) and return a FloatTrace."""
    trace = FloatTrace()
    values = {}
    for layer in network:
        source = values.get(layer.inputs[0]) if layer.inputs else None
        shape = network[layer.inputs[0]].shape if layer.inputs else None
        if isinstance(layer, FloatInput):
            spikes = np.asarray(spikes, dtype=np.uint8)
            # (samples, T, neurons) like every other value, whatever the input's shape
            values[layer.name] = trace.spikes[layer.name] = spikes.reshape(*spikes.shape[:2], -1)
        elif isinstance(layer, FloatDense):
            # a recurrent layer's own-spike part is added as its neuron layer runs
            current = source.astype(np.float64) @ layer.feedforward_weight.T
            if layer.bias is not None:
                current = current + layer.bias
            values[layer.name] = current
        elif isinstance(layer, FloatConv):
            values[layer.name] = _per_step(source, shape, lambda x: convolve(
                x, layer.weight, layer.bias, stride=layer.stride, padding=layer.padding,
                dilation=layer.dilation, groups=layer.groups))
        elif isinstance(layer, FloatSumPool):
            values[layer.name] = _per_step(source.astype(np.float64), shape, lambda x: sum_pool(
                x, layer.kernel, layer.stride, layer.padding))
        elif isinstance(layer, FloatMaxPool):
            if source.dtype == np.uint8:          # a max of spikes is spikes
                values[layer.name] = trace.spikes[layer.name] = _per_step(
                    source, shape, lambda x: max_pool(x, layer.kernel, layer.stride,
                                                      layer.padding))
            else:
                values[layer.name] = _per_step(source.astype(np.float64), shape, lambda x:
                                               max_pool(x, layer.kernel, layer.stride,
                                                        layer.padding))
        elif isinstance(layer, FloatAdd):
            values[layer.name] = sum(values[name].astype(np.float64) for name in layer.inputs)
        elif isinstance(layer, FloatFlatten):
            values[layer.name] = source
            if source.dtype == np.uint8:          # flattened spikes are still spikes
                trace.spikes[layer.name] = source
        elif isinstance(layer, FloatSpikeAnd):
            # spikes in, spikes out, no arithmetic to differ: the integer definition
            values[layer.name] = trace.spikes[layer.name] = reference.spike_and(
                source, values[layer.inputs[1]])
        elif isinstance(layer, FloatTokenSum):
            values[layer.name] = reference.token_sum(source, shape).astype(np.float64)
        elif isinstance(layer, FloatSpikeMatmul):
            values[layer.name] = reference.spike_matmul(
                layer, source, values[layer.inputs[1]], shape).astype(np.float64)
        elif isinstance(layer, FloatCurrentMatmul):
            matrices = network[layer.inputs[1]].shape
            values[layer.name] = np.einsum(
                "sthip,sthij->sthjp",
                source.reshape(*source.shape[:2], matrices[0], matrices[1], -1).astype(np.float64),
                values[layer.inputs[1]].reshape(*source.shape[:2], *matrices)
            ).reshape(*source.shape[:2], -1)
        elif isinstance(layer, FloatNeuron):
            producer = network[layer.inputs[0]]
            recurrent = producer.recurrent_weight if isinstance(producer, FloatDense) else None
            values[layer.name] = trace.spikes[layer.name] = neuron(layer, source, recurrent)
        elif isinstance(layer, FloatIntegrator):
            values[layer.name] = trace.potentials[layer.name] = integrator(layer, source)
        elif isinstance(layer, FloatReadout):
            if trace.predictions is None:
                if layer.mode == "spike_count":
                    trace.predictions = np.argmax(source.sum(axis=1), axis=1)
                else:
                    trace.predictions = np.argmax(source[:, -1], axis=1)
        else:
            raise TypeError(f"unknown float layer {layer!r}")
    return trace
